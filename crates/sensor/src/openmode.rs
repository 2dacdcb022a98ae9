//! How a blocked opener asked to open a file, read from its system call.
//!
//! A permission event does not carry the open flags, but the opener is parked
//! inside its syscall until the event is answered, so `/proc/<tid>/syscall`
//! shows the syscall number and raw arguments. `openat2` passes its flags in
//! a struct in the opener's memory. io_uring opens run on io-wq worker
//! threads that are not inside an open syscall: those (and openers that are
//! already gone) give [`OpenMode::Unknown`], which counts as a write.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use mamori_event::OpenMode;

const SYS_OPEN: u64 = libc::SYS_open as u64;
const SYS_OPENAT: u64 = libc::SYS_openat as u64;
const SYS_CREAT: u64 = libc::SYS_creat as u64;
const SYS_OPENAT2: u64 = libc::SYS_openat2 as u64;

/// Reads blocked threads' `/proc/<tid>/syscall`: asked at every open of a
/// protected file and before every first write to a block of a file kept
/// by range, so each thread's file stays open and is read again from the
/// start (one system call instead of three). A descriptor outlives its
/// thread without passing to a new thread of the same id: it reads as an
/// error then, and is opened afresh.
#[derive(Debug, Default)]
pub struct Syscalls {
    files: HashMap<i32, File>,
}

/// How many times a thread caught awake is read again, and the first pause
/// between later tries (doubling to 0.8 ms): 10 ms at most in all.
const AWAKE_RETRIES: usize = 18;
const AWAKE_PAUSE: std::time::Duration = std::time::Duration::from_micros(100);

/// Descriptors kept at most; past it they are all closed and reopened as needed.
const FILES_MAX: usize = 256;

impl Syscalls {
    /// The line of thread `tid` ("NR arg0 ... sp pc"), into `buf`. Every
    /// answer to a permission event wakes all the group's blocked openers,
    /// which check whether it was theirs and sleep again: one caught awake
    /// reads "running". Read again a few times, briefly, before taking that
    /// for an opener that left its system call; on a busy file share one
    /// open in four was read as "running" and so counted as a write.
    fn read<'b>(&mut self, tid: i32, buf: &'b mut [u8]) -> Option<&'b str> {
        for attempt in 0..AWAKE_RETRIES {
            let n = self.read_once(tid, buf)?;
            if !buf[..n].starts_with(b"running") {
                return std::str::from_utf8(&buf[..n]).ok();
            }
            // Awake, it is runnable until a core is free to let it check and
            // sleep again: a yield may be enough, on a busy machine a pause.
            if attempt < 4 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(AWAKE_PAUSE * (1u32 << (attempt - 4).min(3)));
            }
        }
        let n = self.read_once(tid, buf)?;
        std::str::from_utf8(&buf[..n]).ok()
    }

    fn read_once(&mut self, tid: i32, buf: &mut [u8]) -> Option<usize> {
        let mut n = self.files.get(&tid).and_then(|f| f.read_at(buf, 0).ok());
        if n.is_none() {
            self.files.remove(&tid);
            let file = File::open(format!("/proc/{tid}/syscall")).ok()?;
            n = file.read_at(buf, 0).ok();
            if self.files.len() >= FILES_MAX {
                self.files.clear();
            }
            self.files.insert(tid, file);
        }
        n
    }

    /// The open mode of thread `tid`, which must be blocked in its open.
    pub fn open_mode(&mut self, tid: i32) -> OpenMode {
        // Number and nine hex words: well under 256 bytes.
        let mut buf = [0u8; 256];
        match self.read(tid, &mut buf).and_then(parse_syscall) {
            Some(Call::Flags(flags)) => mode_of_flags(flags),
            Some(Call::Creat) => OpenMode::Truncate,
            Some(Call::OpenHow(addr)) => read_u64(tid, addr).map_or(OpenMode::Unknown, mode_of_flags),
            None => OpenMode::Unknown,
        }
    }

    /// Whether a thread blocked before an access to a file (a pre-content
    /// event) is reading it. Anything else (write, truncate, a page fault, a
    /// thread already gone) counts as a write, which costs a copy, never a loss.
    pub fn reading(&mut self, tid: i32) -> bool {
        // The syscall number comes first: a small buffer is enough.
        let mut buf = [0u8; 32];
        let nr = self.read(tid, &mut buf).and_then(|t| t.split_whitespace().next()?.parse::<i64>().ok());
        matches!(
            nr,
            Some(
                libc::SYS_read
                    | libc::SYS_pread64
                    | libc::SYS_readv
                    | libc::SYS_preadv
                    | libc::SYS_preadv2
                    | libc::SYS_sendfile
            )
        )
    }
}

