//! Agent liveness: the running agent holds an exclusive `flock` on
//! `agent.lock` and publishes its status in `agent.json`.
//!
//! The lock, not the status file, says whether an agent runs: the kernel
//! drops it when the agent dies however it dies, while `agent.json` stays
//! behind. A reader asks with a non-blocking shared lock; if that succeeds
//! nobody holds the exclusive one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};

use crate::StoreError;

const LOCK_FILE: &str = "agent.lock";
/// How long a starting agent waits for a lock held by a reader; a running
/// agent holds it far longer.
const READER_GRACE: Duration = Duration::from_millis(250);
const STATUS_FILE: &str = "agent.json";

/// What the running agent tells `mamori status`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AgentStatus {
    pub pid: u32,
    /// RFC 3339.
    pub started_at: String,
    pub protected: Vec<String>,
    pub active: bool,
    pub events: u64,
    pub overflows: u64,
    pub incidents: u64,
    /// RFC 3339.
    pub updated_at: String,
    /// `None` when the vault is off.
    #[serde(default)]
    pub vault: Option<VaultStatus>,
}

/// What the agent's vaults hold, summed over them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct VaultStatus {
    pub entries: u64,
    pub bytes: u64,
    /// Before-images not kept because the space budget was reached.
    pub skipped_budget: u64,
    /// Before-images not kept because their owner's share of the budget was reached.
    #[serde(default)]
    pub skipped_user_budget: u64,
    /// Before-images not kept because the free-space floor was reached.
    pub skipped_floor: u64,
    /// Files read and held open (in memory) instead of kept on disk.
    #[serde(default)]
    pub held_files: u64,
    /// The owners whose files had before-images skipped, by uid. Only
    /// those: a file server has thousands of users, and this file is
    /// rewritten every second.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<VaultUserStatus>,
}

/// One file owner's part of [`VaultStatus`].
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VaultUserStatus {
    pub uid: u32,
    /// What the vaults hold of this owner's files.
    pub bytes: u64,
    pub skipped_budget: u64,
    pub skipped_user_budget: u64,
    pub skipped_floor: u64,
}

/// Held by the running agent for as long as it lives; dropping it releases the lock.
#[derive(Debug)]
pub struct AgentLock {
    _file: File,
    dir: PathBuf,
}

impl AgentLock {
    /// Takes the agent lock in `state_dir`, failing with
    /// [`StoreError::AlreadyRunning`] if another agent holds it.
    pub fn acquire(state_dir: &Path) -> Result<AgentLock, StoreError> {
        let path = state_dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        // A reader asking whether an agent runs (`mamori status`, a
        // monitoring check) holds the lock shared for an instant: an agent
        // starting in that instant must wait it out, not give up.
        let since = Instant::now();
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::WOULDBLOCK) if since.elapsed() < READER_GRACE => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    let mut text = String::new();
                    let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                    return Err(StoreError::AlreadyRunning { pid });
                }
                Err(e) => return Err(StoreError::io(&path, e.into())),
            }
        }
        // The pid is for the error message of a second agent; the lock is the truth.
        file.set_len(0)
            .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(|e| StoreError::io(&path, e))?;
        Ok(AgentLock { _file: file, dir: state_dir.to_owned() })
    }

    /// Replaces `agent.json` atomically, so a reader never sees half of it.
    pub fn publish(&self, st: &AgentStatus) -> Result<(), StoreError> {
        let path = self.dir.join(STATUS_FILE);
        let tmp = self.dir.join(format!("{STATUS_FILE}.{}.tmp", std::process::id()));
        let text = serde_json::to_vec_pretty(st).expect("status serialises");
        fs::write(&tmp, text).and_then(|()| fs::rename(&tmp, &path)).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            StoreError::io(&path, e)
        })
    }
}

/// The running agent's status: `Some` only while another open of the lock
/// file holds it (an agent is alive) and `agent.json` parses. A status file
/// left by a dead agent gives `None`.
pub fn agent_status(state_dir: &Path) -> Result<Option<AgentStatus>, StoreError> {
    let lock_path = state_dir.join(LOCK_FILE);
    let file = match File::open(&lock_path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(&lock_path, e)),
    };
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        // Nobody holds the exclusive lock; ours goes away with `file`.
        Ok(()) => return Ok(None),
        Err(rustix::io::Errno::WOULDBLOCK) => {}
        Err(e) => return Err(StoreError::io(&lock_path, e.into())),
    }
    let status_path = state_dir.join(STATUS_FILE);
    match fs::read(&status_path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(&status_path, e)),
    }
}
