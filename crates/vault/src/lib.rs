//! The vault: before-images of protected files, on the same filesystem,
//! out of an attacker's reach, and the way back.
//!
//! Files opened only to read are not kept here at all while they are
//! [`Held`] open in memory; one whose name goes meanwhile is copied from the
//! held descriptor ([`Vault::keep_unlinked`]).
//!
//! Three kinds of entry. A **copy** keeps a file's content and metadata from
//! the moment a process opened it to write (a reflink where the filesystem
//! can, bytes where it cannot). A **pin** is a hard link to a file some
//! process opened: a later delete or rename-over then frees nothing, and if
//! the file is changed in place, a copy was taken first. **Ranges** keep a
//! large file block by block just before each block is first overwritten
//! (see [`ranges`](crate::ranges)).
//!
//! Layout of a vault directory (root-owned, mode 0700):
//!
//! ```text
//! VAULT         format marker
//! objects/N     content of entry N (a copy, or a hard link for a pin)
//! staging/      where copies are written, as files without a name
//! entries.log   one JSON line per entry, appended; the index is rebuilt from it
//! ```
//!
//! A copy is written without a name (see `Staged`) and linked into place
//! whole before its line is appended; neither is fsynced while the opener waits: a thread
//! makes them durable within a second (see `syncer`).
//! After a crash an object without a line is an orphan (removed at the next
//! open), a line whose object is missing or shorter than the file it copied
//! is dropped, and a torn last line is skipped. Pins are not fsynced either
//! (see [`Vault::pin`]).
//!
//! A file opened through another mount of the vault's filesystem (from
//! another mount namespace: smbd under `ip netns exec`, a service with
//! `PrivateTmp=`) is kept like any other (see [`mounts`](crate::mounts)).
//!
//! A vault is opened only where no one but root can change it, or a
//! directory above it ([`check_private_dir`]), and its log, marker and
//! objects are opened relative to the held directory, never through a link.
//! Even so a log line may only name an object the vault itself would write.
//!
//! Space is bounded three ways: the vault's budget, a share of it per user
//! (see [`Limits::user_budget_bytes`]), and a floor of free space on the
//! filesystem. A copy that would cross any of them is skipped, counted for
//! the file's owner ([`Vault::users`]), and reported as [`Preserved::Skipped`].

mod held;
mod mounts;
mod private_dir;
mod ranges;
mod syncer;
mod sys;

pub use held::{Held, HeldFile};
pub use private_dir::{check_private_dir, UnsafeDir};

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mamori_event::ProcKey;
use serde::{Deserialize, Serialize};
use tracing::warn;

const FORMAT: &str = "mamori-vault 1\n";
const LOG: &str = "entries.log";
const LOG_NEW: &str = "entries.log.new";
const MARKER: &str = "VAULT";
/// The highest entry id a log line may carry: ids count up from 1, so no
/// vault gets near it, and the ids after it cannot wrap around.
const MAX_ID: u64 = 1 << 62;
const OBJECTS: &str = "objects";
/// Where copies are written before they are whole: nameless files (see
/// `Staged`). The sensor leaves this folder without marks.
pub const STAGING: &str = "staging";
/// Nameless files kept ready for copies: a program rewriting files one by
/// one uses one at a time, and the agent makes the next while it writes.
const SPARE: usize = 4;
/// How long a free-space reading stands while ranges are kept.
const FREE_SPACE_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Problems with the vault itself. Problems with one file's copy are
/// reported as [`Preserved::Skipped`] instead: the agent keeps protecting.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("vault {path}: {source} (check that it is on a local filesystem mamori can write as root)")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a mamori vault (its VAULT marker is missing or of another format); move it aside")]
    NotAVault { path: PathBuf },
    #[error("restoring {path}: the content written does not match the copy's hash (the vault copy was changed)")]
    HashMismatch { path: PathBuf },
    /// The vault directory (or one above it) could be changed by someone other than root.
    #[error(transparent)]
    Unsafe(#[from] UnsafeDir),
    #[error("{path} is not a regular file (a link, FIFO, device or directory): left alone")]
    NotRegular { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VaultError + '_ {
    move |source| VaultError::Io { path: path.to_path_buf(), source }
}

/// What a file was, when its entry was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub path: String,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime_ns: i128,
    pub mtime_ns: i128,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Copy,
    Pin,
    Ranges,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: u64,
    pub kind: Kind,
    pub meta: Meta,
    /// BLAKE3 (hex) of the content: always for copies, for pins when the
    /// file is small enough to hash on the hot path ([`PIN_HASH_MAX`]).
    pub hash: Option<String>,
    /// File name under `objects/`. Absent in lines written before the
    /// field existed, where it was the id.
    #[serde(default)]
    pub object: String,
    pub taken_ns: u64,
    /// The process whose open made the vault take this entry: a restore
    /// finds everything an actor's opens kept even when the agent was
    /// restarted in the middle of the attack and saw only its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<ProcKey>,
}

/// Pins at most this large are hashed when taken, so a restore can tell
/// whether the pinned inode was changed in place after the pin.
pub const PIN_HASH_MAX: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// The vault's space budget would be exceeded.
    Budget,
    /// The file owner's share of the budget would be exceeded.
    UserBudget,
    /// The filesystem's free space would fall below the floor (or ran out).
    FreeSpaceFloor,
    /// Not a regular file.
    NotRegular,
    /// A pin needs the vault on the file's own filesystem (any mount of
    /// it will do: another mount namespace's copy of the mount too).
    NotSameFilesystem,
}

// Returned once per call and matched at once, never kept in bulk: boxing
// the entry would buy nothing but an allocation on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Preserved {
    Stored(Entry),
    AlreadyHeld,
    Skipped(SkipReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub budget_bytes: u64,
    /// The most the files of one owner (uid) may hold, so that one user
    /// rewriting a large file again and again (each rewrite changes its
    /// modification time, so each open to write is a new copy) cannot fill
    /// the budget and leave everyone else's files uncopied until the
    /// retention frees it.
    ///
    /// Charged to the file's owner, not to the process opening it. The
    /// opener is whoever the attacker runs as, and an attacker encrypting a
    /// victim's files opens them as itself: charged to the opener, a flood
    /// of the attacker's own junk file would first spend its share, and then
    /// every victim file it encrypts would go uncopied. The owner is the one
    /// thing the attacker cannot choose (only root may `chown`; what it
    /// creates is its own), and the owner is whose data a copy protects. So a
    /// flood of its own files spends only its own share; to spend a victim's
    /// share it must make copies of the victim's files, which takes write
    /// access to them, and the first copy of each (the original) is kept
    /// before its share runs out. The owner also costs nothing to learn:
    /// it is in the `fstat` every copy makes anyway.
    pub user_budget_bytes: u64,
    pub free_floor_bytes: u64,
    pub retention_ns: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VaultUsage {
    pub entries: usize,
    pub bytes: u64,
    pub skipped_budget: u64,
    pub skipped_user_budget: u64,
    pub skipped_floor: u64,
}

/// What the files of one owner hold, and how many of their before-images
/// were skipped since the vault was opened (by reason).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserUsage {
    pub bytes: u64,
    pub skipped_budget: u64,
    pub skipped_user_budget: u64,
    pub skipped_floor: u64,
}

