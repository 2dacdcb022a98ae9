//! Stopping, resuming and killing processes without ever hitting the wrong one.
//!
//! Every process is named by its [`ProcKey`] (pid and start time) and every
//! signal goes through a pidfd opened before the start time is checked, so a
//! pid reused by an unrelated process is never signalled. A [`Guard`] keeps
//! init, kernel threads and the agent's own ancestry out of reach.

mod guard;
mod signal;
mod tree;

pub use mamori_event::ProcKey;
pub use mamori_proc::start_time;
use rustix::process::Signal;

pub use guard::Guard;
pub use tree::suspend_tree;

#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("process {} (start {}) is protected (init, a kernel thread, mamori or one of its ancestors) and was not signalled", .0.pid, .0.start)]
    Refused(ProcKey),
    #[error("process {} (start {}) has exited or its pid now belongs to another process", .0.pid, .0.start)]
    Gone(ProcKey),
    #[error("cannot signal process {} (start {}): {source}", key.pid, key.start)]
    Signal { key: ProcKey, source: std::io::Error },
}

pub fn proc_key(pid: u32) -> Option<ProcKey> {
    mamori_proc::read_stat(pid).map(|s| s.key())
}

/// SIGCONT each key still alive with the same start time; returns those resumed.
///
/// A process that was the foreground job of an interactive shell was taken
/// off the terminal by that shell when it stopped; it resumes as a background
/// job (`fg` in that shell brings it back).
pub fn resume(keys: &[ProcKey]) -> Vec<ProcKey> {
    send_each(keys, Signal::CONT)
}

/// SIGKILL each key still alive with the same start time; returns those
/// killed. A stopped process dies from SIGKILL without being continued.
pub fn kill(keys: &[ProcKey]) -> Vec<ProcKey> {
    send_each(keys, Signal::KILL)
}

/// Whether the process is stopped (state `T`) and still the same process.
pub fn is_stopped(key: ProcKey) -> bool {
    matches!(mamori_proc::read_stat(key.pid), Some(st) if st.start == key.start && st.state == 'T')
}

fn send_each(keys: &[ProcKey], sig: Signal) -> Vec<ProcKey> {
    keys.iter().copied().filter(|&k| signal::send(k, sig).is_ok()).collect()
}
