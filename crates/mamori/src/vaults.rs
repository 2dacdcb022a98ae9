//! Where the vaults are, and keeping before-images as the agent sees opens.
//!
//! One vault per filesystem that holds protected folders, on that filesystem
//! (so pins can be hard links and copies can be reflinks): inside the state
//! directory when it shares the filesystem, else `.mamori-vault` at the
//! filesystem's mount point.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use mamori_event::OpenMode;
use mamori_vault::{Limits, Preserved, Vault};
use tracing::warn;

use crate::settings::VaultSection;

/// The vault directory for the filesystem holding `root`.
pub fn vault_dir(state: &Path, root: &Path) -> Result<PathBuf> {
    let dev = |p: &Path| p.metadata().map(|m| m.dev()).with_context(|| format!("cannot read {}", p.display()));
    let root_dev = dev(root)?;
    if dev(state)? == root_dev {
        return Ok(state.join("vault"));
    }
    let mut top = root.to_path_buf();
    while let Some(parent) = top.parent() {
        if dev(parent)? != root_dev {
            break;
        }
        top = parent.to_path_buf();
    }
    Ok(top.join(".mamori-vault"))
}

/// The distinct vault directories for a set of protected folders.
pub fn vault_dirs(state: &Path, roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for root in roots {
        let dir = vault_dir(state, root)?;
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    Ok(dirs)
}

pub fn limits(cfg: &VaultSection) -> Limits {
    Limits {
        budget_bytes: cfg.budget_mib.saturating_mul(1 << 20),
        free_floor_bytes: cfg.free_floor_mib.saturating_mul(1 << 20),
        retention_ns: cfg.retention_hours.saturating_mul(3_600_000_000_000),
    }
}

/// The agent's vaults, by device.
pub struct Vaults {
    by_dev: BTreeMap<u64, Vault>,
    skipped: u64,
}

impl Vaults {
    pub fn open(state: &Path, roots: &[PathBuf], cfg: &VaultSection) -> Result<Vaults> {
        let mut by_dev = BTreeMap::new();
        for root in roots {
            let dev = root.metadata()?.dev();
            if by_dev.contains_key(&dev) {
                continue;
            }
            let dir = vault_dir(state, root)?;
            let vault =
                Vault::open(&dir, limits(cfg)).with_context(|| format!("cannot open the vault {}", dir.display()))?;
            by_dev.insert(dev, vault);
        }
        Ok(Vaults { by_dev, skipped: 0 })
    }

    /// Keeps what an open is about to put at risk: the content, for an
    /// open with write intent; the inode itself (a pin), for any other, so a
    /// later delete or rename-over cannot free it.
    pub fn keep(&mut self, file: &File, path: &str, mode: OpenMode, now_ns: u64) {
        let Ok(meta) = file.metadata() else { return };
        if !meta.is_file() {
            return;
        }
        let Some(vault) = self.by_dev.get_mut(&meta.dev()) else { return };
        let result = if mode.writes() && meta.len() > 0 {
            vault.preserve(file, path, now_ns)
        } else {
            vault.pin(file, path, now_ns)
        };
        match result {
            Ok(Preserved::Skipped(reason)) => {
                self.skipped += 1;
                if self.skipped == 1 || self.skipped % 100 == 0 {
                    warn!(path, ?reason, skipped = self.skipped, "VAULT: a before-image could not be kept");
                }
            }
            Ok(_) => {}
            Err(e) => warn!(path, "VAULT: keeping a before-image failed: {e}"),
        }
    }

    /// Before-images that could not be kept (budget, free-space floor).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Releases copies whose retention window closed, unless an incident needs them.
    pub fn expire(&mut self, now_ns: u64, needed: &dyn Fn(&str) -> bool) {
        for vault in self.by_dev.values_mut() {
            if let Err(e) = vault.expire(now_ns, &|e| needed(&e.meta.path)) {
                warn!("VAULT: expiring old copies failed: {e}");
            }
        }
    }
}