pub struct Vault {
    dir: PathBuf,
    /// The vault directory and its `objects/`, held open: the log, the
    /// marker and the objects are opened relative to them, never through a link.
    dir_fd: File,
    objects_fd: File,
    /// `staging/`, while the filesystem makes nameless files there.
    staging_fd: Option<File>,
    /// Nameless files made there ahead of the copies that will fill them
    /// (see [`Vault::prepare`]).
    spare: Vec<File>,
    limits: Limits,
    entries: Vec<Entry>,
    /// Keyed by a hash of the path, not the path itself: a pin per opened
    /// file adds up on a large share, and the path is in the entry already.
    by_path: HashMap<u64, Vec<u32>>,
    by_inode: HashMap<(u64, u64), Vec<u32>>,
    /// The agent's view of pins: just the inodes held and when, as a pin is
    /// taken for every opened file and full entries would weigh tens of MiB
    /// on a large share. A read-only open (restore) keeps full entries.
    pins: HashMap<(u64, u64), u64>,
    compact_pins: bool,
    /// Large files being kept by range, by inode.
    active: HashMap<(u64, u64), ranges::Active>,
    /// Free space last read, and when (see `Vault::refusal`).
    free: Option<(u64, std::time::Instant)>,
    /// Whether the vault's filesystem can share blocks, once asked (see [`mounts::can_clone`]).
    can_clone: Option<bool>,
    next_id: u64,
    usage: VaultUsage,
    /// By file owner (uid): what is charged to each share of the budget.
    users: HashMap<u32, UserUsage>,
    log: Option<File>,
    /// Makes copies and log lines durable off the writer's path (writable vaults only).
    syncer: Option<syncer::Syncer>,
}

impl Vault {
    /// Creates or opens a vault for the agent: rebuilds the index from the
    /// log and removes orphan objects.
    pub fn open(dir: &Path, limits: Limits) -> Result<Vault, VaultError> {
        Vault::load(dir, limits, true)
    }

    /// Opens an existing vault to read and restore from, changing nothing in
    /// it (the agent may be writing to it at the same time).
    pub fn open_read_only(dir: &Path, limits: Limits) -> Result<Vault, VaultError> {
        Vault::load(dir, limits, false)
    }

