//! File operations submitted through io_uring, the way evasive malware does
//! its I/O: the victim's open, size query, reads, writes, fsync, close and
//! rename are ring entries, not system calls of their own, so a monitor that
//! watches system calls (seccomp, syscall tracing, `/proc/PID/syscall`) sees
//! only `io_uring_enter`.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use io_uring::{opcode, squeue, types, IoUring};

/// One ring; one entry in flight at a time, which keeps the simulator's
/// order of operations as readable as the system-call families'.
pub(crate) struct Ring(IoUring);

/// A file opened through the ring. It only exists inside [`Ring::with_file`],
/// which closes it through the ring too.
pub(crate) struct RingFile<'a> {
    ring: &'a mut Ring,
    fd: RawFd,
}

impl Ring {
    pub fn new() -> io::Result<Ring> {
        IoUring::new(4).map(Ring)
    }

    /// Opens `path` read-write (never following a final symlink), hands it to
    /// `work`, then fsyncs and closes it, all through the ring. The close
    /// happens whatever `work` returned; the first error wins.
    pub fn with_file<T>(
        &mut self,
        path: &Path,
        work: impl FnOnce(&mut RingFile<'_>) -> io::Result<T>,
    ) -> io::Result<T> {
        let name = c_path(path)?;
        let open = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), name.as_ptr())
            .flags(libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .build();
        // SAFETY: `name` outlives the call, which waits for the completion.
        let fd = unsafe { self.complete(&open)? } as RawFd;
        let mut file = RingFile { ring: self, fd };
        let done = work(&mut file).and_then(|out| file.sync().map(|()| out));
        let close = opcode::Close::new(types::Fd(fd)).build();
        // SAFETY: the entry carries no pointer.
        let closed = unsafe { self.complete(&close) };
        let out = done?;
        closed?;
        Ok(out)
    }

    /// `renameat(AT_FDCWD, from, AT_FDCWD, to)`, replacing `to` as rename(2) does.
    pub fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (from, to) = (c_path(from)?, c_path(to)?);
        let entry =
            opcode::RenameAt::new(types::Fd(libc::AT_FDCWD), from.as_ptr(), types::Fd(libc::AT_FDCWD), to.as_ptr())
                .build();
        // SAFETY: both names outlive the call, which waits for the completion.
        unsafe { self.complete(&entry) }.map(drop)
    }

    /// Submits `entry` and waits for its completion; a negative result is the errno.
    ///
    /// # Safety
    /// Every pointer in `entry` must stay valid until this returns. It returns
    /// only once the entry has completed or was never submitted: an error from
    /// `io_uring_enter` other than EINTR comes before anything is submitted.
    unsafe fn complete(&mut self, entry: &squeue::Entry) -> io::Result<u32> {
        // SAFETY: forwarded to the caller; the queue is empty between calls,
        // so the push cannot find it full.
        unsafe { self.0.submission().push(entry) }.map_err(|_| io::Error::other("io_uring submission queue full"))?;
        loop {
            if let Some(cqe) = self.0.completion().next() {
                let res = cqe.result();
                return if res < 0 { Err(io::Error::from_raw_os_error(-res)) } else { Ok(res as u32) };
            }
            match self.0.submit_and_wait(1) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
    }
}

impl RingFile<'_> {
    /// The file's size, by `IORING_OP_STATX` on the descriptor.
    pub fn len(&mut self) -> io::Result<u64> {
        // SAFETY: statx is plain data; all-zero is a valid value.
        let mut stx: libc::statx = unsafe { std::mem::zeroed() };
        let entry = opcode::Statx::new(types::Fd(self.fd), c"".as_ptr(), (&raw mut stx).cast::<types::statx>())
            .flags(libc::AT_EMPTY_PATH)
            .mask(libc::STATX_SIZE)
            .build();
        // SAFETY: `stx` and the empty name outlive the call, which waits for the completion.
        unsafe { self.ring.complete(&entry)? };
        Ok(stx.stx_size)
    }

    pub fn read_exact_at(&mut self, mut buf: &mut [u8], mut off: u64) -> io::Result<()> {
        while !buf.is_empty() {
            let entry =
                opcode::Read::new(types::Fd(self.fd), buf.as_mut_ptr(), chunk_len(buf.len())).offset(off).build();
            // SAFETY: `buf` is borrowed for the call, which waits for the completion.
            let n = unsafe { self.ring.complete(&entry)? } as usize;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf = &mut buf[n..];
            off += n as u64;
        }
        Ok(())
    }

    pub fn write_all_at(&mut self, mut buf: &[u8], mut off: u64) -> io::Result<()> {
        while !buf.is_empty() {
            let entry = opcode::Write::new(types::Fd(self.fd), buf.as_ptr(), chunk_len(buf.len())).offset(off).build();
            // SAFETY: `buf` is borrowed for the call, which waits for the completion.
            let n = unsafe { self.ring.complete(&entry)? } as usize;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
            off += n as u64;
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        let entry = opcode::Fsync::new(types::Fd(self.fd)).build();
        // SAFETY: the entry carries no pointer.
        unsafe { self.ring.complete(&entry) }.map(drop)
    }
}

/// A ring entry's length field is 32 bits; longer buffers go in several entries.
fn chunk_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}
