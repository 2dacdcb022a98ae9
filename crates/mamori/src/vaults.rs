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
use mamori_event::{OpenMode, ProcKey};
use mamori_store::VaultStatus;
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
    range_from: u64,
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
        Ok(Vaults { by_dev, skipped: 0, range_from: cfg.range_copy_from_mib.saturating_mul(1 << 20) })
    }

    /// Keeps what an open is about to put at risk: the content, for an
    /// open with write intent; the inode itself (a pin), for any other, so a
    /// later delete or rename-over cannot free it. Returns true when a large
    /// file is kept by range: its writes are then to be announced to
    /// [`Vaults::keep_range`].
    pub fn keep(&mut self, file: &File, path: &str, mode: OpenMode, now_ns: u64, by: Option<ProcKey>) -> bool {
        let Ok(meta) = file.metadata() else { return false };
        // An empty file has nothing to lose; most are being created right now.
        if !meta.is_file() || meta.len() == 0 {
            return false;
        }
        let Some(vault) = self.by_dev.get_mut(&meta.dev()) else { return false };
        // Whoever opens it now, its writes must go on being announced.
        if vault.kept_by_range(meta.dev(), meta.ino()) {
            return true;
        }
        // Truncation takes the whole file at once: only a whole copy keeps it.
        let by_range = mode == OpenMode::Write && meta.len() >= self.range_from;
        let result = if by_range {
            // A reflink, where the filesystem has them, costs nothing per write.
            match vault.preserve_reflink(file, path, now_ns, by) {
                Ok(Some(kept)) => {
                    self.note(path, Ok(kept));
                    return false;
                }
                Ok(None) => vault.begin_ranges(file, path, now_ns, by),
                Err(e) => Err(e),
            }
        } else if mode.writes() {
            vault.preserve(file, path, now_ns, by)
        } else {
            vault.pin(file, path, now_ns, by)
        };
        let kept = self.note(path, result);
        by_range && kept
    }

    /// Keeps the blocks of a large file that a write is about to overwrite;
    /// false when the file is not (or no longer) kept by range.
    pub fn keep_range(&mut self, file: &File, offset: u64, len: u64, reading: &mut dyn FnMut() -> bool) -> bool {
        let Ok(meta) = file.metadata() else { return false };
        let Some(vault) = self.by_dev.get_mut(&meta.dev()) else { return false };
        match vault.keep_range((meta.dev(), meta.ino()), offset, len, reading).transpose() {
            Some(result) => {
                self.note("(a file kept by range)", result);
                true
            }
            None => false,
        }
    }

    /// Logs what could not be kept; true when something is held.
    fn note(&mut self, path: &str, result: Result<Preserved, mamori_vault::VaultError>) -> bool {
        match result {
            Ok(Preserved::Skipped(reason)) => {
                self.skipped += 1;
                if self.skipped == 1 || self.skipped.is_multiple_of(100) {
                    warn!(path, ?reason, skipped = self.skipped, "VAULT: a before-image could not be kept");
                }
                false
            }
            Ok(_) => true,
            Err(e) => {
                warn!(path, "VAULT: keeping a before-image failed: {e}");
                false
            }
        }
    }

    /// Before-images that could not be kept (budget, free-space floor).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    pub fn status(&self) -> VaultStatus {
        let mut st = VaultStatus::default();
        for u in self.by_dev.values().map(Vault::usage) {
            st.entries += u.entries as u64;
            st.bytes += u.bytes;
            st.skipped_budget += u.skipped_budget;
            st.skipped_floor += u.skipped_floor;
        }
        st
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