    fn load(dir: &Path, limits: Limits, writable: bool) -> Result<Vault, VaultError> {
        if writable && std::fs::symlink_metadata(dir).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir))?;
        }
        check_private_dir(dir)?;
        let dir_fd = sys::open_dir(dir).map_err(io_err(dir))?;
        // Again on what was opened: the name may have been swapped since.
        private_dir::check_own(dir, &dir_fd.metadata().map_err(io_err(dir))?)?;
        let marker = dir.join(MARKER);
        if writable {
            // Only tightened (it passed the check): nobody else may even list what was kept.
            dir_fd.set_permissions(std::fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
            match sys::mkdir_in(dir_fd.as_fd(), OsStr::new(OBJECTS), 0o700) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(io_err(dir)(e)),
                _ => {}
            }
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
            match sys::open_in(dir_fd.as_fd(), OsStr::new(MARKER), flags, 0o600) {
                Ok(mut f) => f.write_all(FORMAT.as_bytes()).map_err(io_err(&marker))?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(&marker)(e)),
            }
        }
        let mut text = String::new();
        match sys::open_in(dir_fd.as_fd(), OsStr::new(MARKER), libc::O_RDONLY, 0)
            .and_then(|mut f| f.read_to_string(&mut text))
        {
            Ok(_) if text == FORMAT => {}
            _ => return Err(VaultError::NotAVault { path: dir.to_path_buf() }),
        }
        if writable {
            set_aside_unindexed(dir, &dir_fd)?;
        }
        let objects_fd = sys::open_in(dir_fd.as_fd(), OsStr::new(OBJECTS), libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map_err(io_err(&dir.join(OBJECTS)))?;
        let staging_fd = if writable { open_staging(&dir_fd) } else { None };
        let mut vault = Vault {
            dir: dir.to_path_buf(),
            dir_fd,
            objects_fd,
            staging_fd,
            spare: Vec::new(),
            limits,
            entries: Vec::new(),
            by_path: HashMap::new(),
            by_inode: HashMap::new(),
            pins: HashMap::new(),
            compact_pins: writable,
            active: HashMap::new(),
            free: None,
            can_clone: None,
            next_id: 1,
            usage: VaultUsage::default(),
            users: HashMap::new(),
            log: None,
            syncer: None,
        };
        let held = vault.read_log()?;
        if writable {
            vault.remove_orphans(&held)?;
            let log = vault.open_log(libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT)?;
            let objects = vault.objects_fd.try_clone().map_err(io_err(dir))?;
            let synced_log = log.try_clone().map_err(io_err(dir))?;
            vault.syncer = Some(syncer::Syncer::start(objects, synced_log).map_err(io_err(dir))?);
            vault.log = Some(log);
        }
        Ok(vault)
    }

    fn open_log(&self, flags: libc::c_int) -> Result<File, VaultError> {
        sys::open_in(self.dir_fd.as_fd(), OsStr::new(LOG), flags, 0o600).map_err(io_err(&self.dir.join(LOG)))
    }

    /// Indexes the log's entries; returns the object names they hold (pins
    /// included, which the agent's index keeps only as inode summaries).
    fn read_log(&mut self) -> Result<HashSet<String>, VaultError> {
        let path = self.dir.join(LOG);
        let mut held = HashSet::new();
        let file = match sys::open_in(self.dir_fd.as_fd(), OsStr::new(LOG), libc::O_RDONLY, 0) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(held),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut skipped = 0;
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io_err(&path))?;
            match parse_line(&line) {
                Some(e) => {
                    if self.has_objects(&e) {
                        held.extend(object_files(&e));
                        self.index(e);
                    } else {
                        warn!(id = e.id, path = %e.meta.path, "vault entry without its object: dropped");
                    }
                }
                None => skipped += 1,
            }
        }
        if skipped > 0 {
            warn!(skipped, log = %path.display(), "unreadable vault log lines skipped (an interrupted write)");
        }
        Ok(held)
    }

    fn remove_orphans(&mut self, held: &HashSet<String>) -> Result<(), VaultError> {
        let objects = self.dir.join(OBJECTS);
        for dent in std::fs::read_dir(&objects).map_err(io_err(&objects))? {
            let dent = dent.map_err(io_err(&objects))?;
            let name = dent.file_name();
            let known = name.to_str().is_some_and(|n| held.contains(n));
            if !known {
                warn!(object = ?name, "orphan vault object removed");
                let _ = sys::unlink_in(self.objects_fd.as_fd(), &name);
            }
        }
        Ok(())
    }

    /// Whether every file of `e` is under `objects/`, a regular file (not a
    /// link), and a copy's object as long as the file it copied: a copy is
    /// not fsynced before its line (see `syncer`), and one that a crash cut
    /// short is dropped, never restored as the file.
    fn has_objects(&self, e: &Entry) -> bool {
        object_files(e).iter().all(|name| {
            sys::lstat_in(self.objects_fd.as_fd(), OsStr::new(name)).is_ok_and(|st| {
                st.st_mode & libc::S_IFMT == libc::S_IFREG
                    && (e.kind != Kind::Copy || u64::try_from(st.st_size).ok() == Some(e.meta.size))
            })
        })
    }

    /// Opens the object `name` to read: a regular file under `objects/`, never through a link.
    fn open_object(&self, name: &str) -> Result<File, VaultError> {
        let path = self.dir.join(OBJECTS).join(name);
        let file = sys::open_in(self.objects_fd.as_fd(), OsStr::new(name), libc::O_RDONLY | libc::O_NONBLOCK, 0)
            .map_err(io_err(&path))?;
        if !file.metadata().map_err(io_err(&path))?.is_file() {
            return Err(VaultError::NotRegular { path });
        }
        Ok(file)
    }

    fn index(&mut self, e: Entry) {
        self.next_id = self.next_id.max(e.id + 1);
        if self.compact_pins && e.kind == Kind::Pin {
            self.pins.insert((e.meta.dev, e.meta.ino), e.taken_ns);
            self.usage.entries = self.entries.len() + self.pins.len();
            return;
        }
        let i = self.entries.len() as u32;
        let bytes = match e.kind {
            Kind::Copy => e.meta.size,
            // What its blocks kept so far take (nothing yet when just begun):
            // read back after a restart or an expiry, so they stay charged.
            Kind::Ranges => sys::lstat_in(self.objects_fd.as_fd(), OsStr::new(&e.object))
                .map_or(0, |st| u64::try_from(st.st_size).unwrap_or(0)),
            Kind::Pin => 0,
        };
        self.usage.bytes += bytes;
        self.users.entry(e.meta.uid).or_default().bytes += bytes;
        self.by_path.entry(path_key(&e.meta.path)).or_default().push(i);
        self.by_inode.entry((e.meta.dev, e.meta.ino)).or_default().push(i);
        self.entries.push(e);
        self.usage.entries = self.entries.len() + self.pins.len();
    }

    /// Appends `e`'s line to the log; `durable` waits for it to reach the disk.
    fn append(&mut self, e: Entry, durable: bool) -> Result<Entry, VaultError> {
        let mut line = serde_json::to_string(&e).expect("entries always serialise");
        line.push('\n');
        let path = self.dir.join(LOG);
        let log = self.log.as_mut().ok_or_else(|| io_err(&path)(io::Error::from(io::ErrorKind::PermissionDenied)))?;
        log.write_all(line.as_bytes()).map_err(io_err(&path))?;
        if durable {
            log.sync_data().map_err(io_err(&path))?;
        } else if let Some(s) = &self.syncer {
            s.written();
        }
        self.index(e.clone());
        Ok(e)
    }

    pub fn object_path(&self, e: &Entry) -> PathBuf {
        self.dir.join("objects").join(&e.object)
    }

    /// Every entry the index holds in full (all of them in a read-only vault).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entries_for_path(&self, path: &str) -> Vec<&Entry> {
        let Some(ix) = self.by_path.get(&path_key(path)) else { return Vec::new() };
        ix.iter().map(|&i| &self.entries[i as usize]).filter(|e| e.meta.path == path).collect()
    }

    pub fn entries_for_inode(&self, dev: u64, ino: u64) -> Vec<&Entry> {
        self.by_inode
            .get(&(dev, ino))
            .map(|ix| ix.iter().map(|&i| &self.entries[i as usize]).collect())
            .unwrap_or_default()
    }

    pub fn usage(&self) -> VaultUsage {
        self.usage
    }

    /// What each file owner's entries hold, and their skips, by uid.
    pub fn users(&self) -> impl Iterator<Item = (u32, &UserUsage)> {
        self.users.iter().map(|(&uid, u)| (uid, u))
    }

    /// Counts a before-image of a file owned by `uid` skipped for `reason`.
    fn count_skip(&mut self, uid: u32, reason: SkipReason) {
        let user = self.users.entry(uid).or_default();
        match reason {
            SkipReason::Budget => {
                self.usage.skipped_budget += 1;
                user.skipped_budget += 1;
            }
            SkipReason::UserBudget => {
                self.usage.skipped_user_budget += 1;
                user.skipped_user_budget += 1;
            }
            SkipReason::FreeSpaceFloor => {
                self.usage.skipped_floor += 1;
                user.skipped_floor += 1;
            }
            SkipReason::NotRegular | SkipReason::NotSameFilesystem => {}
        }
    }

    fn held(&self, meta: &Meta, kind: Kind) -> bool {
        if kind == Kind::Pin && self.compact_pins {
            return self.pins.contains_key(&(meta.dev, meta.ino));
        }
        self.entries_for_inode(meta.dev, meta.ino)
            .iter()
            .rev()
            .find(|e| e.kind == kind)
            .is_some_and(|e| kind == Kind::Pin || (e.meta.size == meta.size && e.meta.mtime_ns == meta.mtime_ns))
    }

    /// Keeps the current content and metadata of `file` (known as `path`).
    pub fn preserve(
        &mut self,
        file: &File,
        path: &str,
        now_ns: u64,
        by: Option<ProcKey>,
    ) -> Result<Preserved, VaultError> {
        self.copy(file, path, now_ns, by, false, None).map(|kept| kept.expect("byte copies are always possible"))
    }

    /// [`Vault::preserve`], written from `read`, all of `file` as the caller
    /// read it (while its opener waited), and hashed as the caller hashed
    /// it: the bytes are not read again. If `file` is no longer that size
    /// it is read afresh.
    pub fn preserve_read(
        &mut self,
        file: &File,
        read: Content<'_>,
        path: &str,
        now_ns: u64,
        by: Option<ProcKey>,
    ) -> Result<Preserved, VaultError> {
        self.copy(file, path, now_ns, by, false, Some(read)).map(|kept| kept.expect("byte copies are always possible"))
    }

    /// Keeps `file` as a reflink if its filesystem can (XFS, btrfs): a large
    /// file then costs only what is later overwritten, and nothing while it
    /// is written. `None` when the filesystem cannot (ext4). Not hashed: the
    /// whole file would have to be read on the hot path, and shared extents
    /// cannot change in place.
    pub fn preserve_reflink(
        &mut self,
        file: &File,
        path: &str,
        now_ns: u64,
        by: Option<ProcKey>,
    ) -> Result<Option<Preserved>, VaultError> {
        self.copy(file, path, now_ns, by, true, None)
    }

    fn copy(
        &mut self,
        file: &File,
        path: &str,
        now_ns: u64,
        by: Option<ProcKey>,
        reflink_only: bool,
        read: Option<Content<'_>>,
    ) -> Result<Option<Preserved>, VaultError> {
        let Some(meta) = meta_of(file, path, true) else { return Ok(Some(Preserved::Skipped(SkipReason::NotRegular))) };
        let read = read.filter(|r| r.bytes.len() as u64 == meta.size);
        if self.held(&meta, Kind::Copy) {
            return Ok(Some(Preserved::AlreadyHeld));
        }
        // A reflink shares the file's blocks: it takes space only as they are overwritten.
        let takes = if reflink_only { 0 } else { meta.size };
        if let Some(reason) = self.refusal(takes, meta.uid)? {
            return Ok(Some(Preserved::Skipped(reason)));
        }
        let id = self.next_id;
        self.next_id += 1;
        let entry = Entry { id, kind: Kind::Copy, meta, hash: None, object: id.to_string(), taken_ns: now_ns, by };
        // Named in objects/ only once whole, so a name there that a log line
        // points at is always a whole copy.
        let name = OsString::from(&entry.object);
        let object = self.object_path(&entry);
        let staged = match self.stage(id) {
            Ok(staged) => staged,
            Err(e) => return self.not_copied(e, entry.meta.uid, reflink_only, &object),
        };
        let mut written = copy_object(
            file,
            entry.meta.size,
            &staged.file,
            if reflink_only {
                Copying::Reflink
            } else {
                Copying::Bytes { reflink: self.can_clone() != Some(false), read }
            },
        );
        if reflink_only && written.as_ref().is_err_and(|e| e.raw_os_error() == Some(libc::EXDEV)) {
            if !self.clones_across_mounts(file)? {
                staged.discard(&self.objects_fd);
                return Ok(None);
            }
            // Charged whole: the kernel may have copied the bytes rather than shared them.
            if let Some(reason) = self.refusal(entry.meta.size, entry.meta.uid)? {
                staged.discard(&self.objects_fd);
                return Ok(Some(Preserved::Skipped(reason)));
            }
            written = copy_object(file, entry.meta.size, &staged.file, Copying::InKernel);
        }
        let hash = match written {
            Ok(hash) => hash,
            Err(e) => {
                staged.discard(&self.objects_fd);
                return self.not_copied(e, entry.meta.uid, reflink_only, &object);
            }
        };
        let copy = staged.publish(&self.objects_fd, &name).map_err(io_err(&object))?;
        if let Some(s) = &self.syncer {
            s.copied(copy);
        }
        // Made durable with the object by the syncer (see `syncer`).
        self.append(Entry { hash, ..entry }, false).map(|e| Some(Preserved::Stored(e)))
    }

    /// Makes the nameless files the next copies will be written into, so
    /// that making one (an inode, on ext4 a journal transaction) is not
    /// part of what a writer waits for. Called when the agent has answered
    /// what was waiting; a copy with no spare left makes its own.
    pub fn prepare(&mut self) {
        while self.spare.len() < SPARE {
            let Some(staging) = &self.staging_fd else { return };
            match sys::nameless_in(staging.as_fd(), 0o600) {
                Ok(file) => self.spare.push(file),
                // Whatever the reason, the copy that needs one asks again and says why.
                Err(_) => return,
            }
        }
    }

    /// A new file for the copy with id `id` (see [`Staged`]).
    fn stage(&mut self, id: u64) -> io::Result<Staged> {
        if let Some(file) = self.spare.pop() {
            return Ok(Staged { file, temp: None });
        }
        if let Some(staging) = &self.staging_fd {
            match sys::nameless_in(staging.as_fd(), 0o600) {
                Ok(file) => return Ok(Staged { file, temp: None }),
                // Not asked again: a filesystem without O_TMPFILE, or the folder gone.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL | libc::ENOENT)
                    ) =>
                {
                    warn!(vault = %self.dir.display(), "copies take a temp name from now on: {e}");
                    self.staging_fd = None;
                    self.spare.clear();
                }
                // Out of descriptors or of space: a named file would fail alike.
                Err(e) => return Err(e),
            }
        }
        let temp = OsString::from(format!(".tmp-{id}"));
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
        let file = sys::open_in(self.objects_fd.as_fd(), &temp, flags, 0o600)?;
        Ok(Staged { file, temp: Some(temp) })
    }

    /// What a copy that failed with `e` comes to: skipped for want of space
    /// (counted for the file's owner, `uid`), not made (a reflink only: the
    /// caller keeps the file by range instead), or an error about `object`.
    fn not_copied(
        &mut self,
        e: io::Error,
        uid: u32,
        reflink_only: bool,
        object: &Path,
    ) -> Result<Option<Preserved>, VaultError> {
        if matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) {
            self.count_skip(uid, SkipReason::FreeSpaceFloor);
            return Ok(Some(Preserved::Skipped(SkipReason::FreeSpaceFloor)));
        }
        if reflink_only {
            return Ok(None);
        }
        Err(io_err(object)(e))
    }

    /// Whether `file`, whose reflink was refused for being on another mount
    /// (kernels before 6.8), is on the vault's filesystem and that
    /// filesystem can share blocks: then [`Copying::InKernel`] clones it.
    fn clones_across_mounts(&mut self, file: &File) -> Result<bool, VaultError> {
        if !mounts::same_filesystem(file, &self.dir_fd).map_err(io_err(&self.dir))? {
            return Ok(false);
        }
        // Unknown: the file is kept by range meanwhile, which works on any filesystem.
        Ok(self.can_clone() == Some(true))
    }

    /// Whether the vault's filesystem can share blocks: asked once, and
    /// again next time while it cannot be told (`None`). Where it cannot,
    /// a copy does not ask the kernel for a reflink it would refuse.
    fn can_clone(&mut self) -> Option<bool> {
        if self.can_clone.is_none() {
            match mounts::can_clone(self.staging_fd.as_ref().unwrap_or(&self.objects_fd).as_fd()) {
                Ok(can) => self.can_clone = Some(can),
                Err(e) => {
                    warn!(vault = %self.dir.display(), "cannot tell whether the vault's filesystem can clone: {e}")
                }
            }
        }
        self.can_clone
    }

    /// Keeps a held file whose last name went (deleted, or replaced by a
    /// rename) as a copy under the name it had, taken now for `by` (who
    /// removed it, when known): its descriptor still reaches the content
    /// the name had, and nothing else does.
    pub fn keep_unlinked(
        &mut self,
        held: &HeldFile,
        now_ns: u64,
        by: Option<ProcKey>,
    ) -> Result<Preserved, VaultError> {
        self.preserve(&held.file, &held.path, now_ns, by.or(held.by))
    }

    /// Pins the inode of `file` (known as `path`) with a hard link.
    pub fn pin(&mut self, file: &File, path: &str, now_ns: u64, by: Option<ProcKey>) -> Result<Preserved, VaultError> {
        let Some(meta) = meta_of(file, path, false) else { return Ok(Preserved::Skipped(SkipReason::NotRegular)) };
        if self.held(&meta, Kind::Pin) {
            return Ok(Preserved::AlreadyHeld);
        }
        let id = self.next_id;
        self.next_id += 1;
        let hash = if meta.size <= PIN_HASH_MAX { hash_of(file, meta.size).ok() } else { None };
        let entry = Entry { id, kind: Kind::Pin, meta, hash, object: id.to_string(), taken_ns: now_ns, by };
        let object = self.object_path(&entry);
        match mounts::link(file, self.objects_fd.as_fd(), OsStr::new(&entry.object), &self.dir_fd) {
            // Not fsynced: a pin is taken on every open while the opener
            // waits, and an fsync costs milliseconds. A crash loses the link
            // and its line together (the journal commits them in order).
            Ok(()) => self.append(entry, false).map(Preserved::Stored),
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => Ok(Preserved::Skipped(SkipReason::NotSameFilesystem)),
            // Already deleted by the time we looked: nothing left to pin.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(Preserved::Skipped(SkipReason::NotRegular)),
            Err(e) => Err(io_err(&object)(e)),
        }
    }

    /// Starts keeping `file` (known as `path`) by range: pins its inode and
    /// records its metadata; the blocks follow through [`Vault::keep_range`]
    /// as they are about to be overwritten.
    pub fn begin_ranges(
        &mut self,
        file: &File,
        path: &str,
        now_ns: u64,
        by: Option<ProcKey>,
    ) -> Result<Preserved, VaultError> {
        let Some(meta) = meta_of(file, path, true) else { return Ok(Preserved::Skipped(SkipReason::NotRegular)) };
        if self.active.contains_key(&(meta.dev, meta.ino)) {
            return Ok(Preserved::AlreadyHeld);
        }
        let id = self.next_id;
        self.next_id += 1;
        let entry = Entry { id, kind: Kind::Ranges, meta, hash: None, object: id.to_string(), taken_ns: now_ns, by };
        let objects = self.dir.join("objects");
        let objects_fd = self.objects_fd.as_fd();
        let active = match ranges::Active::create(
            objects_fd,
            &entry.object,
            file,
            entry.meta.size,
            entry.meta.uid,
            &self.dir_fd,
        ) {
            Ok(active) => active,
            Err(e) => {
                for name in object_files(&entry) {
                    let _ = sys::unlink_in(objects_fd, OsStr::new(&name));
                }
                return match e.raw_os_error() {
                    Some(libc::EXDEV) => Ok(Preserved::Skipped(SkipReason::NotSameFilesystem)),
                    Some(libc::ENOENT) => Ok(Preserved::Skipped(SkipReason::NotRegular)),
                    _ => Err(io_err(&objects)(e)),
                };
            }
        };
        self.objects_fd.sync_all().map_err(io_err(&objects))?;
        self.active.insert((entry.meta.dev, entry.meta.ino), active);
        self.append(entry, true).map(Preserved::Stored)
    }

    /// Whether the file with this inode is being kept by range.
    pub fn kept_by_range(&self, dev: u64, ino: u64) -> bool {
        self.active.contains_key(&(dev, ino))
    }

    /// Keeps the blocks of `[offset, offset + len)` of the file `inode`
    /// (`len == 0`: to the end) that are about to be overwritten, if the
    /// file is being kept by range.
    /// Returns `None` when it is not, and [`SkipReason::Budget`] or
    /// [`SkipReason::FreeSpaceFloor`] when some of the range's data would
    /// not fit (what fits is kept).
    /// `reading` tells whether the access is a read after all (it costs a
    /// look at the accessor's system call, so it is asked only when there is
    /// something left to keep).
    pub fn keep_range(
        &mut self,
        inode: (u64, u64),
        offset: u64,
        len: u64,
        reading: &mut dyn FnMut() -> bool,
    ) -> Result<Option<Preserved>, VaultError> {
        let Some(active) = self.active.get(&inode) else { return Ok(None) };
        if active.all_kept(offset, len) || reading() {
            return Ok(Some(Preserved::AlreadyHeld));
        }
        let uid = active.uid;
        // What may be kept is known only while keeping: a truncate of a
        // sparse terabyte may hold a few blocks of data or all of them.
        let budget_room = self.limits.budget_bytes.saturating_sub(self.usage.bytes);
        let user_room = self.limits.user_budget_bytes.saturating_sub(self.users.get(&uid).map_or(0, |u| u.bytes));
        // Asked before every write: the free space may stand for a second.
        let free_room = self.free_bytes(true)?.saturating_sub(self.limits.free_floor_bytes);
        let active = self.active.get_mut(&inode).expect("looked up above");
        match active.keep(offset, len, budget_room.min(user_room).min(free_room)) {
            Ok(kept) => {
                self.usage.bytes += kept.bytes;
                self.users.entry(uid).or_default().bytes += kept.bytes;
                if let Some((free, _)) = &mut self.free {
                    *free = free.saturating_sub(kept.bytes);
                }
                if !kept.refused {
                    return Ok(Some(Preserved::AlreadyHeld));
                }
                // The smallest room is what refused it.
                let reason = if user_room <= budget_room.min(free_room) {
                    SkipReason::UserBudget
                } else if budget_room <= free_room {
                    SkipReason::Budget
                } else {
                    SkipReason::FreeSpaceFloor
                };
                self.count_skip(uid, reason);
                Ok(Some(Preserved::Skipped(reason)))
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) => {
                self.count_skip(uid, SkipReason::FreeSpaceFloor);
                Ok(Some(Preserved::Skipped(SkipReason::FreeSpaceFloor)))
            }
            Err(e) => Err(io_err(&self.dir)(e)),
        }
    }

    /// Why `bytes` more of a file owned by `uid` may not be kept, if they
    /// may not: over its owner's share, over the space budget, or below the
    /// free-space floor (counted, for that owner too). The owner's share
    /// comes first: a user over it is skipped for that, whatever else is full.
    fn refusal(&mut self, bytes: u64, uid: u32) -> Result<Option<SkipReason>, VaultError> {
        let user_bytes = self.users.get(&uid).map_or(0, |u| u.bytes);
        let reason = if user_bytes + bytes > self.limits.user_budget_bytes {
            Some(SkipReason::UserBudget)
        } else if self.usage.bytes + bytes > self.limits.budget_bytes {
            Some(SkipReason::Budget)
        } else if self.free_bytes(false)? < bytes.saturating_add(self.limits.free_floor_bytes) {
            Some(SkipReason::FreeSpaceFloor)
        } else {
            None
        };
        if let Some(reason) = reason {
            self.count_skip(uid, reason);
        }
        Ok(reason)
    }

    /// The filesystem's free space. With `cached`, a reading up to a second
    /// old stands, less what was kept by range since.
    fn free_bytes(&mut self, cached: bool) -> Result<u64, VaultError> {
        let free = match self.free {
            Some((free, at)) if cached && at.elapsed() < FREE_SPACE_FRESH => free,
            _ => sys::free_bytes(&self.dir_fd).map_err(io_err(&self.dir))?,
        };
        self.free = Some((free, std::time::Instant::now()));
        Ok(free)
    }

    /// Releases entries older than the retention window unless `keep` wants
    /// them; rewrites the log without them. Returns the bytes freed.
    pub fn expire(&mut self, now_ns: u64, keep: &dyn Fn(&Entry) -> bool) -> Result<u64, VaultError> {
        let cutoff = now_ns.saturating_sub(self.limits.retention_ns);
        let oldest = self.entries.iter().map(|e| e.taken_ns).chain(self.pins.values().copied()).min();
        if oldest.is_none_or(|t| t >= cutoff) {
            return Ok(0);
        }
        // The log is the whole truth (pins are only summarised in memory).
        let log_path = self.dir.join(LOG);
        let file = self.open_log(libc::O_RDONLY)?;
        let (mut kept, mut old) = (Vec::new(), Vec::new());
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io_err(&log_path))?;
            let Some(e) = parse_line(&line) else { continue };
            if e.taken_ns < cutoff && !keep(&e) {
                old.push(e);
            } else {
                kept.push(e);
            }
        }
        if old.is_empty() {
            return Ok(0);
        }
        let tmp = self.dir.join(LOG_NEW);
        let mut text = String::new();
        for e in &kept {
            text.push_str(&serde_json::to_string(e).expect("entries always serialise"));
            text.push('\n');
        }
        // Durable before the rename: a log lost to a crash here would make
        // every object an orphan at the next open.
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
        let mut out = sys::open_in(self.dir_fd.as_fd(), OsStr::new(LOG_NEW), flags, 0o600).map_err(io_err(&tmp))?;
        out.write_all(text.as_bytes()).and_then(|()| out.sync_all()).map_err(io_err(&tmp))?;
        sys::rename_in(self.dir_fd.as_fd(), OsStr::new(LOG_NEW), OsStr::new(LOG))
            .and_then(|()| self.dir_fd.sync_all())
            .map_err(io_err(&log_path))?;
        let log = self.open_log(libc::O_WRONLY | libc::O_APPEND)?;
        if let (Some(s), Ok(synced)) = (&self.syncer, log.try_clone()) {
            s.log_replaced(synced);
        }
        self.log = Some(log);
        for e in &old {
            for name in object_files(e) {
                let _ = sys::unlink_in(self.objects_fd.as_fd(), OsStr::new(&name));
            }
            self.active.remove(&(e.meta.dev, e.meta.ino));
        }
        let before = self.usage.bytes;
        self.entries.clear();
        self.by_path.clear();
        self.by_inode.clear();
        self.pins.clear();
        self.usage.bytes = 0;
        // The skips stay counted: they are what the status reports since the start.
        for user in self.users.values_mut() {
            user.bytes = 0;
        }
        for e in kept {
            self.index(e);
        }
        Ok(before.saturating_sub(self.usage.bytes))
    }

    /// Writes entry `e`'s content to `dest` (beside it, then renamed over),
    /// as [`Vault::restore_at`] does in `dest`'s directory. Only the last
    /// component of that directory is sure not to be a link: a caller
    /// restoring where others can write resolves the directory itself
    /// (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` from the
    /// protected root) and calls [`Vault::restore_at`].
    pub fn restore_to(&self, e: &Entry, dest: &Path) -> Result<String, VaultError> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = dest.file_name().ok_or_else(|| VaultError::NotRegular { path: dest.to_path_buf() })?;
        let dir_fd = sys::open_dir(dir).map_err(io_err(dir))?;
        self.restore_in(e, dir_fd.as_fd(), name, dest)
    }

    /// Writes entry `e`'s content as `name` in the directory `dir`, with its
    /// mode, owner, timestamps and extended attributes: into a new temp
    /// file beside it, renamed over `name` once durable. Everything happens
    /// through `dir` and the temp file's descriptor, so a directory swapped
    /// for a link cannot send root's writes elsewhere, and a link at `name`
    /// is replaced, not followed. Refuses a copy whose content no longer
    /// matches its hash (a pin's mismatch is only warned about). Returns the
    /// hash of what was written.
    pub fn restore_at(&self, e: &Entry, dir: BorrowedFd<'_>, name: &OsStr) -> Result<String, VaultError> {
        self.restore_in(e, dir, name, Path::new(name))
    }

    /// [`Vault::restore_at`], naming `shown` in errors and warnings.
    fn restore_in(&self, e: &Entry, dir: BorrowedFd<'_>, name: &OsStr, shown: &Path) -> Result<String, VaultError> {
        let object = self.object_path(e);
        // A file kept by range: the file as it is now, with the kept blocks laid back.
        let base_name = match e.kind {
            Kind::Ranges => format!("{}.inode", e.object),
            _ => e.object.clone(),
        };
        let base = self.dir.join(OBJECTS).join(&base_name);
        let src = self.open_object(&base_name)?;
        // A pinned inode may have changed since: its size now, not the entry's.
        let len = src.metadata().map_err(io_err(&base))?.len();
        let tmp_name = format!(".mamori-restore-{}-{}", std::process::id(), e.id);
        let tmp = shown.with_file_name(&tmp_name);
        let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
        let out = sys::open_in(dir, OsStr::new(&tmp_name), flags, 0o600).map_err(io_err(&tmp))?;
        let result = (|| {
            let mut hash = copy_into(&src, &out, len).map_err(io_err(&tmp))?;
            if e.kind == Kind::Ranges {
                let log = self.open_object(&e.object)?;
                ranges::overlay(&log, &out, e.meta.size).map_err(|err| match err.kind() {
                    io::ErrorKind::InvalidData => VaultError::HashMismatch { path: shown.to_path_buf() },
                    _ => io_err(&object)(err),
                })?;
                hash = hash_of(&out, e.meta.size).map_err(io_err(&tmp))?;
            }
            match (&e.hash, e.kind) {
                (Some(h), Kind::Copy) if *h != hash => {
                    return Err(VaultError::HashMismatch { path: shown.to_path_buf() });
                }
                // A pin holds the inode, not a frozen content: a change made
                // in place after the pin (say, the owner's own last edit) is
                // what there is to restore when no copy exists.
                (Some(h), Kind::Pin) if *h != hash => {
                    warn!(file = %shown.display(), id = e.id, "the pinned file was changed in place after its pin");
                }
                _ => {}
            }
            let m = &e.meta;
            std::os::unix::fs::fchown(&out, Some(m.uid), Some(m.gid)).map_err(io_err(&tmp))?;
            out.set_permissions(std::fs::Permissions::from_mode(m.mode & 0o7777)).map_err(io_err(&tmp))?;
            for (name, value) in &m.xattrs {
                if let Err(err) = sys::set_xattr(&out, name, value) {
                    warn!(file = %shown.display(), name, "cannot restore an extended attribute: {err}");
                }
            }
            sys::set_times(&out, m.atime_ns, m.mtime_ns).map_err(io_err(&tmp))?;
            out.sync_all().map_err(io_err(&tmp))?;
            sys::rename_in(dir, OsStr::new(&tmp_name), name).map_err(io_err(shown))?;
            Ok(hash)
        })();
        if result.is_err() {
            let _ = sys::unlink_in(dir, OsStr::new(&tmp_name));
        }
        result
    }
}

