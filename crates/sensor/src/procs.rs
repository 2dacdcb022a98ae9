//! Attribution: which process did it, introduced once to the engine.
//!
//! Threads are mapped to their process (fanotify reports thread ids), and a
//! process is keyed by pid plus start time so a reused pid reads as a new
//! process. Before a process's first event the table hands out a
//! [`ProcInfo`] for it and for every ancestor not yet introduced, top-down.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use mamori_event::{ProcInfo, ProcKey};
use mamori_proc::{read_proc, read_stat, read_status, Stat, Status};

use crate::trusted::Trusted;

/// Above this many cached threads, entries of threads that are gone are dropped.
const PRUNE_AT: usize = 8192;
/// A ppid chain longer than this is treated as a loop.
const MAX_DEPTH: usize = 1024;

#[derive(Debug, PartialEq)]
pub enum Who {
    /// mamori itself, or a process it admitted (see [`Trusted`]): answered,
    /// never reported.
    Own,
    /// Another process; `None` when it is gone and was never seen.
    Proc(Option<ProcKey>),
}

#[derive(Debug, Default)]
pub struct Procs {
    own: u32,
    trusted: Trusted,
    /// Processes already introduced, by pid.
    introduced: HashMap<u32, ProcKey>,
    /// Thread id → (thread start time, its process, when that was last read).
    threads: HashMap<i32, (u64, ProcKey, Instant)>,
}

/// A thread id seen this recently is taken to be the same thread without
/// reading its start time again (that read was the sensor's largest cost on
/// bulk file work): for the id to belong to another thread by then, the
/// kernel's pids would have to wrap around within it (32768 here: over
/// 300,000 forks a second).
const TRUSTED_FOR: Duration = Duration::from_millis(100);

impl Procs {
    pub fn new(trusted: Trusted) -> Procs {
        Procs { own: std::process::id(), trusted, ..Procs::default() }
    }

    /// Identifies thread `tid`, appending introductions for processes not yet
    /// introduced to `intro`.
    pub fn attribute(&mut self, tid: i32, intro: &mut Vec<ProcInfo>) -> Who {
        let now = Instant::now();
        if let Some(&(_, key, read)) = self.threads.get(&tid) {
            if now.duration_since(read) < TRUSTED_FOR {
                return self.known(key, intro);
            }
        }
        let Some(thread) = read_stat(tid as u32) else {
            // Gone already (FID events can arrive after exit): last known owner.
            return self.threads.get(&tid).map_or(Who::Proc(None), |&(_, key, _)| self.who(key));
        };
        if let Some(entry) = self.threads.get_mut(&tid) {
            if entry.0 == thread.start {
                entry.2 = now;
                let key = entry.1;
                return self.known(key, intro);
            }
        }
        let Some((status, tgid)) = read_status(tid as u32).and_then(|s| Some((s, s.tgid?))) else {
            return Who::Proc(None);
        };
        // A process's main thread: its status is the process's (read once).
        let (process, status) = if tgid == thread.pid { (Some(thread), Some(status)) } else { (read_stat(tgid), None) };
        let Some(process) = process else { return Who::Proc(None) };
        let key = process.key();
        if self.threads.len() >= PRUNE_AT {
            self.prune();
        }
        self.threads.insert(tid, (thread.start, key, now));
        let who = self.who(key);
        if who != Who::Own && self.introduced.get(&tgid) != Some(&key) {
            self.introduce(process, status, intro);
        }
        who
    }

    /// A process already seen: introduced now if it was first seen while
    /// admitted and no longer is (a restore that closed its ticket early).
    fn known(&mut self, key: ProcKey, intro: &mut Vec<ProcInfo>) -> Who {
        let who = self.who(key);
        if who != Who::Own && self.introduced.get(&key.pid) != Some(&key) {
            // Gone, its event goes unintroduced, as for any process never seen.
            if let Some(process) = read_stat(key.pid).filter(|p| p.start == key.start) {
                self.introduce(process, None, intro);
            }
        }
        who
    }

