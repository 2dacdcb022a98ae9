//! What can go wrong when isolating or blocking, with what the operator should do about it.

use std::net::IpAddr;
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
    /// mamori's block table exists but is not the one mamori writes: some
    /// blocks it lists may not be in force.
    #[error("the block table inet {table} was altered: {what}; block an address again to rewrite it, or unblock all to remove it")]
    BlockAltered { table: &'static str, what: String },
    #[error(
        "cannot reset the client's connections (ss -K, iproute2; the kernel needs CONFIG_INET_DIAG_DESTROY): {stderr}"
    )]
    Reset { stderr: String },
    #[error("{addr} cannot be blocked: {why}; only a remote client's own address can be")]
    NotBlockable { addr: IpAddr, why: &'static str },
}
