//! A stopped tree is held in a frozen cgroup: its own user cannot SIGCONT it
//! back to work. Real processes of an ordinary user, real cgroups; needs root
//! and a cgroup v2 hierarchy (skipped, saying so, without one).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::thread::sleep;
use std::time::{Duration, Instant};

use mamori_response::{is_stopped, kill, proc_key, resume, suspend_tree, Guard, ProcKey};

/// The v2 hierarchy's mount point, from mountinfo as the crate finds it.
fn mount() -> Option<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo").ok()?.lines().find_map(|l| {
        let (fields, rest) = l.split_once(" - ")?;
        let mut f = fields.split_whitespace().skip(3);
        (rest.starts_with("cgroup2 ") && f.next()? == "/").then(|| PathBuf::from(f.next().unwrap()))
    })
}

/// A shell run as the test user in a folder of its own; on drop, everything
/// that names the folder is SIGKILLed and the tree's cgroup removed, however
/// the test ended.
struct Victim {
    child: Child,
    root: ProcKey,
    dir: PathBuf,
    cgroup: PathBuf,
}

impl Victim {
    fn spawn(name: &str, script: &str) -> Victim {
        let dir = std::env::temp_dir().join(format!("mamori-freeze-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let script = script.replace("DIR", dir.to_str().unwrap());
        let child = mamori_testuser::ordinary().command("sh").arg("-c").arg(script).spawn().expect("spawn the victim");
        let root = proc_key(child.id()).expect("root key");
        let cgroup = mount().unwrap().join(format!("mamori/{}-{}", root.pid, root.start));
        Victim { child, root, dir, cgroup }
    }

    fn file(&self) -> PathBuf {
        self.dir.join("out")
    }

    fn size(&self) -> u64 {
        std::fs::metadata(self.file()).map_or(0, |m| m.len())
    }

    /// Polls until the output file exists and grows.
    fn wait_writing(&self) {
        let first = self.size();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.size() <= first.max(1) {
            assert!(Instant::now() < deadline, "the victim never wrote");
            sleep(Duration::from_millis(5));
        }
    }

    /// Whether the output file stays the same size for `span`.
    fn still_for(&self, span: Duration) -> Result<(), String> {
        let before = self.size();
        let deadline = Instant::now() + span;
        while Instant::now() < deadline {
            sleep(Duration::from_millis(10));
            let now = self.size();
            if now != before {
                return Err(format!("the file grew from {before} to {now} bytes"));
            }
        }
        Ok(())
    }

    /// Live processes whose command line names the victim's folder.
    fn named(&self) -> Vec<u32> {
        let needle = self.dir.to_str().unwrap().as_bytes();
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle))
            })
            .filter(|&pid| state(pid).is_some_and(|s| s != 'Z'))
            .collect()
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        for pid in self.named() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        if let Ok(leaves) = std::fs::read_dir(&self.cgroup) {
            for leaf in leaves.filter_map(Result::ok).filter(|e| e.path().is_dir()) {
                let procs = std::fs::read_to_string(leaf.path().join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
                for _ in 0..400 {
                    if std::fs::remove_dir(leaf.path()).is_ok() {
                        break;
                    }
                    sleep(Duration::from_millis(5));
                }
            }
            let _ = std::fs::remove_dir(&self.cgroup);
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SIGCONT every process of the test user, as one of the attacker's own would.
fn cont_everything_of_the_user() {
    let status = mamori_testuser::ordinary().command("kill").args(["-CONT", "--", "-1"]).status().unwrap();
    assert!(status.success());
}

fn state(pid: u32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text.rsplit_once(')')?.1.split_whitespace().next()?.chars().next()
}

/// Keys still naming a process that has not exited: a child exiting as the
/// stop came was signalled, but is a zombie or reaped since.
fn live(keys: &[ProcKey]) -> impl Iterator<Item = ProcKey> + '_ {
    keys.iter().copied().filter(|k| proc_key(k.pid) == Some(*k) && state(k.pid) != Some('Z'))
}

fn cgroup_of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_owned)
}

fn skip() -> bool {
    if mount().is_none() {
        eprintln!("no cgroup v2 hierarchy: skipped");
        return true;
    }
    false
}

const WRITER: &str = "while :; do echo x >> DIR/out; sleep 0.01; done";

#[test]
fn sigcont_from_the_same_user_does_not_resume_and_resume_does() {
    if skip() {
        return;
    }
    let victim = Victim::spawn("cont", &format!("{WRITER} & {WRITER}"));
    victim.wait_writing();
    let origin = cgroup_of(victim.root.pid).unwrap();

    let stopped = suspend_tree(victim.root, &Guard::new()).unwrap();
    assert!(stopped.stop_only.is_none(), "{:?}", stopped.stop_only);
    assert!(stopped.procs.len() >= 3, "{:?}", stopped.procs);
    assert!(live(&stopped.procs).all(is_stopped));
    let held = cgroup_of(victim.root.pid).unwrap();
    assert!(held.starts_with(&format!("/mamori/{}-{}/from", victim.root.pid, victim.root.start)), "{held}");
    assert!(victim.cgroup.is_dir());

    cont_everything_of_the_user();
    victim.still_for(Duration::from_millis(500)).unwrap();
    assert!(live(&stopped.procs).all(is_stopped));

    let resumed = resume(&stopped.procs).unwrap();
    assert!(resumed.cgroup.is_none(), "{:?}", resumed.cgroup);
    assert_eq!(resumed.procs[0], victim.root);
    victim.wait_writing();
    assert!(!victim.cgroup.exists());
    assert_eq!(cgroup_of(victim.root.pid).unwrap(), origin);
    assert!(!is_stopped(victim.root));
}

