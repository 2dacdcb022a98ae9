//! What can go wrong when isolating, with what the operator should do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IsolateError {
    #[error("{} was not found: install nftables (apt install nftables)", program.display())]
    NftMissing { program: PathBuf },
    #[error("nft was refused the change ({detail}): run mamori as root (it needs CAP_NET_ADMIN)")]
    NotPermitted { detail: String },
    #[error("cannot run {}: {source}", program.display())]
    Run { program: PathBuf, source: std::io::Error },
    #[error("nft failed while {doing}: {stderr}")]
    Nft { doing: &'static str, stderr: String },
    #[error("nft's JSON output while {doing} could not be read: {source}")]
    Output { doing: &'static str, source: serde_json::Error },
    /// mamori's table exists but is not the one mamori writes (someone
    /// changed it): the host may not be isolated. `isolate` rewrites it,
    /// `undo` removes it.
    #[error("the isolation table inet {table} was altered: {what}; isolate again or undo")]
    Altered { table: &'static str, what: String },
}
