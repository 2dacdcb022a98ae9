//! What identification looks at: ransom notes and encrypted files, read from
//! disk with bounded reads so that a huge file costs no more than a small one.
//!
//! The files are in folders an attacker can write to, and the reader is a
//! root agent: a name that looks like a note may be a FIFO (an open that
//! never returns), a device, or a symbolic link to a file the attacker could
//! not read himself. Only regular files are read, and never through a link.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use mamori_userfile::{Follow, OpenError};

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

/// Opens `path` for reading only if it is a regular file and not a link
/// (`mamori_userfile`: never blocking, leaving the access time).
fn open_regular(path: &Path) -> Result<File, SampleError> {
    mamori_userfile::open_regular(path, Follow::Never).map_err(|e| match e {
        OpenError::Link => SampleError::Link { path: path.to_owned() },
        OpenError::NotRegular(kind) => SampleError::NotRegular { path: path.to_owned(), kind },
        OpenError::Io(source) => SampleError::Open { path: path.to_owned(), source },
    })
}
