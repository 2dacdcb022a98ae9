//! `processes.json`: who the actor is, one record per process of its tree.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::{hex, sha256_reader};
use crate::probe::{open_regular, read_noted, split_nul, Notes};
use crate::time::Stamp;

/// Command lines and environments are bounded so that a process cannot make
/// the bundle (or the agent) huge at the worst moment.
const CMDLINE_CAP: u64 = 64 * 1024;
const ENVIRON_CAP: u64 = 64 * 1024;
/// The actor chooses its executable: a huge one must not hold the
/// collection for minutes. Real programs, even statically linked browsers,
/// stay far below this.
const EXE_HASH_CAP: u64 = 512 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub pid: u32,
    pub ppid: Option<u32>,
    /// `R`, `S`, `T` (stopped), `Z`, ... from `/proc/PID/stat`.
    pub state: Option<String>,
    pub comm: Option<String>,
    /// Clock ticks after boot (field 22 of `stat`): with the pid, the
    /// process's identity.
    pub start_ticks: Option<u64>,
    pub started: Option<Stamp>,
    /// The link text of `/proc/PID/exe`, `" (deleted)"` included.
    pub exe: Option<String>,
    /// Read through `/proc/PID/exe`, so a deleted binary is still hashed.
    pub exe_sha256: Option<String>,
    pub exe_size: Option<u64>,
    pub cmdline: Option<Vec<String>>,
    pub cwd: Option<String>,
    pub root: Option<String>,
    /// Real, effective, saved and filesystem ids, as `status` lists them.
    pub uid: Option<Vec<u32>>,
    pub gid: Option<Vec<u32>>,
    pub environ: Option<Vec<String>>,
    pub threads: Vec<u32>,
}

/// `pids` (in the order given, without repeats), then their descendants in
/// pid order. Children are found by parent pid in passes over one listing of
/// `/proc`, until a pass adds none.
pub(crate) fn tree(pids: &[u32]) -> Vec<u32> {
    let mut set = BTreeSet::new();
    let mut order: Vec<u32> = pids.iter().copied().filter(|&p| set.insert(p)).collect();
    let all = mamori_proc::all();
    loop {
        let found: BTreeSet<u32> =
            all.iter().filter(|s| set.contains(&s.ppid) && !set.contains(&s.pid)).map(|s| s.pid).collect();
        if found.is_empty() {
            return order;
        }
        set.extend(&found);
        order.extend(found);
    }
}

pub(crate) fn collect(pid: u32, notes: &mut Notes) -> ProcessRecord {
    let base = PathBuf::from(format!("/proc/{pid}"));
    let stat = mamori_proc::read_stat(pid);
    if stat.is_none() {
        notes.add(Some(pid), format!("/proc/{pid}/stat"), "unreadable (the process may have exited)");
    }
    let link = |name: &str, notes: &mut Notes| {
        notes.keep(pid, &format!("/proc/{pid}/{name}"), fs::read_link(base.join(name))).map(mamori_event::names::encode)
    };
    let exe = link("exe", notes);
    let exe_hash = notes.keep(pid, &format!("/proc/{pid}/exe (content)"), hash_exe(&base.join("exe")));
    let cwd = link("cwd", notes);
    let root = link("root", notes);
    let status =
        read_noted(notes, Some(pid), &base.join("status"), 64 * 1024).map(|b| String::from_utf8_lossy(&b).into_owned());
    let ids = |key: &str| {
        let line = status.as_deref()?.lines().find_map(|l| l.strip_prefix(key))?;
        line.split_whitespace().map(|v| v.parse().ok()).collect::<Option<Vec<u32>>>()
    };
    let threads = match fs::read_dir(base.join("task")) {
        Ok(dir) => {
            let mut t: Vec<u32> = dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
            t.sort_unstable();
            t
        }
        Err(e) => {
            notes.add(Some(pid), format!("/proc/{pid}/task"), e);
            Vec::new()
        }
    };
    ProcessRecord {
        pid,
        ppid: stat.map(|s| s.ppid),
        state: stat.map(|s| s.state.to_string()),
        comm: read_noted(notes, Some(pid), &base.join("comm"), 256)
            .map(|b| String::from_utf8_lossy(&b).trim_end().to_owned()),
        start_ticks: stat.map(|s| s.start),
        started: stat.and_then(|s| mamori_proc::started_ns(s.start)).map(Stamp::from_unix_ns),
        exe,
        exe_sha256: exe_hash.map(|(h, _)| hex(&h)),
        exe_size: exe_hash.map(|(_, n)| n),
        cmdline: read_noted(notes, Some(pid), &base.join("cmdline"), CMDLINE_CAP).map(|b| split_nul(&b)),
        cwd,
        root,
        uid: ids("Uid:"),
        gid: ids("Gid:"),
        environ: read_noted(notes, Some(pid), &base.join("environ"), ENVIRON_CAP).map(|b| split_nul(&b)),
        threads,
    }
}

