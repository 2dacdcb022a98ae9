//! The queue on disk: every event is written here before any output is
//! tried, and each output keeps a cursor (the last event it took). An
//! output that is down keeps its place; once back it gets what it missed,
//! in order, each event once. Several processes share one queue (the agent,
//! and `mamori restore` telling that it finished): appends and each output's
//! deliveries are serialised by `flock`.
//!
//! ```text
//! DIR/next            the next event's number
//! DIR/lock            held while appending
//! DIR/queue/N.json    one event (written aside, then renamed into place)
//! DIR/sent/NAME       the last number NAME took
//! DIR/sent/NAME.lock  held while NAME delivers
//! ```
//!
//! The directory is the agent's state directory's, root's alone: nothing
//! here was written by anyone but mamori.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::{Alert, AlertError};

/// Largest event file read back; mamori's own events are far smaller.
const MAX_EVENT_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    max_events: u64,
}

/// A lock held until dropped (closing the file releases it).
struct Flock {
    _file: File,
}

impl Flock {
    fn take(path: &Path) -> Result<Flock, AlertError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| queue_err(path, e))?;
        loop {
            // SAFETY: flock on an fd we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Flock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(queue_err(path, err));
            }
        }
    }
}

fn queue_err(path: &Path, source: std::io::Error) -> AlertError {
    AlertError::Queue { path: path.to_owned(), source }
}

