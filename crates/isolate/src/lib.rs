//! Network isolation of a host under attack, and cutting single clients
//! off, with nftables, reversibly. Each lives in a table of mamori's own;
//! the rest of the ruleset is never flushed or changed.
//!
//! Isolating writes `inet mamori_isolate`, whose input, output and forward
//! chains drop everything except loopback, IPv6 neighbour discovery on the
//! link, and traffic to and from the allow-list. There is no blanket
//! "established" rule: connections already open to other peers (a
//! ransomware's command channel) are cut too. Undoing deletes that table.
//! Both are idempotent, and [`status`] reads the state back from the kernel.
//!
//! Blocking ([`block`]) cuts one remote address off instead (an SMB client
//! encrypting a share), while every other client keeps working: its address
//! goes into a set of `inet mamori_block`, with a timeout the kernel
//! enforces. Its packets are rejected, not dropped (TCP with a reset), so a
//! connection it opened before the block fails at its next request rather
//! than hanging. [`unblock`], [`blocks`] and [`unblock_all`] undo and read it.
//!
//! Every command acts on the network namespace of the calling thread.

mod allow;
mod block_table;
mod blocking;
mod error;
mod expr;
mod nft;
mod reset;
mod table;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use allow::{parse_net, Allow, BadNet};
pub use blocking::{block, blocks, unblock, unblock_all, Block};
pub use error::IsolateError;
pub use ipnet::IpNet;
pub use nft::Nft;
pub use reset::reset_connections;

/// An isolation in force, as nft reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Isolation {
    pub allow: Allow,
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "isolated; still reachable: {}", self.allow)
    }
}

/// What [`undo`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Undone {
    Lifted,
    WasNotIsolated,
}

impl fmt::Display for Undone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Undone::Lifted => "isolation lifted",
            Undone::WasNotIsolated => "was not isolated",
        })
    }
}

impl Nft {
    /// Cuts the host off every network except loopback and `allow`.
    /// Isolating again replaces the allow-list in one step, with no moment
    /// of openness between the two.
    pub fn isolate(&self, allow: &Allow) -> Result<Isolation, IsolateError> {
        self.apply(&table::isolate_batch(allow), "isolating")?;
        self.status()?.ok_or_else(|| IsolateError::Altered {
            table: table::TABLE,
            what: "it vanished right after it was written".into(),
        })
    }

    /// Lifts the isolation. Works on an altered table too.
    pub fn undo(&self) -> Result<Undone, IsolateError> {
        if !self.has_table(table::TABLE)? {
            return Ok(Undone::WasNotIsolated);
        }
        self.apply(&table::remove_batch(), "lifting the isolation")?;
        Ok(Undone::Lifted)
    }

    /// `None` when the host is not isolated.
    pub fn status(&self) -> Result<Option<Isolation>, IsolateError> {
        if !self.has_table(table::TABLE)? {
            return Ok(None);
        }
        let listing = self.list(&["table", "inet", table::TABLE], "reading the isolation")?;
        let allow = table::read_allow(&listing)?;
        Ok(Some(Isolation { allow }))
    }

    fn has_table(&self, name: &str) -> Result<bool, IsolateError> {
        let tables = self.list(&["tables", "inet"], "listing tables")?;
        Ok(expr::has_table(&tables, name))
    }
}

/// [`Nft::isolate`] with the `nft` on `PATH`.
pub fn isolate(allow: &Allow) -> Result<Isolation, IsolateError> {
    Nft::default().isolate(allow)
}

/// [`Nft::undo`] with the `nft` on `PATH`.
pub fn undo() -> Result<Undone, IsolateError> {
    Nft::default().undo()
}

/// [`Nft::status`] with the `nft` on `PATH`.
pub fn status() -> Result<Option<Isolation>, IsolateError> {
    Nft::default().status()
}