/// Objects without a log line: copies cut short by a crash (temp names
/// included). They were never promised to anyone.
/// Objects with no log at all are not orphans of a torn write: the log
/// was lost. They may be all that is left of someone's files, so they
/// are moved aside (never deleted) for a person to look at.
fn set_aside_unindexed(dir: &Path, dir_fd: &File) -> Result<(), VaultError> {
    let objects = dir.join(OBJECTS);
    let has_log = sys::lstat_in(dir_fd.as_fd(), OsStr::new(LOG)).is_ok();
    if has_log || std::fs::read_dir(&objects).map_err(io_err(&objects))?.next().is_none() {
        return Ok(());
    }
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let aside = dir.join(format!("objects.unindexed-{stamp}"));
    std::fs::rename(&objects, &aside).map_err(io_err(&aside))?;
    std::fs::DirBuilder::new().mode(0o700).create(&objects).map_err(io_err(&objects))?;
    warn!(kept = %aside.display(), "the vault's entry log is missing: its objects were moved aside, not deleted");
    Ok(())
}

/// The names under `objects/` that entry `e` owns.
fn object_files(e: &Entry) -> Vec<String> {
    match e.kind {
        Kind::Ranges => vec![e.object.clone(), format!("{}.inode", e.object)],
        _ => vec![e.object.clone()],
    }
}

