//! The one seam through which the sensor talks to fanotify: group creation,
//! marks, reads and permission answers. Everything above it is plain data.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A fanotify group (its notification fd).
#[derive(Debug)]
pub struct Group {
    fd: OwnedFd,
}

impl Group {
    pub fn init(flags: libc::c_uint, event_f_flags: libc::c_uint) -> io::Result<Group> {
        // SAFETY: plain syscall; the result is a new fd we own or -1.
        let fd = unsafe { libc::fanotify_init(flags, event_f_flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by the kernel and nobody else owns it.
        Ok(Group { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// Adds (or removes) a mark on the inode of an open directory; naming it
    /// by fd rather than path leaves no window for a swapped symlink.
    pub fn mark(&self, flags: libc::c_uint, mask: u64, dir: &File) -> io::Result<()> {
        // SAFETY: a NULL path with a dirfd marks the dirfd's own inode.
        let r = unsafe { libc::fanotify_mark(self.fd.as_raw_fd(), flags, mask, dir.as_raw_fd(), std::ptr::null()) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads a batch of events; `Ok(0)` when none are queued (the fd is
    /// non-blocking).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: buf is valid for writes of buf.len() bytes.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(e),
            }
        }
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Answers a permission event on group fd `group`. The opener stays blocked
/// until this is done, so callers answer through [`Answer`].
fn respond(group: RawFd, event_fd: RawFd, allow: bool) -> io::Result<()> {
    let resp = libc::fanotify_response { fd: event_fd, response: if allow { libc::FAN_ALLOW } else { libc::FAN_DENY } };
    let size = std::mem::size_of::<libc::fanotify_response>();
    // SAFETY: resp is a valid, fully initialised fanotify_response.
    let n = unsafe { libc::write(group, (&resp as *const libc::fanotify_response).cast(), size) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A pending permission answer: allow unless told otherwise, and always sent,
/// even when the event's processing fails or panics, because an unanswered
/// event hangs the opener.
pub struct Answer {
    group: RawFd,
    event_fd: RawFd,
    allow: bool,
}

impl Answer {
    pub fn new(group: &Group, event_fd: RawFd) -> Answer {
        Answer { group: group.raw(), event_fd, allow: true }
    }

    pub fn deny(&mut self) {
        self.allow = false;
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if let Err(e) = respond(self.group, self.event_fd, self.allow) {
            tracing::error!(error = %e, "answering a permission event failed");
        }
    }
}
