//! The Linux sensor: watches the protected directory trees with fanotify,
//! attributes every event to a process, computes content facts at the edge
//! and hands [`Event`]s to a [`Handler`] that also decides permission events.
//!
//! Three fanotify groups are needed: the kernel refuses a group that is both
//! content-class and FID-reporting, and the vault's opens must be answered
//! by a thread that never waits for the sensor's (see `lock`):
//! - a pre-content group (`FAN_OPEN_PERM`, `FAN_CLOSE_WRITE`, and
//!   `FAN_PRE_ACCESS` on the large files the handler asks for) whose events
//!   carry an fd, so the sensor reads the file's content before a writer
//!   touches it (or a range of it) and after it closes it;
//! - a FID group (`FAN_CREATE`, `FAN_DELETE`, `FAN_RENAME`) whose events name
//!   a directory by file handle plus an entry name;
//! - a content group for the vault alone (`FAN_OPEN_PERM`): only mamori gets in.
//!
//! Where the kernel lets BPF LSM programs attach, the vault's deletes and
//! renames are refused as well ([`mamori_guard`]).
//!
//! Both use inode marks on every protected directory, so I/O elsewhere on the
//! machine costs nothing. Events from mamori's own process, and from the
//! processes the agent admitted to [`Trusted`], are answered `Allow` and
//! never reported.
//!
//! Ordering: each group's events arrive in order, but the two queues are
//! separate. Each round reads the FID group first, then the content group: an
//! opener blocked in a permission event has its earlier creates and renames
//! reported first; a close-after-write and a rename both pending at the
//! same time come out rename first.
//!
//! The handler runs on the sensor thread. It must not open files under a
//! protected root from that thread: the open would wait on the very thread
//! that has to answer it.

mod closes;
mod error;
mod fanotify;
mod handles;
mod known;
mod lock;
mod openmode;
mod procs;
mod ready;
mod records;
mod scope;
mod sensor;
mod trusted;
mod wake;
mod watch;

use std::path::PathBuf;

pub use error::SensorError;
pub use mamori_event::Event;
pub use sensor::Sensor;
pub use trusted::{pidfd_open, Admitted, Trusted};
// What the sensor marks every protected directory with, for a tool that
// must take the same events (the overhead bench's answer-only listener).
pub use sensor::{FAN_PRE_ACCESS, FID_GROUP, PERM_EVENT_FD, PERM_GROUP};
pub use watch::{FID_MASK, PERM_MASK};

/// Whether the kernel lets the vault lock attach, for `mamori check`: a
/// guard is started on `dir` (an empty directory of the caller's) as the
/// sensor starts one on the vaults, and dropped at once.
pub fn probe_vault_lock(dir: &std::path::Path) -> Result<(), mamori_guard::GuardError> {
    let allow = mamori_guard::Allow { pid: std::process::id(), exe: None };
    mamori_guard::Guard::start(&[dir.to_path_buf()], allow).map(drop)
}

#[derive(Debug, Clone, Default)]
pub struct SensorConfig {
    /// Directory trees to watch.
    pub protect: Vec<PathBuf>,
    /// Subtrees never reported, e.g. mamori's own state directory.
    pub exclude: Vec<PathBuf>,
    /// Directories only mamori may use (its vaults): any open, create,
    /// delete or rename there by another process is reported as
    /// [`EventKind::Guarded`](mamori_event::EventKind::Guarded), so the agent
    /// can stop it, and opens (of the directories and of what is in them)
    /// are refused. Deletes and renames cannot be refused through fanotify.
    /// Processes admitted to [`Sensor::trusted`] (`mamori restore`) are let
    /// through.
    pub guard: Vec<PathBuf>,
    /// Folders inside a guarded one left without marks: the vaults'
    /// staging folders, where the agent writes its copies as nameless files
    /// (`O_TMPFILE`) that nobody can open, so the door would only cost the
    /// agent a round trip per copy. The folder itself being renamed or
    /// deleted is still seen, in its guarded parent.
    pub unmarked: Vec<PathBuf>,
}