fn path_key(path: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

fn meta_of(file: &File, path: &str, with_xattrs: bool) -> Option<Meta> {
    let m = file.metadata().ok()?;
    if !m.is_file() {
        return None;
    }
    Some(Meta {
        path: path.to_owned(),
        dev: m.dev(),
        ino: m.ino(),
        size: m.len(),
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        atime_ns: m.atime() as i128 * 1_000_000_000 + m.atime_nsec() as i128,
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        xattrs: if with_xattrs { sys::xattrs(file) } else { Vec::new() },
    })
}

/// All of a file as its opener's wait let the caller read it, and its BLAKE3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Content<'a> {
    pub bytes: &'a [u8],
    pub blake3: &'a [u8; 32],
}

/// How [`copy_object`] writes an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copying<'a> {
    /// A reflink where the filesystem can (`reflink`: it may), else the
    /// bytes: those `read` already where given, hashed by whoever read
    /// them, else read (and hashed) here.
    Bytes { reflink: bool, read: Option<Content<'a>> },
    /// A reflink or nothing (an error); unhashed.
    Reflink,
    /// `copy_file_range`, which clones where FICLONE refused to cross
    /// mounts (see [`mounts`]); unhashed unless the bytes came through here.
    InKernel,
}

/// Writes `file`'s content into the new object `out`, as `how` says.
/// Returns the content's hash, if it was read. `len` as in [`stream`].
fn copy_object(file: &File, len: u64, out: &File, how: Copying) -> io::Result<Option<String>> {
    let hash = match how {
        Copying::Bytes { reflink, read } => {
            let cloned = reflink && sys::reflink(file, out).is_ok();
            match read {
                // Read while its opener waits: only a writer that opened it
                // before (and was kept for then) could change it meanwhile,
                // and a clone that differs from the hash fails its
                // restore's check rather than passing for what was judged.
                Some(read) => {
                    if !cloned {
                        out.write_all_at(read.bytes, 0)?;
                    }
                    Some(blake3::Hash::from_bytes(*read.blake3).to_hex().to_string())
                }
                None if cloned => Some(hash_of(out, len)?),
                None => Some(copy_into(file, out, len)?),
            }
        }
        Copying::InKernel => mounts::copy_in_kernel(file, out, len)?,
        Copying::Reflink => {
            sys::reflink(file, out)?;
            None
        }
    };
    Ok(hash)
}

