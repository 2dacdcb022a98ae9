//! Errors of the evidence library.
//!
//! Only what stops a bundle from being written, sealed, read or archived is an
//! error. What cannot be read from a process that is exiting or hiding is a
//! note inside the bundle, and what is wrong with a bundle being verified is a
//! [`crate::Problem`] in the verification: both are findings, not failures.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{0}: the bundle directory must not exist or must be empty")]
    NotEmpty(PathBuf),
    #[error("{name:?}: not a usable name for a file in a bundle ({why})")]
    BadName { name: String, why: &'static str },
    #[error("{path}: the key file must be a regular file readable by its owner only (mode {mode:o})")]
    InsecureKey { path: PathBuf, mode: u32 },
    #[error("{0}: a key file holds exactly 32 bytes")]
    BadKey(PathBuf),
    #[error("not a public key: {0}")]
    BadPublicKey(String),
    #[error("{0}: an archive must hold a single bundle directory")]
    BadArchive(PathBuf),
    #[error("{0}: a bundle holds only regular files and directories")]
    NotRegular(PathBuf),
    #[error("{0}: exists already")]
    Exists(PathBuf),
}

impl EvidenceError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> EvidenceError {
        let path = path.into();
        move |source| EvidenceError::Io { path, source }
    }
}
