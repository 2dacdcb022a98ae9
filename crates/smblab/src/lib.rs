//! Tests only: a real Samba server to defend, and real SMB clients to attack it.
//!
//! [`Lab::start`] runs `smbd` with a configuration of its own in a network
//! namespace of its own, serving one share: a folder in the lab's temporary
//! directory that a test can also protect directly, marked as the
//! simulator's test target. [`Lab::client`] adds a client in another
//! namespace, joined to the server's by a veth pair on a bridge, and
//! [`Client::run`] runs `client.py` (a `smbprotocol` client shipped beside
//! this file) there: attacks that refuse an unmarked share, and ordinary
//! work. Nothing is shared with the host's network or its Samba, so labs run
//! in parallel.
//!
//! Needs root, `samba`, `smbclient`, `iproute2` and the Python package
//! `smbprotocol`; a missing one fails the test loudly instead of skipping it.

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use mamori_sim::CorpusSummary;
use serde_json::Value;

/// The unix account every lab's Samba user maps to.
pub const USER: &str = "mamori-smb";
/// Its Samba password (each lab keeps its own password database).
pub const PASSWORD: &str = "mamori-lab-1";
/// The share every lab serves.
pub const SHARE: &str = "share";

const INSTALL: &str = "the Samba lab needs root, samba, smbclient and iproute2: \
                       install samba smbclient and pip smbprotocol (`apt-get install samba smbclient iproute2`, \
                       `python3 -m pip install smbprotocol`)";

/// Labs made by this process, for names and subnets no other lab uses.
static LABS: AtomicU32 = AtomicU32::new(0);

/// The unix account behind the Samba user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// A running Samba server in a namespace of its own, serving [`SHARE`].
pub struct Lab {
    dir: tempfile::TempDir,
    share: PathBuf,
    config: PathBuf,
    ns: String,
    subnet: u8,
    smbd: u32,
    account: Account,
    spawned: AtomicU32,
}

impl Lab {
    /// Starts the server; panics (naming what to install) when the lab cannot run here.
    pub fn start() -> Lab {
        let smbd = require_tools();
        let account = account();
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Namespaces keep labs apart already; distinct subnets keep the
        // addresses in one test's output unambiguous too.
        let subnet = ((pid.wrapping_mul(7).wrapping_add(n)) % 250 + 1) as u8;
        let ns = format!("msl-{pid}-{n}");

        // Not /tmp: the agent's tests keep protected folders on /var/tmp
        // (a disk file system), and so does the share.
        let dir = tempfile::Builder::new().prefix("mamori-smblab-").tempdir_in("/var/tmp").expect("a temp dir");
        // smbd's per-client processes run as the Samba user and must reach the share.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["private", "lock", "state", "cache", "pid", "ncalrpc", "share"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let share = dir.path().join("share");
        mamori_sim::mark_target(&share).expect("the share becomes a test target");
        chown_tree(&share, account);
        let config = dir.path().join("smb.conf");
        fs::write(&config, smb_conf(dir.path())).unwrap();

        let mut lab = Lab { dir, share, config, ns: ns.clone(), subnet, smbd: 0, account, spawned: AtomicU32::new(0) };
        ip(&["netns", "add", &ns]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&["-n", &ns, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &ns, "addr", "add", &format!("{}/24", lab.address()), "dev", "br0"]);
        // No duplicate address detection: the address must be usable at once.
        ip(&["-n", &ns, "addr", "add", &format!("{}/64", lab.address6()), "dev", "br0", "nodad"]);
        ip(&["-n", &ns, "link", "set", "br0", "up"]);

        let mut passwd = Command::new(tool("smbpasswd"))
            .arg("-c")
            .arg(&lab.config)
            .args(["-s", "-a", USER])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("smbpasswd runs");
        writeln!(passwd.stdin.take().unwrap(), "{PASSWORD}\n{PASSWORD}").unwrap();
        assert!(passwd.wait().unwrap().success(), "smbpasswd -a {USER} failed");

        let status = Command::new(tool("ip"))
            .args(["netns", "exec", &ns])
            .arg(&smbd)
            .arg("-s")
            .arg(&lab.config)
            .arg("-D")
            .status();
        assert!(status.is_ok_and(|s| s.success()), "smbd did not start: see {}", lab.dir.path().display());
        lab.smbd = lab.wait_until_listening();
        lab
    }