/// `staging/`, made if missing: `None` where it cannot be opened as a
/// folder of the vault's own (copies then take a temp name in `objects/`).
fn open_staging(dir: &File) -> Option<File> {
    match sys::mkdir_in(dir.as_fd(), OsStr::new(STAGING), 0o700) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return None,
        _ => {}
    }
    let staging = sys::open_in(dir.as_fd(), OsStr::new(STAGING), libc::O_RDONLY | libc::O_DIRECTORY, 0).ok()?;
    // The vault is root's and private (checked): so must be what is in it.
    let m = staging.metadata().ok()?;
    (m.uid() == 0 && m.mode() & 0o077 == 0).then_some(staging)
}

/// A copy being written, not yet under its name in `objects/`.
///
/// Nameless in `staging/` where the filesystem allows: the vault's
/// folders are guarded, so each open there waits for the door's thread (see
/// the sensor's `lock`), and a copy made there would cost that round trip
/// and a rename; `staging/` carries no marks and a nameless file cannot be
/// opened by anyone. Else under a temp name in `objects/`, renamed.
struct Staged {
    file: File,
    temp: Option<OsString>,
}

impl Staged {
    /// Gives the whole copy its name `name` in `objects`; the copy back.
    fn publish(self, objects: &File, name: &OsStr) -> io::Result<File> {
        match &self.temp {
            None => sys::link_in(self.file.as_fd(), objects.as_fd(), name),
            Some(temp) => sys::rename_in(objects.as_fd(), temp, name).inspect_err(|_| {
                let _ = sys::unlink_in(objects.as_fd(), temp);
            }),
        }
        .map(|()| self.file)
    }

