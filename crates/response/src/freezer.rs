//! Holding a stopped tree in a frozen cgroup, so that a SIGCONT cannot release it.
//!
//! Any process of the same user may SIGCONT a stopped process. A process in a
//! frozen cgroup (the cgroup v2 freezer) runs no user code until the cgroup
//! is thawed, whatever signal it gets (SIGKILL still ends it), and its
//! children are born frozen. Each suspended tree gets a cgroup of its own,
//! `mamori/PID-START` (its root) at the root of the v2 hierarchy, so another
//! process (the CLI) finds it from the incident alone; inside it each process
//! sits in a child named after the cgroup it came from, so resuming puts it
//! back with no record kept outside the kernel. `cgroup.freeze` is part of
//! the core, not a controller: no `subtree_control` is needed anywhere.
//!
//! A cgroup's path is bytes, as its name is whatever the user who made it
//! chose (systemd delegates a subtree to each user's session): read from
//! `/proc` and written back as they are, never as text.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mamori_event::ProcKey;
use rustix::process::Signal;

use crate::signal::{self, SignalError};

const SUBTREE: &str = "mamori";
/// Prefix of a child named after the cgroup its processes came from.
const FROM: &str = "from";
/// The child of processes whose origin's name would not fit in a cgroup name.
const UNKNOWN: &str = "unknown-origin";
/// How long killed processes get to leave the cgroup before it is removed.
const EXIT_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    #[error("no cgroup v2 hierarchy is mounted (no cgroup2 in /proc/self/mountinfo)")]
    NoHierarchy,
    #[error("the kernel has no cgroup v2 freezer (cgroup.freeze needs Linux 5.2 or later)")]
    NoFreezer,
    #[error("cannot {what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: io::Error },
    #[error("processes still in {} after they were killed", .0.display())]
    Busy(PathBuf),
}

/// The cgroup of one suspended tree.
#[derive(Debug)]
pub(crate) struct Freezer {
    mount: PathBuf,
    /// The tree's cgroup as `/proc/PID/cgroup` names cgroups: `/mamori/PID-START`.
    cgroup: String,
    /// Children made so far, by name.
    made: HashSet<OsString>,
}

impl Freezer {
    /// Makes the tree's cgroup and freezes it while still empty, so that
    /// every process is frozen the moment it is moved in.
    pub(crate) fn create(root: ProcKey) -> Result<Freezer, FreezeError> {
        let f = Freezer::named(root).ok_or(FreezeError::NoHierarchy)?;
        make_dir(&f.mount.join(SUBTREE))?;
        let dir = f.dir();
        make_dir(&dir)?;
        let freeze = dir.join("cgroup.freeze");
        if !freeze.exists() {
            let _ = fs::remove_dir(&dir);
            return Err(FreezeError::NoFreezer);
        }
        write(&freeze, "1", "freeze")?;
        Ok(f)
    }

    /// The cgroup of the tree `root` roots, if there is one.
    pub(crate) fn find(root: ProcKey) -> Option<Freezer> {
        Freezer::named(root).filter(|f| f.dir().is_dir())
    }

    fn named(root: ProcKey) -> Option<Freezer> {
        Some(Freezer {
            mount: mount()?,
            cgroup: format!("/{SUBTREE}/{}-{}", root.pid, root.start),
            made: HashSet::new(),
        })
    }

    fn dir(&self) -> PathBuf {
        path(&self.mount, self.cgroup.as_bytes())
    }

    fn contains(&self, cgroup: &[u8]) -> bool {
        at_or_under(cgroup, self.cgroup.as_bytes())
    }

    /// Moves the process into the tree's cgroup, where it freezes at once.
    /// A process that has exited needs no holding and is not an error.
    pub(crate) fn admit(&mut self, key: ProcKey) -> Result<(), FreezeError> {
        let fd = match signal::pidfd(key) {
            Ok(fd) => fd,
            Err(SignalError::Gone) => return Ok(()),
            Err(SignalError::Os(source)) => {
                return Err(FreezeError::Io {
                    what: "open a pidfd of",
                    path: format!("/proc/{}", key.pid).into(),
                    source,
                })
            }
        };
        let Some(origin) = cgroup_of(key.pid) else { return Ok(()) };
        // A child forked after its parent was moved is born inside.
        if self.contains(&origin) {
            return Ok(());
        }
        let leaf = leaf_name(&origin);
        let dest = self.dir().join(&leaf);
        if self.made.insert(leaf) {
            make_dir(&dest)?;
        }
        match write(&dest.join("cgroup.procs"), &key.pid.to_string(), "move a process into") {
            Err(FreezeError::Io { source, .. }) if is_gone(&source) => return Ok(()),
            moved => moved?,
        }
        if !signal::holds_pid(&fd, key) && cgroup_of(key.pid).is_some_and(|c| self.contains(&c)) {
            // The process exited and its pid was taken by another before the
            // write: what was moved is a stranger, and must not stay frozen.
            self.put_back(key.pid, Some(&origin))?;
        }
        Ok(())
    }

