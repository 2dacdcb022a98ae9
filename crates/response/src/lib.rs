//! Stopping, resuming and killing processes without ever hitting the wrong one.
//!
//! Every process is named by its [`ProcKey`] (pid and start time) and every
//! signal goes through a pidfd opened before the start time is checked, so a
//! pid reused by an unrelated process is never signalled. A [`Guard`] keeps
//! init, kernel threads and the agent's own ancestry out of reach. A stopped
//! tree is also frozen in a cgroup of its own, so that no SIGCONT from its
//! user lets it run again.

mod freezer;
mod guard;
mod signal;
mod tree;

pub use mamori_event::ProcKey;
pub use mamori_proc::start_time;
use rustix::process::Signal;

use freezer::Freezer;
pub use freezer::{probe as probe_freezer, FreezeError};
pub use guard::Guard;
pub use tree::{suspend_tree, Suspension};

#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("process {} (start {}) is protected (init, a kernel thread, mamori or one of its ancestors) and was not signalled", .0.pid, .0.start)]
    Refused(ProcKey),
    #[error("process {} (start {}) has exited or its pid now belongs to another process", .0.pid, .0.start)]
    Gone(ProcKey),
    #[error("cannot signal process {} (start {}): {source}", key.pid, key.start)]
    Signal { key: ProcKey, source: std::io::Error },
    #[error("the stopped processes stay frozen: {0}")]
    Thaw(#[source] FreezeError),
}

/// What [`resume`] or [`kill`] did.
#[derive(Debug)]
pub struct Released {
    /// The keys signalled: alive, with the same start time.
    pub procs: Vec<ProcKey>,
    /// Why the tree's cgroup could not be emptied or removed, if so; the
    /// processes were signalled all the same.
    pub cgroup: Option<FreezeError>,
}

pub fn proc_key(pid: u32) -> Option<ProcKey> {
    mamori_proc::read_stat(pid).map(|s| s.key())
}

/// Puts the processes of the tree `keys` names (as [`suspend_tree`]
/// returned them: root first) back in the cgroups they came from, thaws
/// the tree's cgroup, SIGCONTs each key still alive with the same start time
/// and removes that cgroup. Fails, signalling nothing, only if the tree's
/// cgroup cannot be thawed (what is still in it stays frozen).
///
/// A process that was the foreground job of an interactive shell was taken
/// off the terminal by that shell when it stopped; it resumes as a background
/// job (`fg` in that shell brings it back).
pub fn resume(keys: &[ProcKey]) -> Result<Released, ResponseError> {
    let Some(freezer) = keys.first().and_then(|&root| Freezer::find(root)) else {
        return Ok(Released { procs: send_each(keys, Signal::CONT), cgroup: None });
    };
    // Moved out while still frozen (a move out thaws each), so that none
    // that a SIGCONT already released can fork inside before it goes.
    let put_back = freezer.put_all_back();
    freezer.thaw().map_err(ResponseError::Thaw)?;
    let procs = send_each(keys, Signal::CONT);
    Ok(Released { procs, cgroup: put_back.and_then(|()| freezer.remove()).err() })
}

/// SIGKILLs each key still alive with the same start time, and anything
/// else in the tree's cgroup (`keys` as [`suspend_tree`] returned them: root
/// first), then removes that cgroup. Stopped and frozen processes die from
/// SIGKILL without being continued.
pub fn kill(keys: &[ProcKey]) -> Released {
    let procs = send_each(keys, Signal::KILL);
    let cgroup = keys.first().and_then(|&root| Freezer::find(root)).and_then(|f| f.kill_all_and_remove().err());
    Released { procs, cgroup }
}

/// Whether the process is stopped (state `T`) or frozen, and still the same process.
pub fn is_stopped(key: ProcKey) -> bool {
    matches!(mamori_proc::read_stat(key.pid), Some(st) if st.start == key.start
        && (st.state == 'T' || freezer::in_frozen_cgroup(key.pid)))
}

fn send_each(keys: &[ProcKey], sig: Signal) -> Vec<ProcKey> {
    keys.iter().copied().filter(|&k| signal::send(k, sig).is_ok()).collect()
}
