use std::io;
use std::path::PathBuf;

use crate::target::MARKER;

/// Every failure the simulator reports. Refusals (`NotMarked`, `Protected`,
/// `TooShallow`, `Symlink`, `DotDot`, `NotADirectory`, `NotEmpty`) are the safety checks doing their
/// job and are never retryable; `Io` carries the path it happened on.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("{path}: not a test target (no {MARKER} file directly in it); create targets with `mark_target` or `make_corpus`")]
    NotMarked { path: PathBuf },
    #[error("{path}: refusing a system or home directory as a test target")]
    Protected { path: PathBuf },
    #[error("{path}: refusing a path this close to the root; a test target must be at least two levels deep")]
    TooShallow { path: PathBuf },
    #[error("{path}: a test target must be a real directory, not a symbolic link")]
    Symlink { path: PathBuf },
    #[error("{path}: refusing `..` below a directory that does not exist yet; give a plain path")]
    DotDot { path: PathBuf },
    #[error("{path}: not a directory")]
    NotADirectory { path: PathBuf },
    #[error("{path}: refusing to turn an existing, non-empty, unmarked directory into a corpus")]
    NotEmpty { path: PathBuf },
    #[error("unknown family {0:?} (see `families()`)")]
    UnknownFamily(String),
    #[error("bad child arguments: {0}")]
    ChildArgs(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "setting up io_uring: {0} (is kernel.io_uring_disabled set, or a seccomp filter refusing io_uring_setup?)"
    )]
    Uring(#[source] io::Error),
    #[error("the archiver family needs `7z` (p7zip-full) or `zip` on PATH, and neither is installed")]
    NoArchiver,
    #[error("reading the system random source: {0}")]
    Random(getrandom::Error),
    #[error("{path}: writing OOXML: {source}")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{path}: encoding PNG: {source}")]
    Png {
        path: PathBuf,
        #[source]
        source: png::EncodingError,
    },
    #[error("{path}: encoding JPEG: {source}")]
    Jpeg {
        path: PathBuf,
        #[source]
        source: jpeg_encoder::EncodingError,
    },
}

impl SimError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> SimError {
        let path = path.into();
        move |source| SimError::Io { path, source }
    }
}