    /// Whether every process in the tree's cgroup is frozen.
    pub(crate) fn frozen(&self) -> bool {
        event(&self.dir(), "frozen") == Some(true)
    }

    pub(crate) fn thaw(&self) -> Result<(), FreezeError> {
        write(&self.dir().join("cgroup.freeze"), "0", "thaw")
    }

    /// Puts every process in the tree's cgroup back where it came from, or
    /// in the nearest ancestor of that still there and taking processes
    /// (systemd removes a session's scope once it is empty).
    pub(crate) fn put_all_back(&self) -> Result<(), FreezeError> {
        let mut failed = None;
        for (leaf, name) in self.leaves() {
            let origin = origin_of(&name);
            let cgroup = [self.cgroup.as_bytes(), b"/", name.as_bytes()].concat();
            for pid in pids(&leaf) {
                // Only a process still inside is one of the tree's: a pid read
                // from cgroup.procs may have been freed and reused since.
                if cgroup_of(pid).as_deref() == Some(&cgroup[..]) {
                    if let Err(e) = self.put_back(pid, origin.as_deref()) {
                        failed.get_or_insert(e);
                    }
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// SIGKILLs whatever is still inside (a daemon born frozen, which the
    /// caller's keys do not name), waits for it to go, and removes the cgroup.
    pub(crate) fn kill_all_and_remove(&self) -> Result<(), FreezeError> {
        for (leaf, _) in self.leaves() {
            for pid in pids(&leaf) {
                if let Some(start) = mamori_proc::start_time(pid) {
                    let _ = signal::send(ProcKey { pid, start }, Signal::KILL);
                }
            }
        }
        let deadline = Instant::now() + EXIT_WAIT;
        while event(&self.dir(), "populated") == Some(true) {
            if Instant::now() >= deadline {
                return Err(FreezeError::Busy(self.dir()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.remove()
    }

    /// Removes the (empty) cgroup; mamori's subtree itself stays, as other trees may be in it.
    pub(crate) fn remove(&self) -> Result<(), FreezeError> {
        for (leaf, _) in self.leaves() {
            remove_dir(&leaf)?;
        }
        remove_dir(&self.dir())
    }

    fn leaves(&self) -> Vec<(PathBuf, OsString)> {
        let Ok(dir) = fs::read_dir(self.dir()) else { return Vec::new() };
        dir.filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| (e.path(), e.file_name()))
            .collect()
    }

    fn put_back(&self, pid: u32, origin: Option<&[u8]>) -> Result<(), FreezeError> {
        let subtree = format!("/{SUBTREE}");
        let mut candidates = Vec::new();
        let mut cgroup = origin.unwrap_or(b"/");
        while cgroup != b"/" {
            // An origin inside mamori's subtree (another tree's cgroup) is no place to resume in.
            if !at_or_under(cgroup, subtree.as_bytes()) {
                candidates.push(cgroup);
            }
            cgroup = match cgroup.iter().rposition(|&b| b == b'/') {
                Some(0) | None => b"/",
                Some(i) => &cgroup[..i],
            };
        }
        candidates.push(b"/");
        let mut failed = None;
        for cgroup in candidates {
            let procs = path(&self.mount, cgroup).join("cgroup.procs");
            if !procs.exists() {
                continue;
            }
            match fs::write(&procs, pid.to_string()) {
                Ok(()) => return Ok(()),
                Err(e) if is_gone(&e) => return Ok(()),
                // EBUSY: it now has controllers for its children and takes no processes itself.
                Err(source) => failed = Some(FreezeError::Io { what: "move a process back into", path: procs, source }),
            }
        }
        Err(failed.unwrap_or(FreezeError::NoHierarchy))
    }
}

/// Whether a stopped tree can be held frozen here, for `mamori check`: a
/// cgroup is made where [`Freezer::create`] makes them, looked at for
/// `cgroup.freeze`, and removed at once. Returns the v2 mount.
pub fn probe() -> Result<PathBuf, FreezeError> {
    let mount = mount().ok_or(FreezeError::NoHierarchy)?;
    let dir = mount.join(format!("{SUBTREE}-probe-{}", std::process::id()));
    make_dir(&dir)?;
    let has = dir.join("cgroup.freeze").exists();
    remove_dir(&dir)?;
    if has {
        Ok(mount)
    } else {
        Err(FreezeError::NoFreezer)
    }
}

/// Whether the process's cgroup is frozen.
pub(crate) fn in_frozen_cgroup(pid: u32) -> bool {
    let (Some(mount), Some(cgroup)) = (mount(), cgroup_of(pid)) else { return false };
    event(&path(&mount, &cgroup), "frozen") == Some(true)
}

/// Where the cgroup v2 hierarchy is mounted: `/sys/fs/cgroup` on a unified
/// system, `/sys/fs/cgroup/unified` on a hybrid one; only a mount of its root
/// can address every process's cgroup.
fn mount() -> Option<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (fields, rest) = line.split_once(" - ")?;
        if rest.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let mut fields = fields.split_whitespace().skip(3);
        let (root, point) = (fields.next()?, fields.next()?);
        (root == "/").then(|| PathBuf::from(unescape(point)))
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The process's cgroup in the v2 hierarchy, from its root: `/user.slice/...`.
fn cgroup_of(pid: u32) -> Option<Vec<u8>> {
    let bytes = mamori_proc::read_proc(&format!("/proc/{pid}/cgroup")).ok()?;
    bytes.split(|&b| b == b'\n').find_map(|l| l.strip_prefix(b"0::")).map(<[u8]>::to_vec)
}

/// Whether `cgroup` is the cgroup `top` or one below it.
fn at_or_under(cgroup: &[u8], top: &[u8]) -> bool {
    cgroup.strip_prefix(top).is_some_and(|rest| rest.is_empty() || rest.starts_with(b"/"))
}

fn path(mount: &Path, cgroup: &[u8]) -> PathBuf {
    let mut relative = cgroup;
    while let Some(rest) = relative.strip_prefix(b"/") {
        relative = rest;
    }
    mount.join(OsStr::from_bytes(relative))
}

/// A child's name for processes from `origin`: the path with `%` and `/` escaped.
fn leaf_name(origin: &[u8]) -> OsString {
    let mut name = FROM.as_bytes().to_vec();
    for &b in origin {
        match b {
            b'%' => name.extend_from_slice(b"%25"),
            b'/' => name.extend_from_slice(b"%2F"),
            b => name.push(b),
        }
    }
    if name.len() > 255 {
        UNKNOWN.into()
    } else {
        OsString::from_vec(name)
    }
}

fn origin_of(leaf: &OsStr) -> Option<Vec<u8>> {
    let mut rest = leaf.as_bytes().strip_prefix(FROM.as_bytes())?;
    let mut out = Vec::new();
    while let Some(i) = rest.iter().position(|&b| b == b'%') {
        out.extend_from_slice(&rest[..i]);
        out.push(match rest.get(i + 1..i + 3)? {
            b"25" => b'%',
            b"2F" => b'/',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.extend_from_slice(rest);
    Some(out)
}

fn pids(cgroup: &Path) -> Vec<u32> {
    fs::read_to_string(cgroup.join("cgroup.procs"))
        .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// A key of `cgroup.events` (`populated`, `frozen`).
fn event(cgroup: &Path, key: &str) -> Option<bool> {
    let text = fs::read_to_string(cgroup.join("cgroup.events")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')).map(|v| v.trim() == "1")
}

fn is_gone(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error())
}

fn make_dir(path: &Path) -> Result<(), FreezeError> {
    match fs::create_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            Err(FreezeError::Io { what: "create the cgroup", path: path.to_owned(), source: e })
        }
        _ => Ok(()),
    }
}

fn remove_dir(path: &Path) -> Result<(), FreezeError> {
    match fs::remove_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(FreezeError::Io { what: "remove the cgroup", path: path.to_owned(), source: e })
        }
        _ => Ok(()),
    }
}

fn write(path: &Path, value: &str, what: &'static str) -> Result<(), FreezeError> {
    fs::write(path, value).map_err(|source| FreezeError::Io { what, path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_names_round_trip() {
        let origins: [&[u8]; 5] =
            [b"/", b"/user.slice/user-1000.slice/session-3.scope", b"/a%2Fb/c%", b"/x y", b"/u/\xff\xfe%"];
        for origin in origins {
            let name = leaf_name(origin);
            assert!(!name.as_bytes().contains(&b'/'), "{name:?}");
            assert_eq!(origin_of(&name).as_deref(), Some(origin));
        }
        assert_eq!(leaf_name(format!("/{}", "a".repeat(300)).as_bytes()), UNKNOWN);
        assert_eq!(origin_of(OsStr::new(UNKNOWN)), None);
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/sys/fs/cgroup\040x"), "/sys/fs/cgroup x");
        assert_eq!(unescape(r"/a\b"), r"/a\b");
    }
}
