//! Where the vaults are, and keeping before-images as the agent sees opens.
//!
//! One vault per filesystem that holds protected folders, on that filesystem
//! (so pins can be hard links and copies can be reflinks): inside the state
//! directory when it shares the filesystem, else `.mamori-vault` at the
//! filesystem's mount point.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mamori_content::{read_facts_sized, Depth};
use mamori_event::{ContentFacts, OpenMode, ProcKey};
use mamori_sensor::Opened;
use mamori_store::{VaultStatus, VaultUserStatus};
use mamori_vault::{Content, Held, HeldFile, Limits, Preserved, SkipReason, Vault};
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

/// How many files this process may have open: the soft limit raised to
/// the hard one first (held files count against it).
fn open_files_allowed() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
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

/// How often the same owner's before-images being skipped for the same
/// reason is alerted again: once per file would bury the log (a flood skips
/// thousands), never again would hide that it still goes on.
const ALERT_EVERY: Duration = Duration::from_secs(3600);

pub fn limits(cfg: &VaultSection) -> Limits {
    let budget_bytes = cfg.budget_mib.saturating_mul(1 << 20);
    Limits {
        budget_bytes,
        user_budget_bytes: u64::try_from(u128::from(budget_bytes) * u128::from(cfg.per_user_budget_percent) / 100)
            .unwrap_or(u64::MAX),
        free_floor_bytes: cfg.free_floor_mib.saturating_mul(1 << 20),
        retention_ns: cfg.retention_hours.saturating_mul(3_600_000_000_000),
    }
}

/// Files read that are larger than this are pinned on disk at once, not
/// held: a held file is copied when it is deleted, on the sensor's thread,
/// and that copy must stay short (a MiB is about a millisecond here). Most
/// documents are smaller; the larger files are few, and a pin costs them a
/// link and a log line.
pub const HOLD_MAX_BYTES: u64 = 1 << 20;

/// Small enough to be held rather than pinned: a delete copies a held file
/// on the sensor's thread while every opener waits.
fn holdable(meta: &std::fs::Metadata) -> bool {
    meta.len() <= HOLD_MAX_BYTES
}

/// Descriptors the agent keeps for itself, beyond the held files: the
/// groups, the vaults, the queue, the store, the evidence being written.
const OWN_FDS: u64 = 4096;

/// Whether a process, or an ancestor credited with its work, has changed
/// a file that existed or has evidence against it (the engine's
/// `has_changed_files`): what it reads may be what it changes next.
pub type Changed<'a> = &'a dyn Fn(ProcKey) -> bool;

