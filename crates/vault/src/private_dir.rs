//! Whether a directory is fit to hold what only root may change: the vault,
//! or the agent's state. Root writes and restores through it, so whoever
//! else can change it, or a directory above it, could point root's writes
//! at files of their choosing, or hand root forged entries to restore.

use std::fs::Metadata;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Links followed on the way to a directory before giving up, as the kernel does.
const MAX_LINKS: u32 = 40;

#[derive(Debug, thiserror::Error)]
pub enum UnsafeDir {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is a symbolic link, not a directory: remove it so mamori recreates the directory")]
    Symlink { path: PathBuf },
    #[error("{path} is not a directory: move it aside so mamori recreates it")]
    NotADirectory { path: PathBuf },
    #[error(
        "{path} is owned by uid {uid}, not root, who could change what is in it: \
         chown root and chmod 700 it, or remove it so mamori recreates it"
    )]
    NotRootOwned { path: PathBuf, uid: u32 },
    #[error(
        "{path} can be written by its group or others (mode {mode:o}): \
         chmod 700 it, or remove it so mamori recreates it"
    )]
    Writable { path: PathBuf, mode: u32 },
    #[error(
        "{path} (above {dir}) can be changed by another user than root (owner uid {uid}, mode {mode:o}), \
         who could put a directory of their own in its place: keep {dir} under directories owned by \
         root and not writable by others (or sticky, like /tmp)"
    )]
    UnsafeAncestor { path: PathBuf, dir: PathBuf, uid: u32, mode: u32 },
}

/// Checks that `dir` is a real directory (not a link), owned by root, not
/// writable by its group or others, and that no directory on the way to it
/// can be changed by another user: each is owned by root and either not
/// writable by others or sticky (like `/tmp`: others may add names there,
/// but not remove or replace root's). A link on the way must be root's and
/// lead, by the same rule, to such a directory.
pub fn check_private_dir(dir: &Path) -> Result<(), UnsafeDir> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| UnsafeDir::Io { path, source }
    };
    let abs = if dir.is_absolute() { dir.to_path_buf() } else { std::env::current_dir().map_err(io(dir))?.join(dir) };
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        let bad = std::io::Error::new(std::io::ErrorKind::InvalidInput, "name the directory itself, not with . or ..");
        return Err(UnsafeDir::Io { path: abs, source: bad });
    };
    let real = walk(parent, &abs, 0)?.join(name);
    let m = std::fs::symlink_metadata(&real).map_err(io(&real))?;
    if m.file_type().is_symlink() {
        return Err(UnsafeDir::Symlink { path: abs });
    }
    check_own(&abs, &m)
}

/// The rule for the directory itself, on what `lstat` or `fstat` found.
pub(crate) fn check_own(path: &Path, m: &Metadata) -> Result<(), UnsafeDir> {
    if !m.is_dir() {
        return Err(UnsafeDir::NotADirectory { path: path.to_path_buf() });
    }
    if m.uid() != 0 {
        return Err(UnsafeDir::NotRootOwned { path: path.to_path_buf(), uid: m.uid() });
    }
    if m.permissions().mode() & 0o022 != 0 {
        return Err(UnsafeDir::Writable { path: path.to_path_buf(), mode: m.permissions().mode() & 0o7777 });
    }
    Ok(())
}

/// Walks the absolute `path` as the kernel resolves it, checking each
/// directory passed through (and, through each link, where it leads);
/// returns the path with no link left in it.
fn walk(path: &Path, dir: &Path, links: u32) -> Result<PathBuf, UnsafeDir> {
    let mut real = PathBuf::from("/");
    check_ancestor(&real, dir)?;
    for part in path.components() {
        match part {
            Component::RootDir | Component::Prefix(_) => real = PathBuf::from("/"),
            Component::CurDir => {}
            // `real` holds no link, so `..` is its parent.
            Component::ParentDir => {
                real.pop();
            }
            Component::Normal(name) => {
                let next = real.join(name);
                let m =
                    std::fs::symlink_metadata(&next).map_err(|source| UnsafeDir::Io { path: next.clone(), source })?;
                if !m.file_type().is_symlink() {
                    check_ancestor(&next, dir)?;
                    real = next;
                    continue;
                }
                // Its directory (`real`) is checked: only its owner could replace it.
                if m.uid() != 0 {
                    return Err(unsafe_ancestor(&next, dir, &m));
                }
                if links >= MAX_LINKS {
                    let source = std::io::Error::from_raw_os_error(libc::ELOOP);
                    return Err(UnsafeDir::Io { path: next, source });
                }
                let target =
                    std::fs::read_link(&next).map_err(|source| UnsafeDir::Io { path: next.clone(), source })?;
                real = walk(&real.join(target), dir, links + 1)?;
            }
        }
    }
    Ok(real)
}

fn check_ancestor(path: &Path, dir: &Path) -> Result<(), UnsafeDir> {
    let m = std::fs::symlink_metadata(path).map_err(|source| UnsafeDir::Io { path: path.to_path_buf(), source })?;
    let mode = m.permissions().mode();
    let sticky = mode & libc::S_ISVTX != 0;
    if m.uid() != 0 || (mode & 0o022 != 0 && !sticky) {
        return Err(unsafe_ancestor(path, dir, &m));
    }
    Ok(())
}

fn unsafe_ancestor(path: &Path, dir: &Path, m: &Metadata) -> UnsafeDir {
    UnsafeDir::UnsafeAncestor {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        uid: m.uid(),
        mode: m.permissions().mode() & 0o7777,
    }
}
