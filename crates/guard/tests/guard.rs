//! Real BPF LSM hooks, real child processes, temp dirs only. Needs root, a
//! kernel that loads BPF LSM programs, and a build with clang present: run
//! with `cargo test -p mamori-guard -- --include-ignored` on such a kernel.
// Without clang there is nothing to test: Guard::start returns NotBuilt.
#![cfg(mamori_guard_bpf)]

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use mamori_guard::{Allow, Denial, Guard, GuardError, Op};
use tempfile::TempDir;

/// A vault-like tree: `root/vault/{a,b,empty/,objects/1}` plus `root/user/u`
/// outside the vault.
struct Tree {
    _tmp: TempDir,
    root: PathBuf,
    vault: PathBuf,
    objects: PathBuf,
}

fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let vault = root.join("vault");
    let objects = vault.join("objects");
    fs::create_dir_all(&objects).unwrap();
    fs::create_dir(vault.join("empty")).unwrap();
    fs::create_dir(root.join("user")).unwrap();
    fs::write(vault.join("a"), "alpha").unwrap();
    fs::write(vault.join("b"), "beta").unwrap();
    fs::write(objects.join("1"), "one").unwrap();
    fs::write(root.join("user/u"), "users own").unwrap();
    Tree { _tmp: tmp, root, vault, objects }
}

fn allow_self() -> Allow {
    Allow { pid: std::process::id(), exe: None }
}

fn start(dirs: &[&Path]) -> Guard {
    let dirs: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    Guard::start(&dirs, allow_self()).expect("guard starts (root, BPF LSM active, built with clang)")
}

struct Run {
    pid: u32,
    ok: bool,
    stdout: String,
    stderr: String,
}

fn run(program: &str, args: &[&str]) -> Run {
    let child = Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    Run {
        pid,
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn drain(guard: &mut Guard) -> Vec<Denial> {
    guard.denials().collect()
}

/// Runs `f` in a forked child (no exec) and returns its pid and exit code.
/// `f` must use async-signal-safe calls only: the test binary has threads.
fn in_child(f: impl FnOnce() -> i32) -> (u32, i32) {
    // SAFETY: the child only runs `f` (async-signal-safe by contract) and
    // `_exit`.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            libc::_exit(f());
        }
        let mut status = 0;
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        (pid as u32, libc::WEXITSTATUS(status))
    }
}

#[track_caller]
fn assert_denied(guard: &mut Guard, run: &Run, op: Op, name: &str) {
    assert!(!run.ok, "{op:?} {name} succeeded: {}", run.stdout);
    assert!(run.stderr.contains("Operation not permitted"), "{op:?} {name}: {}", run.stderr);
    let denials = drain(guard);
    assert!(
        denials.iter().any(|d| d.pid == run.pid && d.op == op && d.name == name),
        "no {op:?} denial for {name} by {}: {denials:?}",
        run.pid
    );
}

