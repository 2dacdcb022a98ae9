//! Waiting for any of the sensor's sources to have something to read.
//!
//! An epoll set, registered once: `poll` handed the kernel every fd again on
//! each wake, and the sensor wakes for nearly every file a busy program
//! writes (a tenth of the agent's CPU went to it).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// What the sensor reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Fid,
    Perm,
    Closes,
    Door,
    Bpf,
}

/// The sources that had something to read at one wake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Woken(u8);

impl Woken {
    pub(crate) fn has(self, source: Source) -> bool {
        self.0 & (1 << source as u8) != 0
    }
}

pub(crate) struct Ready {
    epoll: OwnedFd,
}

impl Ready {
    pub(crate) fn new() -> io::Result<Ready> {
        // SAFETY: plain syscall; the fd is checked before it is owned.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd that nothing else owns.
        Ok(Ready { epoll: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Level-triggered, as `poll` was: a source with events left after a
    /// round is reported again at the next wait.
    pub(crate) fn add(&self, fd: RawFd, source: Source) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: source as u64 };
        // SAFETY: ev is a valid epoll_event; the kernel copies it.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The sources with something to read; none when `timeout` passed or a
    /// signal came first.
    pub(crate) fn wait(&self, timeout: Duration) -> io::Result<Woken> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 8];
        // SAFETY: evs holds evs.len() entries for the kernel to fill.
        let n = unsafe {
            libc::epoll_wait(self.epoll.as_raw_fd(), evs.as_mut_ptr(), evs.len() as i32, timeout.as_millis() as i32)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(Woken::default()) } else { Err(e) };
        }
        Ok(Woken(evs[..n as usize].iter().fold(0, |set, e| set | 1 << e.u64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    #[test]
    fn reports_only_the_sources_with_data() {
        let ready = Ready::new().unwrap();
        let (mut a_in, a_out) = UnixStream::pair().unwrap();
        let (mut b_in, b_out) = UnixStream::pair().unwrap();
        ready.add(a_out.as_raw_fd(), Source::Door).unwrap();
        ready.add(b_out.as_raw_fd(), Source::Fid).unwrap();
        assert_eq!(ready.wait(Duration::from_millis(10)).unwrap(), Woken::default());
        a_in.write_all(b"x").unwrap();
        let woken = ready.wait(Duration::ZERO).unwrap();
        assert!(woken.has(Source::Door) && !woken.has(Source::Fid) && !woken.has(Source::Perm));
        b_in.write_all(b"y").unwrap();
        // Nothing was read: level-triggered, so both are still ready.
        let woken = ready.wait(Duration::ZERO).unwrap();
        assert!(woken.has(Source::Door) && woken.has(Source::Fid));
    }
}
