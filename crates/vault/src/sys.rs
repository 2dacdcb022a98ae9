//! The few system calls the vault needs that std does not offer: reflink,
//! linking an open file, reopening one by handle, copying in the kernel,
//! extended attributes, free space, timestamps, and names opened, renamed
//! and removed relative to a held directory.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The descriptor a call that opens something returned, owned, or its error.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
thread_local! {
    /// Makes [`reflink`] on the test's thread refuse files on two mounts,
    /// as kernels before 6.8 did (this one clones across mounts).
    pub static REFLINK_WITHIN_ONE_MOUNT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn mount_id(file: &File) -> String {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd())).unwrap_or_default();
    info.lines().find(|l| l.starts_with("mnt_id:")).unwrap_or_default().to_owned()
}

/// FICLONE: make `dst` share `src`'s blocks (XFS, btrfs). Fails on ext4.
pub fn reflink(src: &File, dst: &File) -> io::Result<()> {
    const FICLONE: libc::c_ulong = 0x4004_9409;
    #[cfg(test)]
    if REFLINK_WITHIN_ONE_MOUNT.get() && mount_id(src) != mount_id(dst) {
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    // SAFETY: both descriptors are open for the duration of the call.
    check(unsafe { libc::ioctl(dst.as_raw_fd(), FICLONE, src.as_raw_fd()) })
}

/// A file handle and room for the largest one the kernel makes (`MAX_HANDLE_SZ`).
#[repr(C)]
struct Handle {
    head: libc::file_handle,
    bytes: [u8; libc::MAX_HANDLE_SZ as usize],
}

/// The inode `file` is, opened again with `O_PATH` through the mount that
/// `mount` (any descriptor on it) is on, which must be `file`'s filesystem.
/// `O_PATH` reads nothing, so fanotify asks no permission for it: the agent
/// answers those on the thread that calls the vault, so an ordinary open of
/// a watched file from there would wait on itself. Needs CAP_DAC_READ_SEARCH.
pub fn reopen_path(file: &File, mount: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let head = libc::file_handle { handle_bytes: libc::MAX_HANDLE_SZ as libc::c_uint, handle_type: 0, f_handle: [] };
    let mut handle = Handle { head, bytes: [0; libc::MAX_HANDLE_SZ as usize] };
    // Derived from the whole struct: the kernel writes past the header, into `bytes`.
    let ptr = std::ptr::addr_of_mut!(handle).cast::<libc::file_handle>();
    let mut mount_id: libc::c_int = 0;
    // SAFETY: `handle_bytes` is the room after the header, which the kernel does not write beyond.
    check(unsafe { libc::name_to_handle_at(file.as_raw_fd(), c"".as_ptr(), ptr, &mut mount_id, libc::AT_EMPTY_PATH) })?;
    // SAFETY: the handle just filled in, of the size the kernel set.
    let fd = unsafe { libc::open_by_handle_at(mount.as_raw_fd(), ptr, libc::O_PATH | libc::O_CLOEXEC) };
    owned(fd)
}

/// `copy_file_range` of up to `len` bytes at `off` in `src` to `off` in
/// `dst`, leaving both file positions alone. Returns the bytes copied (0 at the end).
pub fn copy_range(src: &File, dst: &File, off: u64, len: usize) -> io::Result<usize> {
    let (mut off_in, mut off_out) = (off as libc::loff_t, off as libc::loff_t);
    // SAFETY: valid fds and offsets the kernel updates in place.
    let n = unsafe {
        libc::syscall(libc::SYS_copy_file_range, src.as_raw_fd(), &mut off_in, dst.as_raw_fd(), &mut off_out, len, 0)
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Bytes available to root on the filesystem holding the open `file`.
pub fn free_bytes(file: &File) -> io::Result<u64> {
    // SAFETY: fstatvfs fills the struct it is given; the fd is open.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstatvfs(file.as_raw_fd(), &mut st) })?;
    Ok(st.f_bfree.saturating_mul(st.f_frsize))
}

/// Every extended attribute of an open file (name, value).
pub fn xattrs(file: &File) -> Vec<(String, Vec<u8>)> {
    let fd = file.as_raw_fd();
    let mut names = vec![0u8; 4096];
    // SAFETY: the buffer is as large as we say.
    let n = unsafe { libc::flistxattr(fd, names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    names.truncate(n as usize);
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = CString::new(name) else { continue };
        let mut value = vec![0u8; 64 * 1024];
        // SAFETY: as above.
        let len = unsafe { libc::fgetxattr(fd, cname.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        if len >= 0 {
            value.truncate(len as usize);
            out.push((String::from_utf8_lossy(name).into_owned(), value));
        }
    }
    out
}

pub fn set_xattr(file: &File, name: &str, value: &[u8]) -> io::Result<()> {
    let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid fd, name and value buffer.
    check(unsafe { libc::fsetxattr(file.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) })
}

/// Sets access and modification times (ns since the epoch).
pub fn set_times(file: &File, atime_ns: i128, mtime_ns: i128) -> io::Result<()> {
    let ts = |ns: i128| libc::timespec {
        tv_sec: ns.div_euclid(1_000_000_000) as _,
        tv_nsec: ns.rem_euclid(1_000_000_000) as _,
    };
    let times = [ts(atime_ns), ts(mtime_ns)];
    // SAFETY: valid fd and a two-element array.
    check(unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) })
}

/// `name` as one path component: no `/`, not `.` or `..`, not empty. Every
/// name opened inside a held directory passes here, so `O_NOFOLLOW` on the
/// one component is all it takes to follow no link.
fn component(name: &OsStr) -> io::Result<CString> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{name:?} is not a plain file name")));
    }
    CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Opens `name` in `dir`, never through a link (a link there fails with `ELOOP`).
pub fn open_in(dir: BorrowedFd<'_>, name: &OsStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<File> {
    let name = component(name)?;
    // SAFETY: valid fd and NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            libc::c_uint::from(mode),
        )
    };
    owned(fd).map(File::from)
}

/// A new file without a name (`O_TMPFILE`, read and write) on `dir`'s
/// filesystem, to be named by [`link_in`] once whole. Nobody can open it
/// meanwhile, and it vanishes with its descriptor if never named.
pub fn nameless_in(dir: BorrowedFd<'_>, mode: libc::mode_t) -> io::Result<File> {
    // SAFETY: valid fd and NUL-terminated name.
    let fd =
        unsafe { libc::openat(dir.as_raw_fd(), c".".as_ptr(), libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC, mode) };
    owned(fd).map(File::from)
}

/// Names the open `file` `name` in `dir` (`linkat` with `AT_EMPTY_PATH`,
/// needs CAP_DAC_READ_SEARCH), even a file another process is about to
/// delete; an existing `name` is an error, never replaced. Fails with
/// `EXDEV` unless `dir` is on the very mount `file` was opened through
/// (see [`reopen_path`]).
pub fn link_in(file: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let name = component(name)?;
    // SAFETY: valid fds and NUL-terminated strings.
    check(unsafe { libc::linkat(file.as_raw_fd(), c"".as_ptr(), dir.as_raw_fd(), name.as_ptr(), libc::AT_EMPTY_PATH) })
}

/// Opens the directory `path`, failing if its last component is a link.
pub fn open_dir(path: &Path) -> io::Result<File> {
    let p = cstr(path)?;
    // SAFETY: NUL-terminated path.
    let fd = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
    owned(fd).map(File::from)
}

/// What `name` in `dir` is, itself (a link is not followed).
pub fn lstat_in(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<libc::stat> {
    let name = component(name)?;
    // SAFETY: fstatat fills the struct it is given.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

pub fn mkdir_in(dir: BorrowedFd<'_>, name: &OsStr, mode: libc::mode_t) -> io::Result<()> {
    let name = component(name)?;
    // SAFETY: valid fd and NUL-terminated name.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })
}

/// Renames `from` over `to`, both in `dir`; a link at `to` is replaced, not followed.
pub fn rename_in(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let (from, to) = (component(from)?, component(to)?);
    // SAFETY: valid fd and NUL-terminated names.
    check(unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) })
}

pub fn unlink_in(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let name = component(name)?;
    // SAFETY: valid fd and NUL-terminated name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) })
}
