//! The gate in front of every destructive operation: what counts as a test target.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::SimError;

/// A file with this name directly inside a directory marks it as a test target.
pub const MARKER: &str = ".mamori-test-target";

const MARKER_TEXT: &str = "This directory is a mamori test target.\n\n\
mamori's ransomware simulator (`mamori demo`, `mamori sim`) encrypts files here \
with a random key that is thrown away. It refuses every directory that lacks this \
file. Delete this file to protect the directory from the simulator again.\n";

/// Trees the simulator never enters, at any depth.
const FORBIDDEN_TREES: &[&str] =
    &["/etc", "/usr", "/boot", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/proc", "/sys", "/dev", "/run"];

/// Directories refused themselves but whose subdirectories may be targets
/// (e.g. `/root/demo`, `/var/tmp/x`).
const FORBIDDEN_EXACT: &[&str] = &["/", "/root", "/var", "/home", "/tmp", "/srv", "/opt", "/mnt", "/media"];

/// Creates `dir` if needed and writes the [`MARKER`] into it.
///
/// Marking is the explicit consent step, so it works on an existing directory,
/// but never on one [`check_target`] would refuse for its location.
pub fn mark_target(dir: &Path) -> Result<(), SimError> {
    if fs::symlink_metadata(dir).is_err() {
        // Vet where the directory would go before creating anything there.
        let absolute = std::path::absolute(dir).map_err(SimError::io(dir))?;
        let existing = absolute.ancestors().find(|a| a.exists()).unwrap_or(Path::new("/"));
        let canonical = fs::canonicalize(existing).map_err(SimError::io(existing))?;
        let rest = absolute.strip_prefix(existing).unwrap_or(Path::new(""));
        if rest.components().any(|c| c == Component::ParentDir) {
            return Err(SimError::DotDot { path: absolute });
        }
        vet_canonical(&canonical.join(rest))?;
        fs::create_dir_all(dir).map_err(SimError::io(dir))?;
    }
    let canonical = vet_location(dir)?;
    let marker = canonical.join(MARKER);
    fs::write(&marker, MARKER_TEXT).map_err(SimError::io(marker))
}

/// Returns the canonical path of `dir` if it is a test target.
///
/// Refuses unless `dir` is a real directory (not a symlink) holding a regular
/// [`MARKER`] file, at least two components deep, and neither `/`, a home
/// directory root, nor inside a system tree such as `/etc` or `/usr`.
pub fn check_target(dir: &Path) -> Result<PathBuf, SimError> {
    let canonical = vet_location(dir)?;
    let marker = canonical.join(MARKER);
    match fs::symlink_metadata(&marker) {
        Ok(meta) if meta.file_type().is_file() => Ok(canonical),
        _ => Err(SimError::NotMarked { path: canonical }),
    }
}

/// Everything [`check_target`] demands except the marker.
fn vet_location(dir: &Path) -> Result<PathBuf, SimError> {
    let meta = fs::symlink_metadata(dir).map_err(SimError::io(dir))?;
    if meta.file_type().is_symlink() {
        return Err(SimError::Symlink { path: dir.to_path_buf() });
    }
    if !meta.is_dir() {
        return Err(SimError::NotADirectory { path: dir.to_path_buf() });
    }
    let canonical = fs::canonicalize(dir).map_err(SimError::io(dir))?;
    vet_canonical(&canonical)?;
    Ok(canonical)
}

/// The location rules, on a path free of symlinks and `..`.
fn vet_canonical(canonical: &Path) -> Result<(), SimError> {
    let protected = FORBIDDEN_EXACT.iter().any(|p| canonical == Path::new(p))
        || FORBIDDEN_TREES.iter().any(|p| canonical.starts_with(p))
        || home_dirs().iter().any(|home| canonical == home);
    if protected {
        return Err(SimError::Protected { path: canonical.to_path_buf() });
    }
    let depth = canonical.components().filter(|c| matches!(c, Component::Normal(_))).count();
    if depth < 2 {
        return Err(SimError::TooShallow { path: canonical.to_path_buf() });
    }
    Ok(())
}

/// `$HOME` and the home directory of the real user, canonicalised; a sudo run
/// has a different `$HOME` from the user who typed the command.
fn home_dirs() -> Vec<PathBuf> {
    let mut homes = Vec::new();
    let mut add = |p: Option<PathBuf>| {
        if let Some(p) = p.and_then(|p| fs::canonicalize(p).ok()) {
            homes.push(p);
        }
    };
    add(std::env::var_os("HOME").map(PathBuf::from));
    // SAFETY: getuid has no preconditions and cannot fail.
    add(passwd_home(unsafe { libc::getuid() }));
    if let Some(uid) = std::env::var("SUDO_UID").ok().and_then(|u| u.parse().ok()) {
        add(passwd_home(uid));
    }
    homes
}

fn passwd_home(uid: libc::uid_t) -> Option<PathBuf> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized storage owned here;
    // getpwuid_r is the reentrant variant, safe from several threads.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
        return None;
    }
    // SAFETY: pw_dir points into `buf`, NUL-terminated by getpwuid_r.
    let dir = unsafe { CStr::from_ptr(pwd.pw_dir) };
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes())))
}
