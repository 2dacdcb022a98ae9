//! What the kernel and the system let mamori do, each tried for real:
//! fanotify groups made and folders marked as the sensor does (then closed
//! at once), a cgroup made and removed, the vault lock started and dropped,
//! `nft` asked for its tables, Samba looked for.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mamori_sensor::{FAN_PRE_ACCESS, FID_GROUP, FID_MASK, PERM_EVENT_FD, PERM_GROUP, PERM_MASK};

use super::{shown, Check};
use crate::settings::IsolateSection;

const PERM: &str = "fanotify permission events";
const PRE: &str = "fanotify pre-content events";
const NAMES: &str = "fanotify file names";
/// How long `nft` gets to list the tables.
const NFT_WAIT: Duration = Duration::from_secs(5);

/// A fanotify group, closed when dropped: the marks go with it, and any
/// opener that waits on it is let through by the kernel.
struct Group(OwnedFd);

impl Group {
    fn init(flags: libc::c_uint, event_flags: libc::c_uint) -> io::Result<Group> {
        // SAFETY: plain syscall; the result is a new fd owned here, or -1.
        let fd = unsafe { libc::fanotify_init(flags, event_flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by the kernel and nobody else owns it.
        Ok(Group(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn mark(&self, mask: u64, dir: &File) -> io::Result<()> {
        let flags = libc::FAN_MARK_ADD | libc::FAN_MARK_ONLYDIR;
        // SAFETY: a NULL path with a dirfd marks the dirfd's own inode.
        let r = unsafe { libc::fanotify_mark(self.0.as_raw_fd(), flags, mask, dir.as_raw_fd(), std::ptr::null()) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The sensor's permission group, made as `mamori_sensor::Sensor::new` makes it.
fn perm_group() -> io::Result<Group> {
    Group::init(PERM_GROUP, PERM_EVENT_FD)
}

fn fix_for(e: &io::Error, what: &str) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => "run mamori as root (fanotify permission events need CAP_SYS_ADMIN)".to_owned(),
        Some(libc::EOPNOTSUPP | libc::EXDEV | libc::ENODEV) => {
            "protect a folder on a filesystem that has them (ext4, XFS, btrfs)".to_owned()
        }
        _ => format!("use a kernel with {what} (Linux 6.14 or later, built with CONFIG_FANOTIFY_ACCESS_PERMISSIONS)"),
    }
}

/// The three things the sensor asks of each folder: permission events on
/// opens, pre-content events (blocks kept just before they are
/// overwritten), and directory-entry events with names. The sensor cannot
/// start on a folder without all three.
pub fn fanotify(dirs: &[PathBuf], checks: &mut Vec<Check>) {
    // The group, before any folder: it says whether the kernel has them at all.
    if let Err(e) = perm_group() {
        let fix = fix_for(&e, "fanotify permission events");
        checks.push(Check::fail(PERM, format!("the kernel refuses a permission group: {e}"), fix));
        return;
    }
    match Group::init(FID_GROUP | libc::FAN_REPORT_TARGET_FID, libc::O_RDONLY as u32) {
        Ok(_) => {}
        Err(_) if Group::init(FID_GROUP, libc::O_RDONLY as u32).is_ok() => checks.push(Check::warn(
            NAMES,
            "the kernel does not report a created file's own handle (FAN_REPORT_TARGET_FID): new files are \
             named by a walk of /proc, a little later",
            "use Linux 5.17 or later",
        )),
        Err(e) => {
            let fix = fix_for(&e, "fanotify file names (FAN_REPORT_DFID_NAME)");
            checks.push(Check::fail(NAMES, format!("the kernel refuses a group that reports names: {e}"), fix));
            return;
        }
    }
    for dir in dirs {
        let name = shown(dir);
        let file = match File::open(dir) {
            Ok(f) => f,
            Err(e) => {
                checks.push(Check::fail(PERM, format!("{name}: cannot be opened: {e}"), "check the folder"));
                continue;
            }
        };
        // A group of its own per mark, closed at once: an open in the folder
        // meanwhile waits on it, and closing lets it through.
        let tried = |mask: u64| perm_group().and_then(|g| g.mark(mask, &file));
        match tried(PERM_MASK & !FAN_PRE_ACCESS) {
            Ok(()) => checks.push(Check::ok(PERM, format!("{name}: every open is held until the agent has seen it"))),
            Err(e) => {
                let fix = fix_for(&e, "fanotify permission events");
                checks.push(Check::fail(PERM, format!("{name}: the kernel refuses the mark: {e}"), fix));
                continue;
            }
        }
        match tried(FAN_PRE_ACCESS | libc::FAN_EVENT_ON_CHILD) {
            Ok(()) => checks.push(Check::ok(
                PRE,
                format!("{name}: a large file's blocks are kept just before they are overwritten"),
            )),
            Err(e) => {
                let fix = fix_for(&e, "fanotify pre-content events (FAN_PRE_ACCESS)");
                checks.push(Check::fail(
                    PRE,
                    format!("{name}: the kernel refuses pre-content events here: {e} (the sensor needs them)"),
                    fix,
                ));
            }
        }
        let names = Group::init(FID_GROUP | libc::FAN_REPORT_TARGET_FID, libc::O_RDONLY as u32)
            .or_else(|_| Group::init(FID_GROUP, libc::O_RDONLY as u32))
            .and_then(|g| g.mark(FID_MASK, &file));
        match names {
            Ok(()) => checks.push(Check::ok(NAMES, format!("{name}: creates, deletes and renames are seen by name"))),
            Err(e) => {
                let fix = fix_for(&e, "fanotify file names (FAN_REPORT_DFID_NAME)");
                checks.push(Check::fail(NAMES, format!("{name}: the kernel refuses the mark: {e}"), fix));
            }
        }
    }
}

/// A stopped attacker held in a frozen cgroup, where a SIGCONT cannot free it.
pub fn freezer(checks: &mut Vec<Check>) {
    const CHECK: &str = "cgroup freezer";
    match mamori_response::probe_freezer() {
        Ok(mount) => checks.push(Check::ok(
            CHECK,
            format!("a stopped attacker is held frozen (cgroup v2 at {}): a SIGCONT cannot free it", mount.display()),
        )),
        Err(e) => checks.push(Check::warn(
            CHECK,
            format!("a stopped attacker is held by SIGSTOP alone, which any process of its user can undo: {e}"),
            "mount the cgroup v2 hierarchy (Linux 5.2 or later): `mount -t cgroup2 none /sys/fs/cgroup/unified`, \
             or boot with systemd.unified_cgroup_hierarchy=1",
        )),
    }
}

/// The kernel-side lock on the vault (BPF LSM): deletes and renames there refused.
pub fn vault_lock(vault: bool, checks: &mut Vec<Check>) {
    const CHECK: &str = "BPF vault lock";
    if !vault {
        return;
    }
    let lsm = std::fs::read_to_string("/sys/kernel/security/lsm").map(|l| format!(" (active LSMs: {})", l.trim()));
    match vault_lock_probe() {
        Ok(()) => checks.push(Check::ok(CHECK, "deletes and renames in the vault are refused by the kernel")),
        Err(why) => checks.push(Check::warn(
            CHECK,
            format!(
                "deletes and renames in the vault are seen and their author stopped, not refused{}",
                lsm.unwrap_or_default()
            ),
            why,
        )),
    }
}

/// Starts the BPF vault lock on a scratch directory and drops it: why not, if it cannot start.
pub fn vault_lock_probe() -> Result<(), String> {
    scratch_dir().and_then(|dir| {
        let started = mamori_sensor::probe_vault_lock(&dir).map_err(|e| e.to_string());
        let _ = std::fs::remove_dir(&dir);
        started
    })
}

/// An empty directory for the lock to guard, only this process's.
fn scratch_dir() -> Result<PathBuf, String> {
    let base = if Path::new("/run").is_dir() { "/run" } else { "/tmp" };
    let mut template = format!("{base}/.mamori-check-XXXXXX\0").into_bytes();
    // SAFETY: a NUL-terminated template that mkdtemp fills in place.
    let made = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if made.is_null() {
        return Err(format!("cannot make a directory to try it on in {base}: {}", io::Error::last_os_error()));
    }
    template.pop();
    Ok(PathBuf::from(String::from_utf8(template).expect("an ASCII template")))
}

/// nftables: isolating the host, and blocking an attacking SMB client.
pub fn nftables(isolate: &IsolateSection, checks: &mut Vec<Check>) {
    const CHECK: &str = "nftables";
    let uses = if isolate.on_incident {
        "cutting the host off at an incident (isolate.on_incident), `mamori isolate`, and blocking an attacking SMB client"
    } else {
        "`mamori isolate` and blocking an attacking SMB client"
    };
    match run_bounded("nft", &["list", "tables"], NFT_WAIT) {
        Ok(()) => checks.push(Check::ok(CHECK, format!("{uses} can work"))),
        Err(why) => checks.push(Check::warn(
            CHECK,
            format!("{uses} cannot work: {why}"),
            "apt-get install nftables (and load nf_tables: `modprobe nf_tables`)",
        )),
    }
}

/// Runs a program to its end, killed past `wait`; Ok when it succeeded.
fn run_bounded(program: &str, args: &[&str], wait: Duration) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!("`{program}` is not installed"),
            _ => format!("`{program}` cannot be run: {e}"),
        })?;
    let deadline = Instant::now() + wait;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(format!("`{program} {}` failed ({status}): {}", args.join(" "), err.trim()));
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{program} {}` did not answer within {} s", args.join(" "), wait.as_secs()));
            }
            Err(e) => return Err(format!("`{program}`: {e}")),
        }
    }
}

/// Samba on this host: what lets mamori tell its clients apart.
pub fn samba(checks: &mut Vec<Check>) {
    const CHECK: &str = "samba";
    let Some(_) = find_program("smbd") else {
        checks.push(Check::ok(CHECK, "Samba is not installed: no file-share clients to tell apart"));
        return;
    };
    let running = std::fs::read_dir("/proc").into_iter().flatten().flatten().any(|e| {
        e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            && std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim_end() == "smbd")
    });
    let smbstatus = find_program("smbstatus").is_some();
    match (running, smbstatus) {
        (true, true) => checks.push(Check::ok(
            CHECK,
            "smbd runs: an attacking SMB client's connections are stopped, its address blocked",
        )),
        (false, _) => checks.push(Check::ok(
            CHECK,
            "Samba is installed but smbd is not running: its clients are told apart once it runs",
        )),
        (true, false) => checks.push(Check::warn(
            CHECK,
            "smbd runs but smbstatus is missing: clients are told apart by their sockets alone",
            "install smbstatus (Debian's samba package)",
        )),
    }
}

/// A program on PATH, or in the sbin directories a service's PATH has.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
