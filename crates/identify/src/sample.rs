//! What identification looks at: ransom notes and encrypted files, read from
//! disk with bounded reads so that a huge file costs no more than a small one.
//!
//! The files are in folders an attacker can write to, and the reader is a
//! root agent: a name that looks like a note may be a FIFO (an open that
//! never returns), a device, or a symbolic link to a file the attacker could
//! not read himself. Only regular files are read, and never through a link.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::SampleError;
use crate::text;

/// How much of a file is read to decide whether it is a note, and kept as
/// the note's text. Real notes are a few KiB; HTML ones reach tens of KiB.
pub const NOTE_LIMIT: u64 = 256 * 1024;

/// How much of the end of an encrypted file is kept: trailers that families
/// append (key blobs, markers) sit in the last few hundred bytes.
pub const TAIL_LIMIT: u64 = 4 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sample {
    /// A text file the actor left: its file name and its decoded text.
    Note { name: String, text: String },
    /// A file the actor encrypted: its file name and its last bytes.
    Encrypted { name: String, tail: Vec<u8> },
}

impl Sample {
    /// Reads at most [`NOTE_LIMIT`] bytes from the start and [`TAIL_LIMIT`]
    /// from the end. A file whose start decodes as text is a note; anything
    /// else is taken for an encrypted file. A path that is a symbolic link,
    /// or names anything but a regular file, is refused without blocking.
    pub fn from_path(path: &Path) -> Result<Sample, SampleError> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let read = |source| SampleError::Read { path: path.to_owned(), source };
        let mut file = open_regular(path)?;
        let len = file.metadata().map_err(read)?.len();
        let mut head = Vec::with_capacity(len.min(NOTE_LIMIT) as usize);
        (&mut file).take(NOTE_LIMIT).read_to_end(&mut head).map_err(read)?;
        let truncated = (head.len() as u64) < len;
        if let Some(text) = text::decode(&head, truncated) {
            return Ok(Sample::Note { name, text });
        }
        let tail = if truncated {
            let start = len.saturating_sub(TAIL_LIMIT);
            file.seek(SeekFrom::Start(start)).map_err(read)?;
            let mut tail = Vec::with_capacity(TAIL_LIMIT as usize);
            file.take(TAIL_LIMIT).read_to_end(&mut tail).map_err(read)?;
            tail
        } else {
            head.split_off(head.len().saturating_sub(TAIL_LIMIT as usize))
        };
        Ok(Sample::Encrypted { name, tail })
    }

    pub fn name(&self) -> &str {
        match self {
            Sample::Note { name, .. } | Sample::Encrypted { name, .. } => name,
        }
    }
}

/// Opens `path` for reading only if it is a regular file and not a link.
/// `O_NONBLOCK` makes the open of a FIFO or a device return at once, so the
/// type can be checked on the descriptor (checking the path first would race
/// with a swap); on a regular file the flag changes nothing. `O_NOATIME`
/// leaves the access time as the owner left it, for whoever investigates
/// next; only the owner or a privileged caller may ask for it.
fn open_regular(path: &Path) -> Result<File, SampleError> {
    let open = |extra: libc::c_int| {
        OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | extra).open(path)
    };
    let opened = match open(libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
        other => other,
    };
    let file = opened.map_err(|source| match source.raw_os_error() {
        Some(libc::ELOOP) => SampleError::Link { path: path.to_owned() },
        _ => SampleError::Open { path: path.to_owned(), source },
    })?;
    let kind = file.metadata().map_err(|source| SampleError::Read { path: path.to_owned(), source })?.file_type();
    if !kind.is_file() {
        let kind = if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(SampleError::NotRegular { path: path.to_owned(), kind });
    }
    Ok(file)
}
