//! The crate's one error type. A failed send is retried from the queue, so
//! errors say which output and why, in words that tell the user what to fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A configuration value that cannot work (named by its key).
    #[error("`alerts.{key}`: {problem}")]
    Config { key: String, problem: String },
    /// A secret file (password, token, URL) that cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Secret { path: PathBuf, source: std::io::Error },
    /// The output could not take the event; it stays queued.
    #[error("{output}: {problem}")]
    Send { output: String, problem: String },
    /// The queue on disk.
    #[error("alert queue {}: {source}", path.display())]
    Queue { path: PathBuf, source: std::io::Error },
    #[error("alert queue {}: {problem}", path.display())]
    QueueCorrupt { path: PathBuf, problem: String },
}

impl AlertError {
    pub fn send(output: &str, problem: impl std::fmt::Display) -> AlertError {
        AlertError::Send { output: output.to_owned(), problem: problem.to_string() }
    }

    pub fn config(key: &str, problem: impl std::fmt::Display) -> AlertError {
        AlertError::Config { key: key.to_owned(), problem: problem.to_string() }
    }
}
