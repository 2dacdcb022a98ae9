//! What this host exposes: listening sockets beyond loopback, matched to
//! their service and to the firewall, and the configs of those services.

use std::path::PathBuf;

use crate::Finding;

/// What the exposure checks need from the caller.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Folders mamori protects (a Samba share outside all of them is a finding).
    pub protected: Vec<PathBuf>,
}

/// Every exposure finding on this host (in the caller's network namespace).
pub fn exposure(_scope: &Scope) -> Vec<Finding> {
    Vec::new()
}