/// The agent's vaults, by device.
pub struct Vaults {
    by_dev: BTreeMap<u64, Vault>,
    /// Files opened only to read, held open instead of pinned on disk.
    held: Held,
    range_from: u64,
    /// When each (reason, file owner) was last alerted.
    alerted: HashMap<(SkipReason, u32), Instant>,
    /// Alerts not yet noted in the run's incidents (see [`Vaults::take_alerts`]).
    alerts: Vec<String>,
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
        let hold = cfg.hold_files.min(open_files_allowed().saturating_sub(OWN_FDS) as usize);
        if hold < cfg.hold_files {
            warn!(
                hold_files = cfg.hold_files,
                hold,
                "VAULT: the open-file limit lets the agent hold fewer files read than [vault] hold_files \
                 (raise LimitNOFILE)"
            );
        }
        Ok(Vaults {
            by_dev,
            held: Held::new(hold, cfg.hold_minutes.saturating_mul(60_000_000_000)),
            range_from: cfg.range_copy_from_mib.saturating_mul(1 << 20),
            alerted: HashMap::new(),
            alerts: Vec::new(),
        })
    }

    /// Keeps what an open is about to put at risk: the content, for an
    /// open with write intent; for any other, the inode, so a later delete
    /// or rename-over cannot free it: held open in memory (nothing written),
    /// or pinned on disk when its opener has `changed` files already or the
    /// file is larger than [`HOLD_MAX_BYTES`].
    /// Returns true when a large file is kept by range: its writes are then
    /// to be announced to [`Vaults::keep_range`].
    pub fn keep(
        &mut self,
        opened: Opened<'_>,
        path: &str,
        mode: OpenMode,
        now_ns: u64,
        by: Option<ProcKey>,
        changed: Changed<'_>,
    ) -> bool {
        let Opened { file, meta, whole } = opened;
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
                    self.note(path, meta.uid(), Ok(kept));
                    return false;
                }
                Ok(None) => vault.begin_ranges(file, path, now_ns, by),
                Err(e) => Err(e),
            }
        } else if mode.writes() {
            match whole {
                Some(w) => vault.preserve_read(file, Content { bytes: &w.bytes, blake3: &w.blake3 }, path, now_ns, by),
                None => vault.preserve(file, path, now_ns, by),
            }
        } else if by.is_some_and(changed) || !holdable(meta) {
            // A large file is pinned, not held: its delete would otherwise
            // copy all of it on the sensor's thread while every opener waits.
            vault.pin(file, path, now_ns, by)
        } else {
            match self.held.hold(file, (meta.dev(), meta.ino()), path, by, now_ns) {
                Ok(released) => {
                    for h in released {
                        self.let_go(h, now_ns, changed);
                    }
                    return false;
                }
                // Out of descriptors, say: a pin on disk keeps it all the same.
                Err(e) => {
                    warn!(path, "VAULT: cannot hold a file read, pinning it: {e}");
                    match self.by_dev.get_mut(&meta.dev()) {
                        Some(vault) => vault.pin(file, path, now_ns, by),
                        None => return false,
                    }
                }
            }
        };
        let kept = self.note(path, meta.uid(), result);
        by_range && kept
    }

    /// Whether the file with this inode is being kept by range (its writes watched).
    pub fn kept_by_range(&self, dev: u64, ino: u64) -> bool {
        self.by_dev.get(&dev).is_some_and(|vault| vault.kept_by_range(dev, ino))
    }

    /// Whether an open of this file to read, by a process that has changed
    /// no file, is held open by [`Vaults::keep`] (not pinned, not kept by
    /// range): its content facts can then wait until its name goes, when
    /// [`Vaults::gone`] reads them from the held descriptor.
    pub fn holds_read(&self, meta: &std::fs::Metadata) -> bool {
        meta.is_file()
            && meta.len() > 0
            && holdable(meta)
            && self.by_dev.get(&meta.dev()).is_some_and(|vault| !vault.kept_by_range(meta.dev(), meta.ino()))
    }

    /// A name was deleted: a file held under it that has no name left is
    /// copied from its descriptor before it is let go. Returns the held
    /// file's content facts, which its read did not take (see
    /// [`Vaults::holds_read`]): what the engine weighs the delete by.
    pub fn gone(&mut self, path: &str, now_ns: u64, by: Option<ProcKey>) -> Option<ContentFacts> {
        let (inode, h) = self.held.take(path)?;
        let meta = h.file.metadata().inspect_err(|e| warn!(path, "VAULT: cannot read a held file: {e}")).ok()?;
        let facts = read_facts_sized(&h.file, meta.len(), Depth::Light).ok();
        if meta.nlink() == 0 {
            self.keep_unlinked(&h, &meta, now_ns, by);
        } else {
            // Still linked elsewhere (a hard link): nothing is lost yet.
            self.held.put_back(inode, h);
        }
        facts
    }

    /// A rename: a held file renamed over is gone from that name (its facts
    /// returned, as [`Vaults::gone`]); what is held under `from` is now
    /// known by `to`.
    pub fn renamed(
        &mut self,
        from: &str,
        to: &str,
        dir: bool,
        now_ns: u64,
        by: Option<ProcKey>,
    ) -> Option<ContentFacts> {
        let replaced = if dir { None } else { self.gone(to, now_ns, by) };
        self.held.renamed(from, to, dir);
        replaced
    }

    /// Makes ready what the next copies will be written into (see [`Vault::prepare`]).
    pub fn prepare(&mut self) {
        for vault in self.by_dev.values_mut() {
            vault.prepare();
        }
    }

    /// Lets go of the files held longer than `[vault] hold_minutes`.
    pub fn let_go_expired(&mut self, now_ns: u64, changed: Changed<'_>) {
        for h in self.held.expired(now_ns) {
            self.let_go(h, now_ns, changed);
        }
    }

    /// A held file no longer held: copied if its name went meanwhile (its
    /// delete is yet to be reported), pinned on disk if its opener has
    /// `changed` files since, else forgotten: nothing that read it ever
    /// changed a file.
    fn let_go(&mut self, h: HeldFile, now_ns: u64, changed: Changed<'_>) {
        match h.file.metadata() {
            Ok(meta) if meta.nlink() == 0 => self.keep_unlinked(&h, &meta, now_ns, None),
            Ok(meta) if h.by.is_some_and(changed) => {
                if let Some(vault) = self.by_dev.get_mut(&meta.dev()) {
                    let result = vault.pin(&h.file, &h.path, now_ns, h.by);
                    self.note(&h.path, meta.uid(), result);
                }
            }
            Ok(_) => {}
            Err(e) => warn!(path = h.path, "VAULT: cannot read a held file: {e}"),
        }
    }

    /// Copies a held file whose last name went (`meta` is its metadata, just read).
    fn keep_unlinked(&mut self, h: &HeldFile, meta: &std::fs::Metadata, now_ns: u64, by: Option<ProcKey>) {
        if let Some(vault) = self.by_dev.get_mut(&meta.dev()) {
            let result = vault.keep_unlinked(h, now_ns, by);
            self.note(&h.path, meta.uid(), result);
        }
    }

    /// Keeps the blocks of a large file that a write is about to overwrite;
    /// false when the file is not (or no longer) kept by range.
    pub fn keep_range(&mut self, file: &File, offset: u64, len: u64, reading: &mut dyn FnMut() -> bool) -> bool {
        let Ok(meta) = file.metadata() else { return false };
        let Some(vault) = self.by_dev.get_mut(&meta.dev()) else { return false };
        match vault.keep_range((meta.dev(), meta.ino()), offset, len, reading).transpose() {
            Some(result) => {
                self.note("(a file kept by range)", meta.uid(), result);
                true
            }
            None => false,
        }
    }

    /// Alerts what could not be kept (a file of `uid`'s); true when something is held.
    fn note(&mut self, path: &str, uid: u32, result: Result<Preserved, mamori_vault::VaultError>) -> bool {
        match result {
            // Gone or not a file by the time it was looked at: nothing was lost.
            Ok(Preserved::Skipped(SkipReason::NotRegular)) => false,
            Ok(Preserved::Skipped(reason)) => {
                self.alert(reason, uid, path);
                false
            }
            Ok(_) => true,
            Err(e) => {
                warn!(path, "VAULT: keeping a before-image failed: {e}");
                false
            }
        }
    }

    /// Says loudly, once per reason and owner per [`ALERT_EVERY`], that
    /// before-images are no longer kept, and keeps the words for the incidents.
    fn alert(&mut self, reason: SkipReason, uid: u32, path: &str) {
        let now = Instant::now();
        if self.alerted.get(&(reason, uid)).is_some_and(|at| now.duration_since(*at) < ALERT_EVERY) {
            return;
        }
        self.alerted.insert((reason, uid), now);
        let why = match reason {
            SkipReason::UserBudget => {
                "that owner's share of the vault budget is used up ([vault] per_user_budget_percent)"
            }
            SkipReason::Budget => "the vault budget is used up ([vault] budget_mib)",
            SkipReason::FreeSpaceFloor => "the filesystem is at its free-space floor ([vault] free_floor_mib)",
            SkipReason::NotSameFilesystem => "the vault is not on their filesystem",
            SkipReason::NotRegular => "they are not regular files",
        };
        warn!(
            uid,
            ?reason,
            first = path,
            "VAULT ALERT: before-images of files owned by uid {uid} are no longer kept: {why}; \
             changes to them cannot be undone until copies expire or space is freed"
        );
        self.alerts.push(format!(
            "{}: before-images of files owned by uid {uid} stopped being kept ({why}): \
             changes made to them since may not be restorable",
            crate::agent::now_rfc3339()
        ));
    }

    /// The alerts raised since the last call, for the incidents already open.
    pub fn take_alerts(&mut self) -> Vec<String> {
        std::mem::take(&mut self.alerts)
    }

    /// Every before-image skipped since the agent started, by owner and
    /// reason, for an incident's notes; `None` when none was.
    pub fn skip_summary(&self) -> Option<String> {
        let users = self.users();
        if users.is_empty() {
            return None;
        }
        let parts: Vec<String> = users
            .iter()
            .map(|u| {
                format!(
                    "uid {}: {} over its share of the budget, {} over the budget, {} at the free-space floor",
                    u.uid, u.skipped_user_budget, u.skipped_budget, u.skipped_floor
                )
            })
            .collect();
        Some(format!(
            "before-images not kept since the agent started (files changed then may not be restorable): {}",
            parts.join("; ")
        ))
    }

    /// The owners with before-images skipped, summed over the vaults, by uid.
    fn users(&self) -> Vec<VaultUserStatus> {
        let mut by_uid = BTreeMap::<u32, VaultUserStatus>::new();
        for (uid, u) in self.by_dev.values().flat_map(Vault::users) {
            let st = by_uid.entry(uid).or_insert(VaultUserStatus { uid, ..Default::default() });
            st.bytes += u.bytes;
            st.skipped_budget += u.skipped_budget;
            st.skipped_user_budget += u.skipped_user_budget;
            st.skipped_floor += u.skipped_floor;
        }
        by_uid.into_values().filter(|u| u.skipped_budget + u.skipped_user_budget + u.skipped_floor > 0).collect()
    }

    pub fn status(&self) -> VaultStatus {
        let mut st = VaultStatus::default();
        for u in self.by_dev.values().map(Vault::usage) {
            st.entries += u.entries as u64;
            st.bytes += u.bytes;
            st.skipped_budget += u.skipped_budget;
            st.skipped_user_budget += u.skipped_user_budget;
            st.skipped_floor += u.skipped_floor;
        }
        st.users = self.users();
        st.held_files = self.held.len() as u64;
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
