//! A wake-up fd (an eventfd): a worker thread tells the sensor's wait that
//! it has something ready. Shared by the close worker and the vault door.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

#[derive(Debug)]
pub(crate) struct Wake(OwnedFd);

impl Wake {
    pub fn new() -> io::Result<Wake> {
        // SAFETY: plain syscall; the result is a new fd we own or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: just created, owned by nobody else.
        Ok(Wake(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Readable while something is ready.
    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our eventfd.
        unsafe { libc::write(self.raw(), (&one as *const u64).cast(), 8) };
    }

    /// Clears the counter (what is ready is then taken by the caller).
    pub fn clear(&self) {
        let mut count = 0u64;
        // SAFETY: reads 8 bytes into a valid u64; the fd is non-blocking.
        unsafe { libc::read(self.raw(), (&mut count as *mut u64).cast(), 8) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_after_a_notify_until_cleared() {
        let wake = Wake::new().unwrap();
        let readable = |w: &Wake| {
            let mut pfd = libc::pollfd { fd: w.raw(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
        };
        assert!(!readable(&wake));
        wake.notify();
        wake.notify();
        assert!(readable(&wake));
        wake.clear();
        assert!(!readable(&wake));
    }
}
