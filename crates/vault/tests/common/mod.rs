//! What the vault's test files share.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use mamori_vault::{Limits, Preserved};

/// Room for everything a test keeps.
pub const BIG: Limits =
    Limits { budget_bytes: 1 << 30, user_budget_bytes: 1 << 30, free_floor_bytes: 0, retention_ns: 1_000 };

/// A temporary folder on a real filesystem (not tmpfs: pins are hard links,
/// copies may be reflinks), the path of its `data/` and of its vault.
pub fn folders(prefix: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::Builder::new().prefix(prefix).tempdir_in("/var/tmp").unwrap();
    let vault = tmp.path().join("vault");
    (tmp, vault)
}

pub fn stored(p: Preserved) -> mamori_vault::Entry {
    match p {
        Preserved::Stored(e) => e,
        other => panic!("expected a stored entry, got {other:?}"),
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