    /// The folder the share serves (also usable directly, as a protected folder).
    pub fn share(&self) -> &Path {
        &self.share
    }

    /// The lab's temporary directory: `smb.conf`, Samba's state and logs, the share.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The smb.conf smbd was started with (`-s`).
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// The server's network namespace.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// The master smbd's pid (the process that forks one child per client).
    pub fn smbd_pid(&self) -> u32 {
        self.smbd
    }

    pub fn address(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, 1)
    }

    pub fn address6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd77, self.subnet.into(), 0, 0, 0, 0, 0, 1)
    }

    /// The unix account the Samba user maps to (the uid of its smbd processes).
    pub fn account(&self) -> Account {
        self.account
    }

    /// smbd's children now: one per client connection, plus its helpers
    /// (notifyd, cleanupd).
    pub fn smbd_children(&self) -> Vec<u32> {
        children_of(self.smbd)
    }

    /// Fills the share with `files` realistic documents, pictures and text
    /// files (the simulator's corpus), owned by the Samba user.
    pub fn seed(&self, files: usize) -> CorpusSummary {
        let spec = mamori_sim::CorpusSpec { docs: files, large: 0, large_size: 0 };
        let summary = mamori_sim::make_corpus(&self.share, &spec).expect("the corpus is written");
        chown_tree(&self.share, self.account);
        summary
    }

    /// A local folder of `files` documents outside the share, for `copy-in --source`.
    pub fn documents(&self, files: usize) -> PathBuf {
        let n = self.spawned.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.path().join(format!("documents-{n}"));
        let spec = mamori_sim::CorpusSpec { docs: files, large: 0, large_size: 0 };
        mamori_sim::make_corpus(&dir, &spec).expect("the documents are written");
        dir
    }

    /// Adds client `n` (1 to 200): a namespace of its own at `10.77.S.(10+n)`
    /// and `fd77:S::(10+n)`, on the server's bridge. Panics if `n` is taken.
    pub fn client(&self, n: u8) -> Client {
        assert!((1..=200).contains(&n), "client numbers run from 1 to 200");
        let ns = format!("{}-c{n}", self.ns);
        let host = 10 + n;
        let address = Ipv4Addr::new(10, 77, self.subnet, host);
        let address6 = Ipv6Addr::new(0xfd77, self.subnet.into(), 0, 0, 0, 0, 0, host.into());
        ip(&["netns", "add", &ns]);
        let client = Client {
            ns: ns.clone(),
            address,
            address6,
            server: self.address().to_string(),
            dir: self.dir.path().to_path_buf(),
            stops: AtomicU32::new(0),
        };
        // Created inside the server's namespace, so two labs' interface
        // names never meet in the root namespace.
        let port = format!("c{n}");
        ip(&["-n", &self.ns, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
        ip(&["-n", &self.ns, "link", "set", &port, "master", "br0"]);
        ip(&["-n", &self.ns, "link", "set", &port, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ip(&["-n", &ns, "addr", "add", &format!("{address}/24"), "dev", "eth0"]);
        ip(&["-n", &ns, "addr", "add", &format!("{address6}/64"), "dev", "eth0", "nodad"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        client
    }

    /// The master's pid once it listens on 445 in its namespace.
    fn wait_until_listening(&self) -> u32 {
        let pid_file = self.dir.path().join("pid").join("smbd.pid");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let pid = fs::read_to_string(&pid_file).ok().and_then(|s| s.trim().parse::<u32>().ok());
            if let Some(pid) = pid {
                let tcp = fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
                // Local port 445 (01BD) in state LISTEN (0A).
                if tcp.lines().skip(1).any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 3 && f[1].ends_with(":01BD") && f[3] == "0A"
                }) {
                    return pid;
                }
            }
            assert!(
                Instant::now() < deadline,
                "smbd did not listen on {}:445 within 20 s; its log is in {}",
                self.address(),
                self.dir.path().display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ends the smbd processes this lab started: the master from its own pid
    /// file, and those of its children still running our config afterwards.
    fn stop_smbd(&self) {
        // A start that failed before smbd listened left only the pid file.
        let master = match self.smbd {
            0 => fs::read_to_string(self.dir.path().join("pid").join("smbd.pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0),
            pid => pid,
        };
        if master == 0 || !runs_config(master, &self.config) {
            return;
        }
        let children = children_of(master);
        signal(master, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while runs_config(master, &self.config) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in std::iter::once(master).chain(children) {
            // The pid may have been reused: only a process still running
            // this lab's config is ours.
            if runs_config(pid, &self.config) {
                signal(pid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_smbd();
        let _ = Command::new(tool("ip")).args(["netns", "del", &self.ns]).status();
    }
}

/// A client machine: a namespace with its own addresses on the lab's bridge.
pub struct Client {
    ns: String,
    address: Ipv4Addr,
    address6: Ipv6Addr,
    server: String,
    dir: PathBuf,
    stops: AtomicU32,
}

/// What a finished workload printed.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    /// The JSON summary (`touched`, `files`, `first_failure`, `ops`, ...).
    pub summary: Value,
    pub stderr: String,
}

impl Outcome {
    /// Files the workload finished before it stopped.
    pub fn touched(&self) -> u64 {
        self.summary["touched"].as_u64().unwrap_or(0)
    }

    /// Whether an attack refused the share for lack of the marker.
    pub fn refused(&self) -> bool {
        self.status.code() == Some(3) && self.summary.get("refused").is_some()
    }
}

impl Client {
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    pub fn address6(&self) -> Ipv6Addr {
        self.address6
    }

    /// From now on, talk to the server over IPv6.
    pub fn over_ipv6(mut self, server: Ipv6Addr) -> Client {
        self.server = server.to_string();
        self
    }

    /// `client.py` in this client's namespace with the lab's server, share
    /// and credentials, then `args`: the workload and its options, such as
    /// `["overwrite", "--limit", "5"]`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(tool("ip"));
        cmd.args(["netns", "exec", &self.ns])
            .arg(tool("python3"))
            .arg(script())
            .args(["--server", &self.server, "--share", SHARE, "--user", USER, "--password", PASSWORD])
            .args(["--note-name", mamori_sim::NOTE_NAME])
            .args(args);
        cmd
    }

    /// Runs a workload to its end.
    pub fn run(&self, args: &[&str]) -> Outcome {
        let out = self.command(args).stdin(Stdio::null()).output().expect("ip netns exec python3 runs");
        outcome(out.status, &out.stdout, &out.stderr, args)
    }

    /// Starts a workload that runs until [`Running::stop`] (`honest`, or any
    /// other that should be ended early).
    pub fn spawn(&self, args: &[&str]) -> Running {
        let n = self.stops.fetch_add(1, Ordering::Relaxed);
        let stop_file = self.dir.join(format!("stop-{}-{n}", self.ns));
        let _ = fs::remove_file(&stop_file);
        let child = self
            .command(args)
            .arg("--stop-file")
            .arg(&stop_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip netns exec python3 runs");
        Running { child: Some(child), stop_file, args: args.iter().map(|s| s.to_string()).collect() }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Deleting the namespace also removes its veth pair from the bridge.
        let _ = Command::new(tool("ip")).args(["netns", "del", &self.ns]).status();
    }
}

/// A workload still running in a client namespace.
pub struct Running {
    child: Option<Child>,
    stop_file: PathBuf,
    args: Vec<String>,
}

impl Running {
    /// The python process (`ip netns exec` replaces itself with it).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether the workload has ended by itself (it stops at its first
    /// failed request, or at its `--limit`).
    pub fn exited(&mut self) -> bool {
        self.child.as_mut().is_none_or(|c| !matches!(c.try_wait(), Ok(None)))
    }

    /// Asks the workload to stop (its stop file; SIGTERM after 20 s, SIGKILL
    /// after 30 s) and returns what it printed.
    pub fn stop(mut self) -> Outcome {
        fs::write(&self.stop_file, b"stop\n").unwrap();
        let mut child = self.child.take().expect("not stopped yet");
        // A hung client must fail the test, not hang it: SIGTERM asks it
        // to stop like the stop file, SIGKILL (no summary) ends it.
        let started = Instant::now();
        let mut term = false;
        while child.try_wait().unwrap().is_none() {
            if !term && started.elapsed() > Duration::from_secs(20) {
                signal(child.id(), libc::SIGTERM);
                term = true;
            } else if started.elapsed() > Duration::from_secs(30) {
                signal(child.id(), libc::SIGKILL);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        outcome(out.status, &out.stdout, &out.stderr, &args)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_file(&self.stop_file);
    }
}

fn outcome(status: ExitStatus, stdout: &[u8], stderr: &[u8], args: &[&str]) -> Outcome {
    let stdout = String::from_utf8_lossy(stdout);
    let stderr = String::from_utf8_lossy(stderr).into_owned();
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    let summary: Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("client.py {args:?} printed no JSON summary ({e}, {status}):\n{stdout}\n{stderr}"));
    Outcome { status, summary, stderr }
}

/// The client script shipped with this crate.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("client.py")
}

fn smb_conf(dir: &Path) -> String {
    let global = include_str!("../smb.conf.in").replace("@DIR@", &dir.display().to_string());
    format!("{global}\n[{SHARE}]\npath = {}/share\nread only = no\n", dir.display())
}

/// smbd's path; panics with what to install unless every tool the lab uses is here.
fn require_tools() -> PathBuf {
    assert_eq!(unsafe { libc::geteuid() }, 0, "{INSTALL}; run the tests as root");
    for name in ["smbpasswd", "smbstatus", "ip", "python3", "useradd"] {
        tool(name);
    }
    let python = Command::new(tool("python3")).args(["-c", "import smbclient, smbprotocol"]).output();
    assert!(python.is_ok_and(|o| o.status.success()), "python3 cannot import smbclient: {INSTALL}");
    tool("smbd")
}

/// A program from PATH, or from the system directories a test's PATH may
/// lack (smbd and useradd live in sbin); panics naming what to install.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is missing: {INSTALL}"))
}

/// The Samba user's unix account, made once. Test binaries may run at the
/// same time: `useradd` fails for the loser of a race (the account exists, or
/// /etc/passwd is locked), so it is retried until the account is there.
pub fn account() -> Account {
    static ACCOUNT: OnceLock<Account> = OnceLock::new();
    *ACCOUNT.get_or_init(|| {
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id").args([flag, USER]).output().ok()?;
            String::from_utf8(out.stdout).ok()?.trim().parse().ok()
        };
        for _ in 0..100 {
            if let (Some(uid), Some(gid)) = (id("-u"), id("-g")) {
                return Account { uid, gid };
            }
            let _ = Command::new(tool("useradd"))
                .args(["--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", USER])
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("could not create the account {USER}");
    })
}

fn ip(args: &[&str]) {
    let out = Command::new(tool("ip")).args(args).output().unwrap_or_else(|e| panic!("ip {args:?}: {e}: {INSTALL}"));
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

fn chown_tree(path: &Path, account: Account) {
    std::os::unix::fs::lchown(path, Some(account.uid), Some(account.gid)).unwrap();
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        for entry in fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), account);
        }
    }
}

fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| ppid(*pid) == Some(parent))
        .collect()
}

fn ppid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` is a smbd started with this lab's config.
fn runs_config(pid: u32, config: &Path) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let config = config.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|arg| arg == config)
}

fn signal(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        if pid > 1 {
            unsafe { libc::kill(pid, sig) };
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_script_knows_the_simulators_marker() {
        let script = std::fs::read_to_string(super::script()).unwrap();
        let line = format!("\nMARKER = \"{}\"\n", mamori_sim::MARKER);
        assert!(script.contains(&line), "client.py must refuse shares without {}", mamori_sim::MARKER);
        assert!(!script.contains("--marker"), "the marker is no option");
    }
}
