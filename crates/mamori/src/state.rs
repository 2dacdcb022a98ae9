//! The agent's state directory: where each thing is in it, and the checks
//! that make it safe for root to act on what it holds (its incidents name
//! the processes root signals and the files root restores).

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mamori_report::Restored;
use mamori_store::Store;

use crate::settings::DEFAULT_STATE;

const DB_FILE: &str = "mamori.db";
const EVIDENCE_DIR: &str = "evidence";
const SEAL_KEY: &str = "evidence.key";
const FAMILIES: &str = "families.toml";
const RESTORES_DIR: &str = "restores";
/// The servers (pid + start) in whose network namespace a client was
/// blocked: read by `status` and `unblock` without opening the database,
/// which an agent may be creating at that moment.
const BLOCKED_IN: &str = "blocked-in.json";

#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// The state directory named by `--state`, else the default; nothing is
    /// read or checked yet.
    pub fn at(flag: Option<PathBuf>) -> StateDir {
        StateDir { path: flag.unwrap_or_else(|| PathBuf::from(DEFAULT_STATE)) }
    }

    /// The agent's own, with its store (see [`StateDir::make_private`]).
    pub fn for_agent(path: PathBuf) -> Result<(StateDir, Store)> {
        let state = StateDir { path };
        state.make_private()?;
        let store = Store::open(&state.path)
            .with_context(|| format!("cannot open the state directory {}", state.path.display()))?;
        let path = state.path.canonicalize()?;
        Ok((StateDir { path }, store))
    }

    /// Made (root's, 0700) if missing, refused if another user could
    /// change it: checked before anything is written there.
    pub fn make_private(&self) -> Result<()> {
        if self.path.exists() {
            self.check()?;
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .with_context(|| format!("cannot make the state directory {}", self.path.display()))?;
        self.check()
    }

    /// The store of an existing state directory (the agent's, or a copy of it).
    pub fn store(&self) -> Result<Store> {
        if !self.path.join(DB_FILE).exists() {
            bail!("no mamori state in {} (give --state DIR, the agent's state directory)", self.path.display());
        }
        self.check()?;
        Store::open(&self.path).with_context(|| format!("cannot open the state directory {}", self.path.display()))
    }

    /// Refuses a directory that another user than root could change, or one
    /// under a directory they could.
    fn check(&self) -> Result<()> {
        mamori_vault::check_private_dir(&self.path)
            .with_context(|| format!("unsafe state directory {}", self.path.display()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where incident `id`'s evidence bundle is.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.path.join(EVIDENCE_DIR).join(id)
    }

    /// The host's key that seals evidence bundles.
    pub fn seal_key(&self) -> PathBuf {
        self.path.join(SEAL_KEY)
    }

    /// Family markers that replace the built-in ones, when present.
    pub fn families(&self) -> PathBuf {
        self.path.join(FAMILIES)
    }

    /// Where the outcome of restoring incident `id`, file by file, is kept.
    pub fn restore_outcomes(&self, id: &str) -> PathBuf {
        self.path.join(RESTORES_DIR).join(format!("{id}.json"))
    }

    /// The servers in whose network namespaces clients were blocked; none
    /// when the directory is not safe to trust or the file is unreadable.
    pub fn blocked_in(&self) -> Vec<mamori_event::ProcKey> {
        if self.check().is_err() {
            return Vec::new();
        }
        std::fs::read(self.path.join(BLOCKED_IN))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Notes that a client was blocked in `server`'s network namespace.
    pub fn note_blocked_in(&self, server: mamori_event::ProcKey) -> Result<()> {
        let mut servers = self.blocked_in();
        if servers.contains(&server) {
            return Ok(());
        }
        servers.push(server);
        let path = self.path.join(BLOCKED_IN);
        let tmp = self.path.join(format!("{BLOCKED_IN}.new"));
        std::fs::write(&tmp, serde_json::to_vec(&servers)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn save_restore_outcomes(&self, id: &str, outcomes: &BTreeMap<String, Restored>) -> Result<()> {
        let path = self.restore_outcomes(id);
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        std::fs::write(&path, serde_json::to_vec_pretty(outcomes)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}