#[test]
#[ignore = "needs a kernel that loads BPF LSM programs; this VM's kernel refuses them (KernelRefused)"]
fn other_processes_are_denied_every_change_and_each_is_reported() {
    let t = tree();
    let other = tempfile::tempdir().unwrap();
    let empty_protected = other.path().join("lone");
    fs::create_dir(&empty_protected).unwrap();
    let mut guard = start(&[&t.vault, &t.objects, &empty_protected]);
    let v = |name: &str| t.vault.join(name).to_str().unwrap().to_owned();
    let outside = t.root.join("user/u");

    let r = run("cat", &[&v("a")]);
    assert_denied(&mut guard, &r, Op::Open, "a");
    let r = run("cat", &[s(&t.objects.join("1"))]);
    assert_denied(&mut guard, &r, Op::Open, "1");
    let r = run("ls", &[s(&t.vault)]);
    assert_denied(&mut guard, &r, Op::Open, "vault");
    let r = run("sh", &["-c", &format!("echo x > {}", v("a"))]);
    assert_denied(&mut guard, &r, Op::Open, "a");
    let r = run("sh", &["-c", &format!("echo x > {}", v("new"))]);
    assert_denied(&mut guard, &r, Op::Create, "new");
    let r = run("truncate", &["-s", "0", &v("b")]);
    assert_denied(&mut guard, &r, Op::Open, "b");
    let r = run("rm", &["-f", &v("a")]);
    assert_denied(&mut guard, &r, Op::Unlink, "a");
    let r = run("rm", &["-f", s(&t.objects.join("1"))]);
    assert_denied(&mut guard, &r, Op::Unlink, "1");
    let r = run("mv", &[&v("a"), &v("z")]);
    assert_denied(&mut guard, &r, Op::Rename, "a");
    let r = run("mv", &[&v("a"), s(&t.root.join("stolen"))]);
    assert_denied(&mut guard, &r, Op::Rename, "a");
    let r = run("mv", &[s(&outside), &v("a")]);
    assert_denied(&mut guard, &r, Op::Rename, "a");
    let r = run("mv", &[s(&t.vault), s(&t.root.join("moved"))]);
    assert_denied(&mut guard, &r, Op::Rename, "vault");
    let r = run("ln", &[&v("a"), s(&t.root.join("linked"))]);
    assert_denied(&mut guard, &r, Op::Link, "a");
    let r = run("ln", &[s(&outside), &v("in")]);
    assert_denied(&mut guard, &r, Op::Link, "in");
    let r = run("ln", &["-s", "x", &v("sym")]);
    assert_denied(&mut guard, &r, Op::Symlink, "sym");
    let r = run("mkdir", &[&v("sub")]);
    assert_denied(&mut guard, &r, Op::Mkdir, "sub");
    let r = run("mkfifo", &[&v("fifo")]);
    assert_denied(&mut guard, &r, Op::Mknod, "fifo");
    let r = run("rmdir", &[&v("empty")]);
    assert_denied(&mut guard, &r, Op::Rmdir, "empty");
    let r = run("rmdir", &[s(&empty_protected)]);
    assert_denied(&mut guard, &r, Op::Rmdir, "lone");
    let r = run("chmod", &["666", &v("a")]);
    assert_denied(&mut guard, &r, Op::Setattr, "a");
    let r = run("chmod", &["777", s(&t.vault)]);
    assert_denied(&mut guard, &r, Op::Setattr, "vault");
    let r = run("setfattr", &["-n", "user.x", "-v", "1", &v("b")]);
    assert_denied(&mut guard, &r, Op::Xattr, "b");

    assert_eq!(fs::read_to_string(t.vault.join("a")).unwrap(), "alpha");
    assert_eq!(fs::read_to_string(t.vault.join("b")).unwrap(), "beta");
    assert_eq!(fs::read_to_string(t.objects.join("1")).unwrap(), "one");
    assert_eq!(fs::metadata(t.vault.join("a")).unwrap().permissions().mode() & 0o777, 0o644);
    assert!(t.vault.join("empty").is_dir() && empty_protected.is_dir());
    for gone in ["new", "z", "in", "sym", "sub", "fifo"] {
        assert!(!t.vault.join(gone).exists(), "{gone} was created");
    }
    assert_eq!(guard.dropped(), 0);
}

#[test]
#[ignore = "needs a kernel that loads BPF LSM programs; this VM's kernel refuses them (KernelRefused)"]
fn a_truncate_through_an_fd_opened_before_the_guard_is_denied() {
    let t = tree();
    let file = fs::OpenOptions::new().write(true).open(t.vault.join("a")).unwrap();
    let mut guard = start(&[&t.vault]);
    let fd = file.as_raw_fd();
    // SAFETY: ftruncate on an inherited fd, then the errno: async-signal-safe.
    let (pid, code) = in_child(|| unsafe {
        if libc::ftruncate(fd, 0) == 0 {
            0
        } else {
            *libc::__errno_location()
        }
    });
    assert_eq!(code, libc::EPERM);
    assert!(drain(&mut guard).iter().any(|d| d.pid == pid && d.op == Op::Setattr && d.name == "a"));
    assert_eq!(fs::read_to_string(t.vault.join("a")).unwrap(), "alpha");
}