#[test]
fn a_double_fork_at_the_stop_is_frozen_and_kill_ends_all() {
    if skip() {
        return;
    }
    // The middle shell exits at once, so each daemon leaves the tree; a
    // daemon writes only if the go file exists when it first runs, which the
    // test makes only after the stop: any daemon that writes then was
    // released from the stop.
    let daemon = format!("[ -e DIR/go ] || exit 0; {WRITER}");
    let victim = Victim::spawn("fork", &format!("while :; do (setsid sh -c '{daemon}' &); done"));
    sleep(Duration::from_millis(100));

    let stopped = suspend_tree(victim.root, &Guard::new()).unwrap();
    assert!(stopped.stop_only.is_none(), "{:?}", stopped.stop_only);
    // Daemons that left the tree before the stop had long since run their check and exited.
    sleep(Duration::from_millis(300));
    std::fs::write(victim.dir.join("go"), "").unwrap();
    cont_everything_of_the_user();
    victim.still_for(Duration::from_millis(500)).unwrap();
    for pid in victim.named() {
        assert!(cgroup_of(pid).is_some_and(|c| c.starts_with("/mamori/")), "pid {pid} runs free");
    }

    let killed = kill(&stopped.procs);
    assert!(killed.cgroup.is_none(), "{:?}", killed.cgroup);
    assert_eq!(killed.procs[0], victim.root);
    assert!(victim.named().is_empty(), "left alive: {:?}", victim.named());
    assert!(!victim.cgroup.exists());
}

#[test]
fn kill_ends_a_frozen_tree_and_removes_its_cgroup() {
    if skip() {
        return;
    }
    let victim = Victim::spawn("kill", &format!("{WRITER} & (sleep 100 & wait) & wait"));
    victim.wait_writing();
    let stopped = suspend_tree(victim.root, &Guard::new()).unwrap();
    assert!(stopped.stop_only.is_none(), "{:?}", stopped.stop_only);
    assert!(victim.cgroup.is_dir());
    assert!(live(&stopped.procs).all(is_stopped));

    let killed = kill(&stopped.procs);
    assert!(killed.cgroup.is_none(), "{:?}", killed.cgroup);
    assert_eq!(killed.procs, stopped.procs);
    assert!(!victim.cgroup.exists());
    // The root is setpriv's exec, our child, a zombie until reaped; the rest are gone.
    assert!(stopped.procs.iter().all(|k| matches!(state(k.pid), None | Some('Z'))));
}

/// The cgroup of `pid` as bytes: a user may name the cgroups it is given
/// (systemd delegates a subtree to each user's session) with any bytes.
fn cgroup_bytes_of(pid: u32) -> Option<Vec<u8>> {
    let bytes = std::fs::read(format!("/proc/{pid}/cgroup")).ok()?;
    bytes.split(|&b| b == b'\n').find_map(|l| l.strip_prefix(b"0::")).map(<[u8]>::to_vec)
}

/// A tree stopped in a cgroup whose name is not UTF-8 is held frozen all
/// the same (its SIGCONT does nothing), and resumed back into that cgroup.
#[test]
fn a_tree_from_a_cgroup_named_with_bytes_that_are_not_utf8_is_frozen_and_put_back() {
    use std::os::unix::ffi::OsStrExt;
    if skip() {
        return;
    }
    let name = [format!("mamori-test-{}-", std::process::id()).as_bytes(), b"\xff\xfe"].concat();
    let own = Made(mount().unwrap().join(std::ffi::OsStr::from_bytes(&name)));
    std::fs::create_dir(&own.0).unwrap();
    let victim = Victim::spawn("bytes", &format!("while [ ! -e DIR/go ]; do sleep 0.01; done; {WRITER} & {WRITER}"));
    std::fs::write(own.0.join("cgroup.procs"), victim.root.pid.to_string()).unwrap();
    std::fs::write(victim.dir.join("go"), "").unwrap();
    victim.wait_writing();
    let origin = cgroup_bytes_of(victim.root.pid).unwrap();
    assert!(origin.ends_with(&name), "{:?}", String::from_utf8_lossy(&origin));

    let stopped = suspend_tree(victim.root, &Guard::new()).unwrap();
    assert!(stopped.stop_only.is_none(), "{:?}", stopped.stop_only);
    assert!(stopped.procs.len() >= 3, "{:?}", stopped.procs);
    assert!(cgroup_bytes_of(victim.root.pid).unwrap().starts_with(b"/mamori/"));
    cont_everything_of_the_user();
    victim.still_for(Duration::from_millis(500)).unwrap();
    assert!(live(&stopped.procs).all(is_stopped));

    let resumed = resume(&stopped.procs).unwrap();
    assert!(resumed.cgroup.is_none(), "{:?}", resumed.cgroup);
    victim.wait_writing();
    assert_eq!(cgroup_bytes_of(victim.root.pid).unwrap(), origin);
}

/// A cgroup the test made, removed once the victim (dropped first) is gone.
struct Made(PathBuf);

impl Drop for Made {
    fn drop(&mut self) {
        for _ in 0..400 {
            if std::fs::remove_dir(&self.0).is_ok() {
                break;
            }
            sleep(Duration::from_millis(5));
        }
    }
}