    fn discard(self, objects: &File) {
        if let Some(temp) = &self.temp {
            let _ = sys::unlink_in(objects.as_fd(), temp);
        }
    }
}

/// Copies all of `src` (by offset: the caller's file position is left
/// alone) into `dst`, hashing as it goes.
fn copy_into(src: &File, dst: &File, len: u64) -> io::Result<String> {
    stream(src, Some(dst), len)
}

/// The BLAKE3 (hex) of `file`'s content, read by offset like [`copy_into`].
fn hash_of(file: &File, len: u64) -> io::Result<String> {
    stream(file, None, len)
}

/// The hash a copy of the file at `path` would be recorded with: tells
/// whether a file already holds an entry's content. Follows links and waits
/// on a FIFO: where others can write, use [`content_hash_at`].
pub fn content_hash(path: &Path) -> io::Result<String> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    hash_of(&file, len)
}

/// [`content_hash`] of `name` in the directory `dir`, for a destination
/// others can write: a link is not followed and anything but a regular file
/// (a FIFO would block the open or the read for good) is
/// [`VaultError::NotRegular`]. Reading leaves the access time alone where
/// the filesystem allows.
pub fn content_hash_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<String, VaultError> {
    let path = Path::new(name);
    let flags = libc::O_RDONLY | libc::O_NONBLOCK;
    let file = match sys::open_in(dir, name, flags | libc::O_NOATIME, 0) {
        // Not every filesystem lets even root keep the access time.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => sys::open_in(dir, name, flags, 0),
        other => other,
    };
    let file = match file {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(VaultError::NotRegular { path: path.into() }),
        Err(e) => return Err(io_err(path)(e)),
    };
    let m = file.metadata().map_err(io_err(path))?;
    if !m.is_file() {
        return Err(VaultError::NotRegular { path: path.into() });
    }
    hash_of(&file, m.len()).map_err(io_err(path))
}