/// The answer to a permission event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    /// Allow the open, and from now on call [`Handler::before_write`] before
    /// each write to this file (a pre-content mark on its inode): for large
    /// files kept by range.
    AllowWatchWrites,
}

/// The file of an open, as the sensor found it while its opener waits.
#[derive(Debug, Clone, Copy)]
pub struct Opened<'a> {
    /// The kernel's own read-only descriptor of the file: reading it makes
    /// no events.
    pub file: &'a std::fs::File,
    /// Its metadata, read once by the sensor for the open (every system
    /// call here is paid by the opener).
    pub meta: &'a std::fs::Metadata,
    /// All of its bytes, when the sensor read them whole for the facts of a
    /// file about to change: a copy is written from them, not read again.
    pub whole: Option<&'a mamori_content::Whole>,
}

pub trait Handler {
    /// Every event, in arrival order. For a permission (open) event the return
    /// value is the answer; ignored otherwise, and for two opens by a
    /// process not [`Handler::is_suspect`], allowed before the handler sees
    /// them: an empty file's (its writes unwatched), handed over without its
    /// file, as there is nothing in it to keep and by then its opener may be
    /// writing; and a read of a file whose writes are not watched (see
    /// [`Handler::watches_writes`]), handed over with its file, which a
    /// read leaves as it was.
    /// `opened` is the file of any other open (`None` for other events):
    /// while the open waits for its answer nothing has been written yet, so
    /// this is the moment to keep a copy. Never open protected files by path
    /// here: that open would wait for this very thread to answer it.
    fn event(&mut self, ev: &Event, opened: Option<Opened<'_>>) -> Decision;
    /// A write of `len` bytes at `offset` (`len == 0`: to the end) is about
    /// to reach a file an earlier [`Decision::AllowWatchWrites`] asked for;
    /// the writer waits until this returns. `file` is as in [`Opened`].
    /// `reading()` tells whether the access is in fact a read (it looks at
    /// the accessor's system call: ask only when it matters). Returns
    /// whether to go on watching the file's accesses.
    fn before_write(
        &mut self,
        _file: &std::fs::File,
        _offset: u64,
        _len: u64,
        _reading: &mut dyn FnMut() -> bool,
    ) -> bool {
        false
    }
    /// Whether the writes to this inode are watched: a file an earlier
    /// [`Decision::AllowWatchWrites`] asked for and still keeps. A read of
    /// any other file may be let go before the handler sees it (its
    /// accesses unwatched first, which would silence the writes of this
    /// one). A handler that answers `AllowWatchWrites` must say so here.
    fn watches_writes(&self, _dev: u64, _ino: u64) -> bool {
        false
    }
    /// Whether an open of this file to read is reported with its content
    /// facts. A handler that keeps the file so that its facts can be read
    /// when its name goes (`EventKind::Delete::before`,
    /// `EventKind::Rename::replaced`) may spare them: a backup or an indexer
    /// reads everything and deletes nothing.
    fn facts_at_read(&self, _proc: Option<mamori_event::ProcKey>, _meta: &std::fs::Metadata) -> bool {
        true
    }
    /// Whether the handler already holds evidence against this process:
    /// its next open then waits until its earlier closes are weighed.
    fn is_suspect(&self, _proc: mamori_event::ProcKey) -> bool {
        false
    }
    /// Whether the files this process creates are to be weighed (their
    /// content facts read) when closed. When not, their closes are not
    /// reported: the creates still are.
    fn weighs_new_files(&self, _proc: mamori_event::ProcKey) -> bool {
        true
    }
    /// Called about every 200 ms and after each batch, on the sensor thread.
    fn tick(&mut self) {}
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events handed to the handler (process introductions included).
    pub events: u64,
    /// Permission events answered, reported or not.
    pub perm_events: u64,
    pub overflows: u64,
    pub dirs_marked: u64,
    /// File events whose process was gone before it could be identified.
    pub unattributed: u64,
}
