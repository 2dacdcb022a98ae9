//! Errors of the exports. Rendering a report cannot fail; writing an export
//! can, and the caller needs to know which layer refused.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReportError {
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("writing a CSV row failed: {0}")]
    Csv(#[from] csv::Error),
    #[error("encoding a JSON line failed: {0}")]
    Json(#[from] serde_json::Error),
}