/// Through the magic link, so a deleted binary is still hashed; one larger
/// than [`EXE_HASH_CAP`] is not, rather than hashed in part.
fn hash_exe(link: &Path) -> io::Result<([u8; 32], u64)> {
    let file = open_regular(link, true)?;
    let size = file.metadata()?.len();
    let too_big = |size: u64| io::Error::other(format!("{size} bytes or more, over the {EXE_HASH_CAP} hashed"));
    if size > EXE_HASH_CAP {
        return Err(too_big(size));
    }
    let (hash, n) = sha256_reader(file.take(EXE_HASH_CAP + 1))?;
    if n > EXE_HASH_CAP {
        return Err(too_big(n));
    }
    Ok((hash, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_record_is_complete() {
        let me = std::process::id();
        let mut notes = Notes::default();
        let r = collect(me, &mut notes);
        assert!(notes.0.is_empty(), "{:?}", notes.0);
        let exe = std::env::current_exe().unwrap();
        let (h, n) = sha256_reader(fs::File::open(&exe).unwrap()).unwrap();
        assert_eq!(r.exe_sha256, Some(hex(&h)));
        assert_eq!(r.exe_size, Some(n));
        assert_eq!(r.ppid, Some(std::os::unix::process::parent_id()));
        // SAFETY: getuid/geteuid have no preconditions.
        let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
        assert_eq!(r.uid.as_ref().map(|u| (u[0], u[1])), Some((uid, euid)));
        assert!(r.threads.contains(&me));
    }

    #[test]
    fn gone_process_is_noted_not_fatal() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut notes = Notes::default();
        let r = collect(pid, &mut notes);
        assert_eq!((r.exe, r.cmdline, r.environ), (None, None, None));
        assert!(notes.0.iter().any(|n| n.what.ends_with("/exe")), "{:?}", notes.0);
    }

    #[test]
    fn tree_includes_descendants() {
        let mut sh = std::process::Command::new("sh").args(["-c", "sleep 30 & wait"]).spawn().unwrap();
        let pid = sh.id();
        // The grandchild appears once sh has forked; wait for it by polling /proc.
        let found = (0..200).find_map(|_| {
            let t = tree(&[pid]);
            if t.len() >= 2 {
                Some(t)
            } else {
                std::thread::sleep(std::time::Duration::from_millis(10));
                None
            }
        });
        let t = found.expect("sh's child appears in the tree");
        let child = *t.iter().find(|&&p| p != pid).unwrap();
        let parent = mamori_proc::read_stat(child).map(|s| s.ppid);
        // SAFETY: kill has no memory preconditions; the pid is the sleep we
        // just saw as sh's child, killed before sh is reaped.
        unsafe { libc::kill(child as i32, libc::SIGKILL) };
        sh.kill().unwrap();
        sh.wait().unwrap();
        assert!(t.contains(&pid));
        assert_eq!(parent, Some(pid));
    }
}