/// Reads `src` to its end, hashing it and copying it to `dst` (a new,
/// empty file) if given. `len` is its size as the caller last saw it (read
/// at the open it is kept for, no second `fstat`): it only sizes the buffer.
fn stream(src: &File, dst: Option<&File>, len: u64) -> io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    // Sized to the file: clearing a 1 MiB buffer for each small file pinned
    // took a seventh of the agent's time for a program reading many files.
    let mut buf = vec![0u8; usize::try_from(len.saturating_add(1)).unwrap_or(usize::MAX).clamp(4096, 1 << 20)];
    let mut off = 0u64;
    loop {
        let n = src.read_at(&mut buf, off)?;
        if n == 0 {
            break;
        }
        if let Some(dst) = dst {
            dst.write_all_at(&buf[..n], off)?;
        }
        hasher.update(&buf[..n]);
        off += n as u64;
        // Short, at the size seen at the open: the end (a small file is
        // read with one call, not two). Short elsewhere, as a network
        // filesystem may be, it is read on.
        if n < buf.len() && off == len {
            break;
        }
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// One log line, or None for a torn or garbled one.
/// A line naming an object the vault never writes (anything but a decimal
/// id) is dropped: the name is joined to `objects/` and read, or removed, as root.
/// So is an id the vault never reaches (it counts up from 1, one per entry):
/// the next id is one past the highest read, and must not overflow.
fn parse_line(line: &str) -> Option<Entry> {
    let mut e = serde_json::from_str::<Entry>(line).ok()?;
    if e.id > MAX_ID {
        warn!(id = e.id, "vault log line with an id the vault never writes: dropped");
        return None;
    }
    if e.object.is_empty() {
        e.object = e.id.to_string();
    }
    if e.object.len() > 20 || !e.object.bytes().all(|b| b.is_ascii_digit()) {
        warn!(id = e.id, object = %e.object, "vault log line naming an object the vault never writes: dropped");
        return None;
    }
    Some(e)
}