#[test]
#[ignore = "needs a kernel that loads BPF LSM programs; this VM's kernel refuses them (KernelRefused)"]
fn the_allowed_process_can_still_do_everything() {
    let t = tree();
    let mut guard = start(&[&t.vault, &t.objects]);
    let v = |name: &str| t.vault.join(name);

    assert_eq!(fs::read_to_string(v("a")).unwrap(), "alpha");
    fs::write(v("new"), "n").unwrap();
    fs::write(t.objects.join("2"), "two").unwrap();
    fs::rename(v("new"), v("renamed")).unwrap();
    fs::hard_link(t.root.join("user/u"), v("pin")).unwrap();
    fs::set_permissions(v("a"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::OpenOptions::new().write(true).open(v("b")).unwrap().set_len(1).unwrap();
    fs::remove_file(v("renamed")).unwrap();
    fs::create_dir(v("sub")).unwrap();
    fs::remove_dir(v("sub")).unwrap();
    assert_eq!(fs::read_dir(&t.vault).unwrap().count(), 5);

    let own = std::process::id();
    assert!(drain(&mut guard).iter().all(|d| d.pid != own));
}

#[test]
#[ignore = "needs a kernel that loads BPF LSM programs; this VM's kernel refuses them (KernelRefused)"]
fn a_pinned_file_stays_open_to_its_owner_through_its_own_path() {
    let t = tree();
    let user_file = t.root.join("user/u");
    fs::hard_link(&user_file, t.vault.join("pin")).unwrap();
    let mut guard = start(&[&t.vault]);

    let r = run("cat", &[s(&user_file)]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.stdout, "users own");
    let r = run("sh", &["-c", &format!("echo more >> {}", s(&user_file))]);
    assert!(r.ok, "{}", r.stderr);
    let r = run("cat", &[s(&t.vault.join("pin"))]);
    assert_denied(&mut guard, &r, Op::Open, "pin");
}

#[test]
#[ignore = "needs a kernel that loads BPF LSM programs; this VM's kernel refuses them (KernelRefused)"]
fn dropping_the_guard_lets_everyone_in_again() {
    let t = tree();
    let a = t.vault.join("a");
    let guard = start(&[&t.vault]);
    assert!(!run("cat", &[s(&a)]).ok);
    drop(guard);
    let r = run("cat", &[s(&a)]);
    assert!(r.ok, "{}", r.stderr);
    assert!(run("rm", &[s(&a)]).ok);
    assert!(!a.exists());
}

#[test]
#[ignore = "needs a kernel that loads BPF LSM programs; this VM's kernel refuses them (KernelRefused)"]
fn two_guards_keep_to_their_own_directories() {
    let (t1, t2) = (tree(), tree());
    let mut g1 = start(&[&t1.vault]);
    let mut g2 = start(&[&t2.vault]);

    let r = run("cat", &[s(&t1.vault.join("a"))]);
    assert_denied(&mut g1, &r, Op::Open, "a");
    assert!(drain(&mut g2).is_empty());
    let r = run("cat", &[s(&t2.vault.join("b"))]);
    assert_denied(&mut g2, &r, Op::Open, "b");
    assert!(drain(&mut g1).is_empty());

    drop(g1);
    assert!(run("cat", &[s(&t1.vault.join("a"))]).ok);
    let r = run("cat", &[s(&t2.vault.join("a"))]);
    assert_denied(&mut g2, &r, Op::Open, "a");
}

#[test]
#[ignore = "needs a kernel that loads BPF LSM programs; this VM's kernel refuses them (KernelRefused)"]
fn the_allowed_executable_is_let_in_and_other_copies_are_not() {
    let t = tree();
    let exe = t.root.join("mamori-cat");
    fs::copy("/bin/cat", &exe).unwrap();
    let dirs = vec![t.vault.clone()];
    let mut guard = Guard::start(&dirs, Allow { pid: std::process::id(), exe: Some(exe.clone()) }).unwrap();

    let r = run(s(&exe), &[s(&t.vault.join("a"))]);
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(r.stdout, "alpha");
    let r = run("cat", &[s(&t.vault.join("a"))]);
    assert_denied(&mut guard, &r, Op::Open, "a");
}

#[test]
#[ignore = "needs a kernel that loads BPF LSM programs; this VM's kernel refuses them (KernelRefused)"]
fn a_directory_protected_at_run_time_is_locked_from_then_on() {
    let t = tree();
    let mut guard = start(&[]);
    assert!(run("cat", &[s(&t.vault.join("a"))]).ok);
    guard.protect(&t.vault).unwrap();
    let r = run("cat", &[s(&t.vault.join("a"))]);
    assert_denied(&mut guard, &r, Op::Open, "a");
    assert_eq!(drain(&mut guard).len(), 0);
}

#[test]
#[ignore = "needs a kernel that loads BPF LSM programs; this VM's kernel refuses them (KernelRefused)"]
fn the_fd_polls_readable_only_while_denials_wait() {
    let t = tree();
    let mut guard = start(&[&t.vault]);
    let readable = |guard: &Guard| {
        let mut pfd = libc::pollfd { fd: guard.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n == 1 && pfd.revents & libc::POLLIN != 0
    };
    assert!(!readable(&guard));
    assert!(!run("cat", &[s(&t.vault.join("a"))]).ok);
    assert!(readable(&guard));
    assert_eq!(drain(&mut guard).len(), 1);
    assert!(!readable(&guard));
}

#[test]
#[ignore = "needs a kernel that loads BPF LSM programs; this VM's kernel refuses them (KernelRefused)"]
fn a_full_ring_still_denies_and_counts_what_it_dropped() {
    let t = tree();
    let mut guard = start(&[&t.vault]);
    const TRIES: u64 = 3000;
    let path = CString::new(t.vault.join("a").as_os_str().as_bytes()).unwrap();
    // SAFETY: open/close only: async-signal-safe.
    let (_, denied) = in_child(|| unsafe {
        let mut denied = 0;
        for _ in 0..TRIES {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY);
            if fd >= 0 {
                libc::close(fd);
            } else if *libc::__errno_location() == libc::EPERM {
                denied += 1;
            }
        }
        i32::from(denied == TRIES)
    });
    assert_eq!(denied, 1, "every open was denied");
    let reported = drain(&mut guard).len() as u64;
    assert!(guard.dropped() > 0);
    assert_eq!(reported + guard.dropped(), TRIES);
}

#[test]
fn a_missing_directory_is_refused_with_its_path() {
    let t = tree();
    let missing = t.root.join("nope");
    match Guard::start(std::slice::from_ref(&missing), allow_self()) {
        Err(GuardError::Dir { path, .. }) => assert_eq!(path, missing),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started on a missing directory"),
    }
}
