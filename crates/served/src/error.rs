use std::process::ExitStatus;
use std::time::Duration;

/// Why Samba's view of its sessions could not be had. None is retryable in
/// a useful sense except [`ServedError::Timeout`] (a busy or stuck server).
#[derive(Debug, thiserror::Error)]
pub enum ServedError {
    #[error("cannot run smbstatus (is samba installed?): {0}")]
    Spawn(#[source] std::io::Error),
    #[error("smbstatus gave no answer within {0:?}; it was ended")]
    Timeout(Duration),
    #[error("smbstatus failed ({status}): {stderr}")]
    Failed { status: ExitStatus, stderr: String },
    #[error("smbstatus printed more than {0} bytes")]
    TooLarge(usize),
    #[error("smbstatus printed JSON this parser does not understand: {0}")]
    Json(#[from] serde_json::Error),
}
