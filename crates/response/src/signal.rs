//! Signalling a process by identity, never by a pid that may have been reused.
//!
//! A pidfd is opened first and the start time checked afterwards: if the pid
//! was reused in between, the start time no longer matches; if it is reused
//! after the check, the pidfd still names the old (now dead) process and the
//! signal fails instead of reaching a stranger.

use std::io;
use std::os::fd::OwnedFd;

use mamori_event::ProcKey;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};

#[derive(Debug)]
pub(crate) enum SignalError {
    /// The process exited, or its pid now belongs to another process.
    Gone,
    Os(io::Error),
}

pub(crate) fn send(key: ProcKey, sig: Signal) -> Result<(), SignalError> {
    let fd = pidfd(key)?;
    match pidfd_send_signal(&fd, sig) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::SRCH) => Err(SignalError::Gone),
        Err(e) => Err(SignalError::Os(e.into())),
    }
}

/// A pidfd of the process `key` names, opened before its start time was checked.
pub(crate) fn pidfd(key: ProcKey) -> Result<OwnedFd, SignalError> {
    let pid = i32::try_from(key.pid).ok().and_then(Pid::from_raw).ok_or(SignalError::Gone)?;
    let fd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Err(SignalError::Gone),
        Err(e) => return Err(SignalError::Os(e.into())),
    };
    if mamori_proc::start_time(key.pid) != Some(key.start) {
        return Err(SignalError::Gone);
    }
    Ok(fd)
}

/// Whether the process `fd` (a pidfd of `key`) still held its pid just now.
///
/// Anything addressed by pid (a write to `cgroup.procs`) between opening the
/// pidfd and a `true` here reached that process: a pid is only reused after
/// its process exited and was reaped. An exited process may still hold its
/// pid as a zombie, which the start time tells.
pub(crate) fn holds_pid(fd: &OwnedFd, key: ProcKey) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    let exited = poll(&mut fds, Some(&Timespec { tv_sec: 0, tv_nsec: 0 })).map_or(true, |n| n > 0);
    !exited || mamori_proc::start_time(key.pid) == Some(key.start)
}
