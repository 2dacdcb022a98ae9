//! Errors of catalog loading and of reading samples. Identification itself
//! cannot fail: what it cannot attribute it reports as unknown.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IdentifyError {
    #[error("cannot read catalog {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML or does not fit the schema; the message of
    /// the TOML parser names the line, column and key.
    #[error("malformed catalog: {0}")]
    Parse(#[from] toml::de::Error),
    /// The TOML fits the schema but a value makes no sense.
    #[error("catalog line {line}, family {family:?}, field `{field}`: {reason}")]
    Invalid { line: usize, family: String, field: &'static str, reason: String },
    #[error("catalog names no family")]
    Empty,
    #[error("catalog {path} is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
}

/// Why a file was not taken as a sample. The refusals (a link, a FIFO, a
/// device) are what an attacker leaves to stall or mislead the reader.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: a symbolic link, not followed")]
    Link { path: PathBuf },
    #[error("{path}: {kind}, not a regular file")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
