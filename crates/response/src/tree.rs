//! Stopping a process tree without letting it outrun the stop.
//!
//! The root is stopped first so it cannot fork again, then its descendants
//! breadth-first. A process that was already forking when the scan ran can
//! still produce a child the scan missed, so every round waits until the
//! stopped processes have really stopped (after which none of them can fork)
//! and scans again; the tree is complete when a scan finds nothing new.
//!
//! Each stopped process is also moved into a frozen cgroup of the tree's own
//! ([`crate::freezer`]): a SIGCONT from its user would end the stop, not the
//! freeze. A child forked after its parent was moved is born frozen; one
//! forked while its parent was being moved is still its child at the rescan.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use mamori_event::ProcKey;
use rustix::process::Signal;

use crate::freezer::{FreezeError, Freezer};
use crate::signal::{self, SignalError};
use crate::{Guard, ResponseError};

/// Rounds of "stop, wait, rescan" before giving up on a tree that keeps growing.
const MAX_ROUNDS: usize = 32;

/// How long one round waits for signalled processes to reach the stopped
/// state. A process blocked in the kernel (for example on one of mamori's own
/// permission events) does not stop until it leaves its system call, so this
/// must stay short; such a process stops on its way back to user space.
const SETTLE: Duration = Duration::from_millis(200);

/// A stopped tree.
#[derive(Debug)]
pub struct Suspension {
    /// The processes stopped, root first.
    pub procs: Vec<ProcKey>,
    /// Why some or all of them are held by SIGSTOP alone, which any process
    /// of their user can undo with SIGCONT; `None` when all are frozen.
    pub stop_only: Option<FreezeError>,
}

/// SIGSTOP the root and every descendant, root first then breadth-first,
/// and freeze each in the tree's cgroup, rescanning until no new descendant
/// appears.
///
/// Descendants the guard refuses are skipped together with their subtree.
/// Descendants that re-parented themselves away from the tree (a daemon's
/// double fork whose middle process exited) before the stop are not found;
/// one forked by a frozen process is born frozen and stays in the tree's
/// cgroup, so `resume` and `kill` reach it, although `procs` does not name it.
pub fn suspend_tree(root: ProcKey, guard: &Guard) -> Result<Suspension, ResponseError> {
    if !guard.allows(root) {
        return Err(ResponseError::Refused(root));
    }
    match signal::send(root, Signal::STOP) {
        Ok(()) => {}
        Err(SignalError::Gone) => return Err(ResponseError::Gone(root)),
        Err(SignalError::Os(source)) => return Err(ResponseError::Signal { key: root, source }),
    }
    let mut hold = match Freezer::create(root) {
        Ok(freezer) => Hold { freezer: Some(freezer), failed: None, held: HashSet::new() },
        Err(e) => Hold { freezer: None, failed: Some(e), held: HashSet::new() },
    };
    hold.admit(root);
    let mut stopped = vec![root];
    let mut members: HashSet<ProcKey> = HashSet::from([root]);
    let mut refused: HashSet<ProcKey> = HashSet::new();
    for _ in 0..MAX_ROUNDS {
        let settled = wait_stopped(&stopped, &hold);
        let found = stop_descendants(guard, &mut hold, &mut stopped, &mut members, &mut refused);
        if found == 0 && settled {
            break;
        }
    }
    Ok(Suspension { procs: stopped, stop_only: hold.failed })
}

/// The tree's frozen cgroup, and what could not be put in it.
struct Hold {
    freezer: Option<Freezer>,
    failed: Option<FreezeError>,
    held: HashSet<ProcKey>,
}

impl Hold {
    fn admit(&mut self, key: ProcKey) {
        let Some(freezer) = &mut self.freezer else { return };
        match freezer.admit(key) {
            Ok(()) => {
                self.held.insert(key);
            }
            Err(e) => {
                self.failed.get_or_insert(e);
            }
        }
    }
}

/// One scan of `/proc`, stopping every descendant of `members` not yet
/// stopped. Returns how many were newly stopped.
fn stop_descendants(
    guard: &Guard,
    hold: &mut Hold,
    stopped: &mut Vec<ProcKey>,
    members: &mut HashSet<ProcKey>,
    refused: &mut HashSet<ProcKey>,
) -> usize {
    let procs = mamori_proc::all();
    // A parent edge counts only if the parent pid still belongs to the member
    // with that start time; a reused pid's children are strangers.
    let current: HashMap<u32, u64> = procs.iter().map(|s| (s.pid, s.start)).collect();
    let mut children: HashMap<ProcKey, Vec<ProcKey>> = HashMap::new();
    for st in &procs {
        if let Some(&start) = current.get(&st.ppid) {
            children.entry(ProcKey { pid: st.ppid, start }).or_default().push(st.key());
        }
    }
    let mut queue: VecDeque<ProcKey> = stopped.iter().copied().collect();
    let mut found = 0;
    while let Some(parent) = queue.pop_front() {
        for &child in children.get(&parent).map(Vec::as_slice).unwrap_or_default() {
            if members.contains(&child) || refused.contains(&child) {
                continue;
            }
            if !guard.allows(child) {
                refused.insert(child);
                continue;
            }
            // A child that exited or failed to stop is not part of the result,
            // but its own children (re-parented or not yet) are still searched.
            if signal::send(child, Signal::STOP).is_ok() {
                hold.admit(child);
                stopped.push(child);
                found += 1;
            }
            members.insert(child);
            queue.push_back(child);
        }
    }
    found
}

/// Waits (briefly) until every key is frozen, or every thread of it is
/// stopped, gone, a zombie, or blocked in the kernel. Returns whether all got there.
fn wait_stopped(keys: &[ProcKey], hold: &Hold) -> bool {
    let deadline = Instant::now() + SETTLE;
    let mut pause = Duration::from_micros(50);
    loop {
        // A process SIGCONTed after its stop but before the freeze took hold
        // shows as sleeping, not stopped, once frozen.
        let frozen = hold.freezer.as_ref().is_some_and(Freezer::frozen);
        if keys.iter().all(|&k| (frozen && hold.held.contains(&k)) || settled(k, hold.held.contains(&k))) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

fn settled(key: ProcKey, in_freezer: bool) -> bool {
    if mamori_proc::start_time(key.pid) != Some(key.start) {
        return true;
    }
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", key.pid)) else { return true };
    tasks.filter_map(Result::ok).all(|t| {
        let stat = t
            .file_name()
            .to_str()
            .and_then(|tid| tid.parse().ok())
            .and_then(|tid| mamori_proc::thread_stat(key.pid, tid));
        // 'D': blocked in the kernel, runs no user code, stops on the way out;
        // an io_uring worker runs none either (waiting for it cost seconds).
        stat.is_none_or(|s| {
            s.is_io_worker()
                || matches!(s.state, 'T' | 't' | 'Z' | 'X' | 'x' | 'D')
                || (in_freezer && s.state == 'S' && trapped(&t.path()))
        })
    })
}

/// Whether a sleeping thread sleeps in the freezer's trap, which shows as
/// 'S' inside `get_signal`. While one thread of a process waits in the
/// kernel (on a permission event mamori answers only after the stop), a
/// SIGSTOP stops none of the others, which were never woken for it; the
/// cgroup freeze wakes and traps each one, and the cgroup reads as frozen
/// only once the waiting thread is trapped too.
fn trapped(task: &std::path::Path) -> bool {
    std::fs::read_to_string(task.join("wchan")).is_ok_and(|w| matches!(w.trim(), "get_signal" | "do_freezer_trap"))
}