impl Spool {
    /// Opens (making it if needed) the queue in `dir`, keeping at most
    /// `max_events` events.
    pub fn open(dir: &Path, max_events: u64) -> Result<Spool, AlertError> {
        for d in [dir.to_path_buf(), dir.join("queue"), dir.join("sent")] {
            match std::fs::DirBuilder::new().mode(0o700).create(&d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(queue_err(&d, e)),
            }
        }
        Ok(Spool { dir: dir.to_owned(), max_events: max_events.max(1) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes an event to the queue and returns its number.
    pub fn append(&self, alert: &Alert) -> Result<u64, AlertError> {
        let _lock = Flock::take(&self.dir.join("lock"))?;
        let seq = self.next()?;
        let body = serde_json::to_vec(alert).expect("an alert always serialises");
        let path = self.event_path(seq);
        let tmp = self.dir.join("queue").join(format!(".{seq}.tmp"));
        write_synced(&tmp, &body)?;
        std::fs::rename(&tmp, &path).map_err(|e| queue_err(&path, e))?;
        write_synced(&self.dir.join(".next.tmp"), (seq + 1).to_string().as_bytes())?;
        std::fs::rename(self.dir.join(".next.tmp"), self.dir.join("next")).map_err(|e| queue_err(&self.dir, e))?;
        sync_dir(&self.dir.join("queue"))?;
        self.trim()?;
        Ok(seq)
    }

    /// The number the next event will get.
    fn next(&self) -> Result<u64, AlertError> {
        let path = self.dir.join("next");
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|_| AlertError::QueueCorrupt {
                path: path.clone(),
                problem: format!("not a number: {text:?}; remove it and the queue starts again"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(self.numbers()?.last().map_or(1, |n| n + 1)),
            Err(e) => Err(queue_err(&path, e)),
        }
    }

    /// Every queued event's number, ascending.
    fn numbers(&self) -> Result<Vec<u64>, AlertError> {
        let dir = self.dir.join("queue");
        let mut numbers: Vec<u64> = std::fs::read_dir(&dir)
            .map_err(|e| queue_err(&dir, e))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".json")?.parse().ok())
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    fn event_path(&self, seq: u64) -> PathBuf {
        self.dir.join("queue").join(format!("{seq:020}.json"))
    }

    /// The last event `output` took; an output never seen before starts
    /// after the newest event, so adding one does not replay history.
    pub fn cursor(&self, output: &str) -> Result<u64, AlertError> {
        let _lock = self.delivering(output)?;
        self.cursor_locked(output)
    }

    /// Held while `output` delivers or its cursor is first set: a second
    /// process then waits, and reads the cursor the first one moved.
    fn delivering(&self, output: &str) -> Result<Flock, AlertError> {
        Flock::take(&self.dir.join("sent").join(format!("{output}.lock")))
    }

    /// [`Spool::cursor`], with `output`'s lock held by the caller.
    fn cursor_locked(&self, output: &str) -> Result<u64, AlertError> {
        if let Some(seq) = self.cursor_no_init(output)? {
            return Ok(seq);
        }
        let _lock = Flock::take(&self.dir.join("lock"))?;
        let last = self.next()?.saturating_sub(1);
        self.set_cursor(output, last)?;
        Ok(last)
    }

    fn set_cursor(&self, output: &str, seq: u64) -> Result<(), AlertError> {
        let path = self.dir.join("sent").join(output);
        let tmp = self.dir.join("sent").join(format!(".{output}.tmp"));
        write_synced(&tmp, seq.to_string().as_bytes())?;
        std::fs::rename(&tmp, &path).map_err(|e| queue_err(&path, e))
    }

    /// Sends `output` every event after its cursor, in order, moving the
    /// cursor past each one taken. Stops at the first failure (order over
    /// progress) and returns it; `Ok(n)` is how many were sent.
    pub fn deliver(&self, output: &mut dyn crate::Output) -> Result<usize, AlertError> {
        let name = output.name();
        let _lock = self.delivering(name)?;
        let cursor = self.cursor_locked(name)?;
        let mut sent = 0;
        for seq in self.numbers()?.into_iter().filter(|&n| n > cursor) {
            let Some(alert) = self.read(seq)? else { continue };
            output.send(&alert)?;
            self.set_cursor(name, seq)?;
            sent += 1;
        }
        if sent > 0 {
            self.prune()?;
        }
        Ok(sent)
    }

    /// Whether `output` has events waiting.
    pub fn pending(&self, output: &str) -> Result<bool, AlertError> {
        let cursor = self.cursor(output)?;
        Ok(self.numbers()?.last().is_some_and(|&n| n > cursor))
    }

    /// One event; `None` if it was trimmed away meanwhile.
    fn read(&self, seq: u64) -> Result<Option<Alert>, AlertError> {
        use std::io::Read;
        let path = self.event_path(seq);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(queue_err(&path, e)),
        };
        let mut body = Vec::new();
        file.take(MAX_EVENT_BYTES).read_to_end(&mut body).map_err(|e| queue_err(&path, e))?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| AlertError::QueueCorrupt { path, problem: format!("{e}; remove the file to go on") })
    }

    /// Removes the events every output with a cursor has taken. Any
    /// process may: a command telling through fewer outputs than the agent
    /// still leaves what the agent's others have not taken.
    fn prune(&self) -> Result<(), AlertError> {
        let _lock = Flock::take(&self.dir.join("lock"))?;
        let mut low = u64::MAX;
        for name in self.cursor_names()? {
            low = low.min(self.cursor_no_init(&name)?.unwrap_or(0));
        }
        for seq in self.numbers()?.into_iter().take_while(|&n| n <= low) {
            remove(&self.event_path(seq))?;
        }
        Ok(())
    }

    /// Forgets the outputs not in `keep` (no longer configured), so the
    /// events they never took do not stay queued for them. Only the agent,
    /// whose config is the one in force, calls this.
    pub fn forget_others(&self, keep: &[&str]) -> Result<(), AlertError> {
        for name in self.cursor_names()?.into_iter().filter(|n| !keep.contains(&n.as_str())) {
            remove(&self.dir.join("sent").join(&name))?;
        }
        Ok(())
    }

    fn cursor_names(&self) -> Result<Vec<String>, AlertError> {
        let dir = self.dir.join("sent");
        Ok(std::fs::read_dir(&dir)
            .map_err(|e| queue_err(&dir, e))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.') && !n.ends_with(".lock"))
            .collect())
    }

    fn cursor_no_init(&self, output: &str) -> Result<Option<u64>, AlertError> {
        let path = self.dir.join("sent").join(output);
        match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map(Some).map_err(|_| AlertError::QueueCorrupt {
                path: path.clone(),
                problem: format!("not a number: {text:?}; remove it to start this output at the newest event"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(queue_err(&path, e)),
        }
    }

    /// Bounds the queue: an output down for weeks must not fill the disk.
    fn trim(&self) -> Result<(), AlertError> {
        let numbers = self.numbers()?;
        let excess = numbers.len().saturating_sub(self.max_events as usize);
        for &seq in &numbers[..excess] {
            remove(&self.event_path(seq))?;
        }
        Ok(())
    }
}

fn remove(path: &Path) -> Result<(), AlertError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(queue_err(path, e)),
    }
}

fn write_synced(path: &Path, body: &[u8]) -> Result<(), AlertError> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| queue_err(path, e))?;
    file.write_all(body).and_then(|()| file.sync_data()).map_err(|e| queue_err(path, e))
}

fn sync_dir(dir: &Path) -> Result<(), AlertError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| queue_err(dir, e))
}
