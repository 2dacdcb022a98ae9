//! The watched set: which directories carry marks in both groups, kept in
//! step with the tree as directories appear, move and vanish.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::fanotify::Group;
use crate::handles::{encode, DirMap, HandleKey};
use crate::lock::{Lock, LOCK_MASK};
use crate::scope::Scope;
use crate::SensorError;

/// Permission decisions and written-file closes, on files in a marked
/// directory; and accesses, because the kernel decides at each open whether
/// the opened file can ever report them: a file opened with no pre-content
/// watcher in sight never does, even if one is added during its open. Files
/// not kept by range get an ignore mark while their opener waits (see
/// `Sensor::watch`), so their reads and writes cost nothing.
pub const PERM_MASK: u64 =
    libc::FAN_OPEN_PERM | libc::FAN_CLOSE_WRITE | crate::sensor::FAN_PRE_ACCESS | libc::FAN_EVENT_ON_CHILD;
/// Names coming and going in a marked directory, files and directories alike.
pub const FID_MASK: u64 = libc::FAN_CREATE | libc::FAN_DELETE | libc::FAN_RENAME | libc::FAN_ONDIR;

#[derive(Debug)]
pub struct Watch {
    pub perm: Group,
    pub fid: Group,
    /// The guarded vault's opens (see `lock`).
    pub lock: Lock,
    pub scope: Scope,
    dirs: DirMap,
    pub marked: u64,
}

impl Watch {
    pub fn new(perm: Group, fid: Group, lock: Lock, scope: Scope) -> Watch {
        Watch { perm, fid, lock, scope, dirs: DirMap::default(), marked: 0 }
    }

    /// Marks a protected root and everything under it; the root itself must
    /// succeed, subdirectories that fail are logged and skipped.
    pub fn watch_root(&mut self, root: &Path) -> Result<(), SensorError> {
        self.mark_dir(root).map_err(|source| classify(root, source))?;
        self.watch_children(root);
        Ok(())
    }

    /// Marks a directory that appeared in the tree, and what is already in it
    /// (a directory can fill before its create event is read).
    pub fn watch_tree(&mut self, top: &Path) {
        if self.scope.watched(top) {
            match self.mark_dir(top) {
                Ok(()) => self.watch_children(top),
                Err(e) => tracing::warn!(path = %top.display(), error = %e, "cannot watch directory"),
            }
        }
    }

    fn watch_children(&mut self, top: &Path) {
        let mut stack = vec![top.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                // file_type does not follow symlinks: a link to a directory elsewhere is not ours.
                if !entry.file_type().is_ok_and(|t| t.is_dir()) || !self.scope.watched(&path) {
                    continue;
                }
                match self.mark_dir(&path) {
                    Ok(()) => stack.push(path),
                    Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot watch directory"),
                }
            }
        }
    }

    /// Marks one directory in both groups, before its entries are listed so
    /// nothing created meanwhile is missed.
    fn mark_dir(&mut self, path: &Path) -> io::Result<()> {
        let dir = open_dir(path)?;
        let key = encode(&dir)?;
        if self.dirs.knows(&key) {
            return Ok(());
        }
        let (group, mask) =
            if self.scope.guarded(path) { (self.lock.group(), LOCK_MASK) } else { (&self.perm, PERM_MASK) };
        group.mark(libc::FAN_MARK_ADD | libc::FAN_MARK_ONLYDIR, mask, &dir)?;
        self.fid.mark(libc::FAN_MARK_ADD | libc::FAN_MARK_ONLYDIR, FID_MASK, &dir)?;
        self.dirs.insert(key, dir, path);
        self.marked += 1;
        Ok(())
    }

    /// A directory left the protected set (moved out or under an exclusion):
    /// its marks would only cost events that are then dropped.
    pub fn unwatch_tree(&mut self, old: &Path, now: &Path) {
        self.dirs.remove_tree(old);
        let mut stack = vec![now.to_path_buf()];
        while let Some(path) = stack.pop() {
            let Ok(dir) = open_dir(&path) else { continue };
            for group in [&self.perm, &self.fid, self.lock.group()] {
                // ENOENT when it was never marked (e.g. an excluded subtree).
                let _ =
                    group.mark(libc::FAN_MARK_REMOVE | libc::FAN_MARK_ONLYDIR, PERM_MASK | LOCK_MASK | FID_MASK, &dir);
            }
            let Ok(entries) = std::fs::read_dir(&path) else { continue };
            stack.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
        }
    }

    /// A directory was renamed within the protected set.
    pub fn moved(&mut self, from: &Path, to: &Path) {
        self.dirs.rename(from, to);
    }

    pub fn deleted(&mut self, path: &Path) {
        self.dirs.remove_tree(path);
    }

    pub fn resolve(&mut self, key: &HandleKey) -> Option<PathBuf> {
        self.dirs.resolve(key)
    }
}

fn open_dir(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)
}

fn classify(path: &Path, source: io::Error) -> SensorError {
    let path = path.to_path_buf();
    match source.raw_os_error() {
        Some(libc::EOPNOTSUPP | libc::EXDEV | libc::ENODEV | libc::EINVAL) => SensorError::Unsupported { path, source },
        _ => SensorError::Mark { path, source },
    }
}