    fn who(&self, key: ProcKey) -> Who {
        if key.pid == self.own || self.trusted.holds(key) {
            Who::Own
        } else {
            Who::Proc(Some(key))
        }
    }

    /// Introduces `process` (its `status` when already read) and the
    /// ancestors not introduced yet, top down.
    fn introduce(&mut self, process: Stat, status: Option<Status>, intro: &mut Vec<ProcInfo>) {
        let mut chain = vec![process];
        let mut parents = Vec::new();
        loop {
            let ppid = chain.last().expect("chain starts non-empty").ppid;
            let parent = if ppid == 0 { None } else { read_stat(ppid) };
            let Some(parent) = parent else {
                parents.push(None);
                break;
            };
            parents.push(Some(parent.key()));
            let known = self.introduced.get(&ppid) == Some(&parent.key());
            let looped = chain.iter().any(|s| s.pid == ppid) || chain.len() >= MAX_DEPTH;
            if known || looped {
                break;
            }
            chain.push(parent);
        }
        for (i, (stat, parent)) in chain.into_iter().zip(parents).enumerate().rev() {
            let info = proc_info(&stat, status.filter(|_| i == 0), parent);
            self.introduced.insert(stat.pid, info.key);
            intro.push(info);
        }
    }

    fn prune(&mut self) {
        self.threads.retain(|tid, _| std::path::Path::new(&format!("/proc/{tid}")).exists());
        self.introduced.retain(|pid, _| std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}

fn proc_info(stat: &Stat, status: Option<Status>, parent: Option<ProcKey>) -> ProcInfo {
    let pid = stat.pid;
    let exe_path = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let exe = exe_path.as_ref().map(mamori_event::names::encode).unwrap_or_default();
    let cmdline = read_proc(&format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| mamori_event::names::encode(std::ffi::OsStr::from_bytes(a)))
                .collect()
        })
        .unwrap_or_default();
    ProcInfo {
        key: stat.key(),
        parent,
        uid: status.or_else(|| read_status(pid)).and_then(|s| s.uid).unwrap_or(u32::MAX),
        pgid: stat.pgrp,
        sid: stat.session,
        exe,
        cmdline,
        // Once per process, and cheap (its sockets in /proc): no server is asked.
        client: exe_path.and_then(|exe| mamori_served::client_of_exe(pid, &exe)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn introduces_a_live_child_and_its_ancestors_top_down() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        // spawn() returns after fork; wait until the exec has finished (its
        // arguments are set last) so /proc shows `sleep 5`.
        let cmdline = format!("/proc/{}/cmdline", child.id());
        for _ in 0..500 {
            if std::fs::read(&cmdline).is_ok_and(|c| c.starts_with(b"sleep\0")) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut procs = Procs::new(Trusted::default());
        let mut intro = Vec::new();
        let who = procs.attribute(child.id() as i32, &mut intro);
        let _ = child.kill();
        let _ = child.wait();
        let Who::Proc(Some(key)) = who else { panic!("child not attributed: {who:?}") };
        assert_eq!(key.pid, child.id());
        let last = intro.last().unwrap();
        assert_eq!(last.key, key);
        assert!(last.exe.ends_with("/sleep"), "{}", last.exe);
        assert_eq!(last.cmdline, ["sleep", "5"]);
        // The test process is its parent and was introduced before it.
        let me = intro.iter().position(|p| p.key.pid == std::process::id()).unwrap();
        assert_eq!(last.parent, Some(intro[me].key));
        assert_eq!(intro[0].parent, None, "walk ends at a root");
        // Known now: no second introduction.
        let mut again = Vec::new();
        assert_eq!(procs.attribute(child.id() as i32, &mut again), Who::Proc(Some(key)));
        assert!(again.is_empty());
    }

    #[test]
    fn own_threads_are_own() {
        let mut procs = Procs::new(Trusted::default());
        let mut intro = Vec::new();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        assert_eq!(procs.attribute(tid, &mut intro), Who::Own);
        assert!(intro.is_empty());
    }
}
