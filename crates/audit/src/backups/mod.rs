//! Whether the backups would survive an attacker on this host, and come back.

use std::path::Path;

use crate::{AuditConfig, Finding};

/// Every backup finding for the repositories in `cfg`; `state` is a folder
/// of mamori's own where what must last between runs is kept (which part
/// of each repository the next check reads).
pub fn backups(_cfg: &AuditConfig, _state: &Path) -> Vec<Finding> {
    Vec::new()
}
