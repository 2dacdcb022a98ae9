//! Opening, as root, a file that a user controls (a ransom note left in a
//! share, a file of a bundle folder).
//!
//! The open must not block: `O_NONBLOCK` makes the open of a FIFO or a
//! device return at once, and its type is then refused on the descriptor,
//! where it cannot be swapped (checking the path first would race with a
//! swap); on a regular file the flag changes nothing. It must not follow a
//! link unless asked to (the magic links of `/proc/PID`, such as `exe`).
//! And it should leave the access time an investigator will look at
//! (`O_NOATIME`, which only the owner or a privileged caller may ask for).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Whether a link at the path itself may be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Never,
    /// For `/proc/PID/exe` and its like, links by nature.
    MagicLink,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("a symbolic link, not followed")]
    Link,
    #[error("{0}, not a regular file")]
    NotRegular(&'static str),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<OpenError> for io::Error {
    fn from(e: OpenError) -> io::Error {
        match e {
            OpenError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidInput, other.to_string()),
        }
    }
}

/// Opens `path` to read if it is a regular file (see the crate's page).
pub fn open_regular(path: &Path, follow: Follow) -> Result<File, OpenError> {
    let nofollow = if follow == Follow::Never { libc::O_NOFOLLOW } else { 0 };
    let open = |extra: libc::c_int| {
        OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | nofollow | extra).open(path)
    };
    let opened = match open(libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
        other => other,
    };
    let file = opened.map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) if follow == Follow::Never => OpenError::Link,
        _ => OpenError::Io(e),
    })?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    Err(OpenError::NotRegular(if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "something else"
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_directories_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("note.txt");
        std::fs::write(&file, b"pay").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let fifo = dir.path().join("fifo");
        assert_eq!(unsafe { libc::mkfifo(std::ffi::CString::new(fifo.to_str().unwrap()).unwrap().as_ptr(), 0o600) }, 0);

        assert!(open_regular(&file, Follow::Never).is_ok());
        assert!(matches!(open_regular(&link, Follow::Never), Err(OpenError::Link)));
        assert!(open_regular(&link, Follow::MagicLink).is_ok(), "a link may be followed when asked to");
        assert!(matches!(open_regular(&fifo, Follow::Never), Err(OpenError::NotRegular("a FIFO"))));
        assert!(matches!(open_regular(dir.path(), Follow::Never), Err(OpenError::NotRegular("a directory"))));
    }
}
