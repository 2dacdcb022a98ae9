//! Store errors. Each names the file involved and, where the user has to act,
//! says what to do.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{} is corrupt or not a mamori database; move it aside (e.g. `mv {0} {0}.bad`, also any -wal and -shm files \
         beside it) and start again: the incidents recorded in it are lost",
        path.display()
    )]
    Corrupt { path: PathBuf },
    #[error("{} has schema version {found}, newer than this mamori understands ({supported}); upgrade mamori", path.display())]
    TooNew { path: PathBuf, found: i64, supported: i64 },
    #[error("database error in {}: {source}", path.display())]
    Db { path: PathBuf, source: rusqlite::Error },
    #[error("stored record {id} in {} cannot be read: {source}", path.display())]
    Record { path: PathBuf, id: String, source: serde_json::Error },
    #[error("another mamori agent is already running{}", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    AlreadyRunning { pid: Option<u32> },
}

impl StoreError {
    /// Classifies an SQLite error: a damaged file is a `Corrupt`, the rest `Db`.
    pub(crate) fn db(path: &std::path::Path, source: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        match source.sqlite_error_code() {
            Some(NotADatabase | DatabaseCorrupt) => StoreError::Corrupt { path: path.to_owned() },
            _ => StoreError::Db { path: path.to_owned(), source },
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: io::Error) -> StoreError {
        StoreError::Io { path: path.to_owned(), source }
    }
}
