//! The `[audit]` section of mamori's config.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// restic repositories to check (`[[audit.restic]]`).
    pub restic: Vec<ResticRepo>,
    /// borg repositories to check (`[[audit.borg]]`).
    pub borg: Vec<BorgRepo>,
    /// Each run reads this fraction (1/N) of a repository's data with
    /// `restic check --read-data-subset`, a different part each time, so all
    /// of it has been read after N runs.
    pub check_subsets: u32,
    /// The most time one repository's check may take (minutes); past it the
    /// check is stopped and says so.
    pub check_minutes: u64,
    /// Files restored by the restore drill, at random from the newest snapshot.
    pub drill_files: usize,
    /// At most this much is restored by the drill (MiB).
    pub drill_mib: u64,
    /// Folders that hold data and must be protected, besides Samba's shares.
    pub data_folders: Vec<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> AuditConfig {
        AuditConfig {
            restic: Vec::new(),
            borg: Vec::new(),
            check_subsets: 20,
            check_minutes: 10,
            drill_files: 20,
            drill_mib: 256,
            data_folders: vec![PathBuf::from("/home"), PathBuf::from("/srv")],
        }
    }
}

/// A restic repository, as `restic -r REPOSITORY --password-file PASSWORD_FILE` opens it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResticRepo {
    pub repository: String,
    pub password_file: PathBuf,
    /// The recovery-point objective: the newest snapshot of each host and
    /// set of paths must be younger than this.
    #[serde(default = "default_rpo")]
    pub rpo_hours: u64,
}

/// A borg repository, as `borg` opens it with the passphrase in `password_file`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BorgRepo {
    pub repository: String,
    pub password_file: Option<PathBuf>,
    #[serde(default = "default_rpo")]
    pub rpo_hours: u64,
}

fn default_rpo() -> u64 {
    24
}
