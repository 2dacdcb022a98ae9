//! Acting under a protected folder as root without following links.
//!
//! Restore runs as root in folders that users own. Between the incident and
//! the restore such a user can replace a directory by a link to `/etc`; a
//! restore that went by path would then write and delete there. So the
//! folder is held open, every path is resolved from it with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, and each change is made relative
//! to the directory it was resolved to.

use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use mamori_event::names;
use rustix::fs::{AtFlags, Gid, Mode, OFlags, RenameFlags, ResolveFlags, Uid};
use rustix::io::Errno;

#[derive(Debug, thiserror::Error)]
pub enum BeneathError {
    #[error("{path} is not under {root}")]
    Outside { path: String, root: PathBuf },
    #[error(
        "a directory on the way to {path} is now a symbolic link (or leaves {root}): not followed; \
         move the link aside and restore again, or restore with --to DIR"
    )]
    Link { path: String, root: PathBuf },
    #[error("{path} is already taken by another file: left as it is")]
    Taken { path: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl BeneathError {
    fn from_errno(errno: Errno, path: &str, root: &Path) -> BeneathError {
        match errno {
            // ELOOP: a link where RESOLVE_NO_SYMLINKS forbids one; EXDEV: a
            // path that would leave the root (RESOLVE_BENEATH).
            Errno::LOOP | Errno::XDEV | Errno::NOTDIR => {
                BeneathError::Link { path: path.to_owned(), root: root.to_path_buf() }
            }
            Errno::EXIST => BeneathError::Taken { path: path.to_owned() },
            e => BeneathError::Io { path: path.to_owned(), source: e.into() },
        }
    }
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_SYMLINKS);

/// A folder held open, under which paths are resolved.
pub struct Root {
    dir: OwnedFd,
    path: PathBuf,
}

/// A directory under a [`Root`], held open, and the name of an entry in it.
pub struct Place {
    pub dir: OwnedFd,
    pub name: OsString,
}

impl Place {
    pub fn dir(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

impl Root {
    /// Holds `path` open. The folder itself is the administrator's choice
    /// (a protected folder, or `--to`), so only its last component must not
    /// be a link.
    pub fn open(path: &Path) -> Result<Root, BeneathError> {
        let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::RDONLY;
        let shown = names::encode(path);
        let dir =
            rustix::fs::open(path, flags, Mode::empty()).map_err(|e| BeneathError::from_errno(e, &shown, path))?;
        Ok(Root { dir, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path` (as incidents and vault entries carry it, see
    /// `mamori_event::names`) relative to this root, if it lies under it:
    /// only plain names (`..` and the like are refused, even where they
    /// would stay beneath).
    pub fn relative(&self, path: &str) -> Result<PathBuf, BeneathError> {
        let outside = || BeneathError::Outside { path: path.to_owned(), root: self.path.clone() };
        let path = names::decode(path);
        let rel = path.strip_prefix(&self.path).map_err(|_| outside())?;
        let mut clean = PathBuf::new();
        for c in rel.components() {
            match c {
                Component::Normal(n) => clean.push(n),
                Component::CurDir => {}
                _ => return Err(outside()),
            }
        }
        if clean.as_os_str().is_empty() {
            return Err(outside());
        }
        Ok(clean)
    }

    /// The directory holding `rel` (relative, as from [`Root::relative`]),
    /// held open; with `create`, the directories missing on the way are
    /// made, each owned and moded like the one it is made in.
    pub fn place(&self, rel: &Path, create: bool) -> Result<Place, BeneathError> {
        let shown = || names::encode(self.path.join(rel));
        let name = rel.file_name().ok_or_else(|| BeneathError::Outside { path: shown(), root: self.path.clone() })?;
        let parent = rel.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
        let dir = match rustix::fs::openat2(&self.dir, parent, flags, Mode::empty(), RESOLVE) {
            Ok(dir) => dir,
            Err(Errno::NOENT) if create => {
                self.make_dirs(parent).map_err(|e| BeneathError::from_errno(e, &shown(), &self.path))?
            }
            Err(e) => return Err(BeneathError::from_errno(e, &shown(), &self.path)),
        };
        Ok(Place { dir, name: name.to_owned() })
    }

    /// Walks `rel` one name at a time from the root, making what is missing.
    fn make_dirs(&self, rel: &Path) -> Result<OwnedFd, Errno> {
        let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let mut dir = rustix::fs::openat(&self.dir, ".", flags, Mode::empty())?;
        for name in rel.iter() {
            let next = match rustix::fs::openat(&dir, name, flags, Mode::empty()) {
                Err(Errno::NOENT) => {
                    let st = rustix::fs::fstat(&dir)?;
                    match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(st.st_mode & 0o7777)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e),
                    }
                    let made = rustix::fs::openat(&dir, name, flags, Mode::empty())?;
                    rustix::fs::fchown(&made, Some(Uid::from_raw(st.st_uid)), Some(Gid::from_raw(st.st_gid)))?;
                    made
                }
                other => other?,
            };
            dir = next;
        }
        Ok(dir)
    }

    /// Removes the file (never a directory) at `rel`; a file already gone is no failure.
    pub fn remove(&self, rel: &Path) -> Result<bool, BeneathError> {
        let shown = names::encode(self.path.join(rel));
        let place = match self.place(rel, false) {
            Err(BeneathError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            other => other?,
        };
        match rustix::fs::unlinkat(&place.dir, &place.name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(BeneathError::from_errno(e, &shown, &self.path)),
        }
    }

    /// Renames `from` to `to` (both relative), never over an existing file.
    pub fn rename_back(&self, from: &Path, to: &Path) -> Result<(), BeneathError> {
        let shown = names::encode(self.path.join(to));
        let src = self.place(from, false)?;
        let dst = self.place(to, true)?;
        rustix::fs::renameat_with(&src.dir, &src.name, &dst.dir, &dst.name, RenameFlags::NOREPLACE)
            .map_err(|e| BeneathError::from_errno(e, &shown, &self.path))
    }

    /// Whether a name exists at `rel` (without following a link at it).
    pub fn exists(&self, rel: &Path) -> bool {
        self.place(rel, false).is_ok_and(|p| rustix::fs::statat(&p.dir, &p.name, AtFlags::SYMLINK_NOFOLLOW).is_ok())
    }
}
