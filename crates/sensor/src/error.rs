//! Errors the sensor returns. Setup errors name the path at fault so an
//! operator can fix the configuration; runtime errors are the fanotify reads
//! and polls that end the loop.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("fanotify_init failed (is this root on a kernel with fanotify?): {0}")]
    Init(#[source] io::Error),
    #[error("protected root {path} is not accessible: {source}")]
    Root { path: PathBuf, source: io::Error },
    #[error("protected root {path} is not a directory")]
    NotDirectory { path: PathBuf },
    #[error("cannot watch {path}: its filesystem does not support fanotify file handles ({source})")]
    Unsupported { path: PathBuf, source: io::Error },
    #[error("cannot watch {path}: {source}")]
    Mark { path: PathBuf, source: io::Error },
    #[error("reading fanotify events failed: {0}")]
    Read(#[source] io::Error),
    #[error("waiting for fanotify events failed: {0}")]
    Poll(#[source] io::Error),
}
