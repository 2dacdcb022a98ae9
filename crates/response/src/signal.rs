//! Signalling a process by identity, never by a pid that may have been reused.
//!
//! A pidfd is opened first and the start time checked afterwards: if the pid
//! was reused in between, the start time no longer matches; if it is reused
//! after the check, the pidfd still names the old (now dead) process and the
//! signal fails instead of reaching a stranger.

use std::io;

use mamori_event::ProcKey;
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

#[derive(Debug)]
pub(crate) enum SignalError {
    /// The process exited, or its pid now belongs to another process.
    Gone,
    Os(io::Error),
}

pub(crate) fn send(key: ProcKey, sig: Signal) -> Result<(), SignalError> {
    let pid = i32::try_from(key.pid).ok().and_then(Pid::from_raw).ok_or(SignalError::Gone)?;
    let fd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Err(SignalError::Gone),
        Err(e) => return Err(SignalError::Os(e.into())),
    };
    if mamori_proc::start_time(key.pid) != Some(key.start) {
        return Err(SignalError::Gone);
    }
    match pidfd_send_signal(&fd, sig) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::SRCH) => Err(SignalError::Gone),
        Err(e) => Err(SignalError::Os(e.into())),
    }
}
