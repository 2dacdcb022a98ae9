//! What identification looks at: ransom notes and encrypted files, read from
//! disk with bounded reads so that a huge file costs no more than a small one.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

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
    /// else is taken for an encrypted file.
    pub fn from_path(path: &Path) -> io::Result<Sample> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut head = Vec::with_capacity(len.min(NOTE_LIMIT) as usize);
        (&mut file).take(NOTE_LIMIT).read_to_end(&mut head)?;
        let truncated = (head.len() as u64) < len;
        if let Some(text) = text::decode(&head, truncated) {
            return Ok(Sample::Note { name, text });
        }
        let tail = if truncated {
            let start = len.saturating_sub(TAIL_LIMIT);
            file.seek(SeekFrom::Start(start))?;
            let mut tail = Vec::with_capacity(TAIL_LIMIT as usize);
            file.take(TAIL_LIMIT).read_to_end(&mut tail)?;
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
