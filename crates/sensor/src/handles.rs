//! Directory file handles and the map from handle to path.
//!
//! FID events name a directory by its file handle, not its path. Each
//! directory the sensor marks is encoded here (`name_to_handle_at`) so most
//! events resolve with one lookup; an unknown handle falls back to
//! `open_by_handle_at` on a directory of the same filesystem.

use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A file handle as fanotify reports it: filesystem id, handle type, bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HandleKey {
    pub fsid: [i32; 2],
    pub handle_type: i32,
    pub bytes: Vec<u8>,
}

#[repr(C)]
struct HandleBuf {
    handle_bytes: libc::c_uint,
    handle_type: libc::c_int,
    f_handle: [u8; libc::MAX_HANDLE_SZ as usize],
}

fn fsid_of(file: &File) -> io::Result<[i32; 2]> {
    // SAFETY: statfs is plain data; zero is a valid bit pattern.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is open and st is valid for writes.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fsid_t is two c_ints with private fields; same size and layout.
    Ok(unsafe { std::mem::transmute::<libc::fsid_t, [i32; 2]>(st.f_fsid) })
}

/// Encodes the handle of an open file or directory, the way fanotify reports it.
pub fn encode(file: &File) -> io::Result<HandleKey> {
    let (handle_type, bytes) = raw_handle(file)?;
    Ok(HandleKey { fsid: fsid_of(file)?, handle_type, bytes })
}

fn raw_handle(file: &File) -> io::Result<(i32, Vec<u8>)> {
    let mut buf = HandleBuf { handle_bytes: libc::MAX_HANDLE_SZ as u32, handle_type: 0, f_handle: [0; 128] };
    let mut mount_id: libc::c_int = 0;
    let empty = c"";
    // SAFETY: buf is a file_handle with MAX_HANDLE_SZ bytes of room, as announced in handle_bytes.
    let r = unsafe {
        libc::name_to_handle_at(
            file.as_raw_fd(),
            empty.as_ptr(),
            (&mut buf as *mut HandleBuf).cast(),
            &mut mount_id,
            libc::AT_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = (buf.handle_bytes as usize).min(buf.f_handle.len());
    Ok((buf.handle_type, buf.f_handle[..n].to_vec()))
}

/// Encodes opened files' handles with each filesystem's id asked once:
/// every new file's open is matched by handle to the event of its creation.
#[derive(Debug, Default)]
pub struct FileHandles {
    fsids: HashMap<u64, [i32; 2]>,
}

impl FileHandles {
    /// The handle of `file`, which lies on device `dev`.
    pub fn of(&mut self, file: &File, dev: u64) -> io::Result<HandleKey> {
        let fsid = match self.fsids.get(&dev) {
            Some(fsid) => *fsid,
            None => *self.fsids.entry(dev).or_insert(fsid_of(file)?),
        };
        let (handle_type, bytes) = raw_handle(file)?;
        Ok(HandleKey { fsid, handle_type, bytes })
    }
}

/// What the sensor knows of the directories it watches.
#[derive(Debug, Default)]
pub struct DirMap {
    paths: HashMap<HandleKey, PathBuf>,
    /// One open directory per filesystem, for `open_by_handle_at`.
    mounts: HashMap<[i32; 2], OwnedFd>,
}

impl DirMap {
    pub fn knows(&self, key: &HandleKey) -> bool {
        self.paths.contains_key(key)
    }

    /// Records a marked directory; `dir` is kept open if it is the first on
    /// its filesystem.
    pub fn insert(&mut self, key: HandleKey, dir: File, path: &Path) {
        self.mounts.entry(key.fsid).or_insert_with(|| dir.into());
        self.paths.insert(key, path.to_path_buf());
    }

    /// The current path of a directory, from the map or else the kernel.
    pub fn resolve(&mut self, key: &HandleKey) -> Option<PathBuf> {
        if let Some(p) = self.paths.get(key) {
            return Some(p.clone());
        }
        let mount = self.mounts.get(&key.fsid)?;
        let path = open_by_handle(mount, key).ok()?;
        tracing::debug!(path = %path.display(), "directory resolved by handle");
        Some(path)
    }

    /// A directory moved: every known path at or under `from` now lies under `to`.
    pub fn rename(&mut self, from: &Path, to: &Path) {
        for p in self.paths.values_mut() {
            if let Ok(rest) = p.strip_prefix(from) {
                *p = if rest.as_os_str().is_empty() { to.to_path_buf() } else { to.join(rest) };
            }
        }
    }

    /// Forgets every directory at or under `path` (deleted or moved away).
    pub fn remove_tree(&mut self, path: &Path) {
        self.paths.retain(|_, p| !p.starts_with(path));
    }
}

fn open_by_handle(mount: &OwnedFd, key: &HandleKey) -> io::Result<PathBuf> {
    let mut buf = HandleBuf { handle_bytes: 0, handle_type: key.handle_type, f_handle: [0; 128] };
    let n = key.bytes.len().min(buf.f_handle.len());
    buf.f_handle[..n].copy_from_slice(&key.bytes[..n]);
    buf.handle_bytes = n as u32;
    // SAFETY: buf is a valid file_handle; the result is a new fd or -1.
    let fd = unsafe {
        libc::open_by_handle_at(mount.as_raw_fd(), (&mut buf as *mut HandleBuf).cast(), libc::O_PATH | libc::O_CLOEXEC)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is new and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    fd_path(fd.as_raw_fd())
}

/// The path an open fd refers to, via `/proc/self/fd`: read relative to
/// that folder, held open, because every open the sensor weighs asks it and
/// walking `/proc/self/fd/N` from the root was half of what that cost.
pub fn fd_path(fd: i32) -> io::Result<PathBuf> {
    static FDS: OnceLock<Option<File>> = OnceLock::new();
    let Some(fds) = FDS.get_or_init(|| File::open("/proc/self/fd").ok()) else {
        return std::fs::read_link(format!("/proc/self/fd/{fd}"));
    };
    let name = CString::new(fd.to_string()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // procfs writes a link's target from one page (`do_proc_readlink`): one
    // byte more tells a full page from a target cut short.
    let mut buf = [0u8; PAGE + 1];
    // SAFETY: the folder fd is open, name is a C string, buf has buf.len() bytes of room.
    let n = unsafe { libc::readlinkat(fds.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n as usize >= buf.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    Ok(PathBuf::from(OsString::from_vec(buf[..n as usize].to_vec())))
}

const PAGE: usize = 4096;
