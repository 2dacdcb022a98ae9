//! The ransom note: same name and text in every folder of one run.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::SimError;

/// File name of the ransom note the note-dropping families write.
pub const NOTE_NAME: &str = "README_RESTORE_FILES.txt";

pub(crate) fn note_text(family: &str) -> String {
    format!(
        "YOUR FILES HAVE BEEN ENCRYPTED\n\
         ==============================\n\n\
         All documents, photos, databases and disk images in this folder were encrypted.\n\
         Do not rename or modify them. To recover them you need the private key.\n\n\
         This is a SIMULATION by mamori (family: {family}). The key was generated at random\n\
         and never stored: files can only come back from mamori's vault or a backup.\n"
    )
}

/// Writes the note into `dir`, refusing to follow a symlink planted under its name.
pub(crate) fn drop_note(dir: &Path, text: &str) -> Result<(), SimError> {
    let path = dir.join(NOTE_NAME);
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(SimError::io(path))
}
