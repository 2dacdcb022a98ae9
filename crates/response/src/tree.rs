//! Stopping a process tree without letting it outrun the stop.
//!
//! The root is stopped first so it cannot fork again, then its descendants
//! breadth-first. A process that was already forking when the scan ran can
//! still produce a child the scan missed, so every round waits until the
//! stopped processes have really stopped (after which none of them can fork)
//! and scans again; the tree is complete when a scan finds nothing new.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use mamori_event::ProcKey;
use rustix::process::Signal;

use crate::signal::{self, SignalError};
use crate::{Guard, ResponseError};

/// Rounds of "stop, wait, rescan" before giving up on a tree that keeps growing.
const MAX_ROUNDS: usize = 32;

/// How long one round waits for signalled processes to reach the stopped
/// state. A process blocked in the kernel (for example on one of mamori's own
/// permission events) does not stop until it leaves its system call, so this
/// must stay short; such a process stops on its way back to user space.
const SETTLE: Duration = Duration::from_millis(200);

/// SIGSTOP the root and every descendant, root first then breadth-first,
/// rescanning until no new descendant appears. Returns the keys stopped.
///
/// Descendants the guard refuses are skipped together with their subtree.
/// Descendants that re-parented themselves away from the tree (a daemon's
/// double fork whose middle process exited) are not found.
pub fn suspend_tree(root: ProcKey, guard: &Guard) -> Result<Vec<ProcKey>, ResponseError> {
    if !guard.allows(root) {
        return Err(ResponseError::Refused(root));
    }
    match signal::send(root, Signal::STOP) {
        Ok(()) => {}
        Err(SignalError::Gone) => return Err(ResponseError::Gone(root)),
        Err(SignalError::Os(source)) => return Err(ResponseError::Signal { key: root, source }),
    }
    let mut stopped = vec![root];
    let mut members: HashSet<ProcKey> = HashSet::from([root]);
    let mut refused: HashSet<ProcKey> = HashSet::new();
    for _ in 0..MAX_ROUNDS {
        let settled = wait_stopped(&stopped);
        let found = stop_descendants(guard, &mut stopped, &mut members, &mut refused);
        if found == 0 && settled {
            break;
        }
    }
    Ok(stopped)
}

/// One scan of `/proc`, stopping every descendant of `members` not yet
/// stopped. Returns how many were newly stopped.
fn stop_descendants(
    guard: &Guard,
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
                stopped.push(child);
                found += 1;
            }
            members.insert(child);
            queue.push_back(child);
        }
    }
    found
}

/// Waits (briefly) until every thread of every key is stopped, gone, a
/// zombie, or blocked in the kernel. Returns whether all got there.
fn wait_stopped(keys: &[ProcKey]) -> bool {
    let deadline = Instant::now() + SETTLE;
    let mut pause = Duration::from_micros(50);
    loop {
        if keys.iter().all(|&k| settled(k)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

fn settled(key: ProcKey) -> bool {
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
        stat.is_none_or(|s| s.is_io_worker() || matches!(s.state, 'T' | 't' | 'Z' | 'X' | 'x' | 'D'))
    })
}