#[derive(Debug, PartialEq)]
enum Call {
    Flags(u64),
    Creat,
    /// Address of a `struct open_how` in the opener's memory.
    OpenHow(u64),
}

/// Parses "NR arg0 arg1 ... sp pc" (args in hex). A thread not in a syscall
/// shows "running" or "-1 ...".
fn parse_syscall(text: &str) -> Option<Call> {
    // Asked at every open: only the argument needed is parsed.
    let mut it = text.split_ascii_whitespace();
    let nr: u64 = it.next()?.parse().ok()?;
    let hex = |word: &str| u64::from_str_radix(word.strip_prefix("0x").unwrap_or(word), 16).ok();
    match nr {
        SYS_OPENAT => Some(Call::Flags(hex(it.nth(2)?)?)),
        SYS_OPEN => Some(Call::Flags(hex(it.nth(1)?)?)),
        SYS_CREAT => Some(Call::Creat),
        SYS_OPENAT2 => Some(Call::OpenHow(hex(it.nth(2)?)?)),
        _ => None,
    }
}

/// `O_TRUNC` truncates on Linux whatever the access mode, so it wins.
fn mode_of_flags(flags: u64) -> OpenMode {
    let flags = flags as i32;
    if flags & libc::O_TRUNC != 0 {
        return OpenMode::Truncate;
    }
    match flags & libc::O_ACCMODE {
        libc::O_RDONLY => OpenMode::Read,
        _ => OpenMode::Write,
    }
}

fn read_u64(tid: i32, addr: u64) -> Option<u64> {
    let mut out = [0u8; 8];
    let local = libc::iovec { iov_base: out.as_mut_ptr().cast(), iov_len: 8 };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: 8 };
    // SAFETY: local points at 8 writable bytes; the kernel checks the remote range.
    let n = unsafe { libc::process_vm_readv(tid, &local, 1, &remote, 1, 0) };
    (n == 8).then(|| u64::from_ne_bytes(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_open_family() {
        let openat = "257 0xffffff9c 0x7ffd1 0x241 0x1b6 0x0 0x0 0x7ffd0 0x7f00\n";
        assert_eq!(parse_syscall(openat), Some(Call::Flags(0x241)));
        assert_eq!(parse_syscall("2 0x7ffd1 0x2 0x0 0x0 0x0 0x0 0x1 0x2"), Some(Call::Flags(2)));
        assert_eq!(parse_syscall("85 0x7ffd1 0x1a4 0x0 0x0 0x0 0x0 0x1 0x2"), Some(Call::Creat));
        assert_eq!(parse_syscall("437 0xffffff9c 0x5 0x7ff0 0x18 0x0 0x0 0x1 0x2"), Some(Call::OpenHow(0x7ff0)));
        assert_eq!(parse_syscall("running\n"), None);
        assert_eq!(parse_syscall("-1 0x7ffd0 0x7f00\n"), None);
        assert_eq!(parse_syscall("0 0x3 0x7ff 0x1000 0x0 0x0 0x0 0x1 0x2"), None);
        assert_eq!(parse_syscall("257 0xffffff9c 0x7ffd1"), None, "cut short");
        assert_eq!(parse_syscall("257 0xffffff9c 0x7ffd1 0xzz"), None, "not hex");
    }

    #[test]
    fn maps_flags() {
        assert_eq!(mode_of_flags(libc::O_RDONLY as u64), OpenMode::Read);
        assert_eq!(mode_of_flags((libc::O_RDONLY | libc::O_CLOEXEC) as u64), OpenMode::Read);
        assert_eq!(mode_of_flags((libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT) as u64), OpenMode::Write);
        assert_eq!(mode_of_flags(libc::O_RDWR as u64), OpenMode::Write);
        assert_eq!(mode_of_flags((libc::O_RDWR | libc::O_TRUNC) as u64), OpenMode::Truncate);
        assert_eq!(mode_of_flags((libc::O_RDONLY | libc::O_TRUNC) as u64), OpenMode::Truncate);
    }
}
