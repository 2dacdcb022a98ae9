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
        // Past every event queued and every event an output took: a number
        // at or below a cursor would never be sent.
        let after_last = || -> Result<u64, AlertError> {
            let queued = self.numbers()?.last().copied().unwrap_or(0);
            let taken = self.cursor_names()?.iter().filter_map(|n| self.cursor_no_init(n).ok().flatten()).max();
            Ok(queued.max(taken.unwrap_or(0)) + 1)
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => match text.trim().parse() {
                Ok(n) => Ok(n),
                Err(_) => {
                    tracing::error!("{}: not a number: {text:?}; numbering on after the newest event", path.display());
                    after_last()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => after_last(),
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

    /// [`Spool::cursor`], with `output`'s lock held by the caller. A
    /// damaged cursor starts the output again at the newest event.
    fn cursor_locked(&self, output: &str) -> Result<u64, AlertError> {
        match self.cursor_no_init(output) {
            Ok(Some(seq)) => return Ok(seq),
            Ok(None) => {}
            Err(e @ AlertError::QueueCorrupt { .. }) => tracing::error!(output, "{e}; starting at the newest event"),
            Err(e) => return Err(e),
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
            match self.read(seq) {
                Ok(Some(alert)) => output.send(&alert)?,
                Ok(None) => continue,
                // Only a damaged disk makes one (events are renamed into
                // place whole): skipped, or it would stop this output for good.
                Err(e @ AlertError::QueueCorrupt { .. }) => tracing::error!(output = name, "event skipped: {e}"),
                Err(e) => return Err(e),
            }
            self.set_cursor(name, seq)?;
            sent += 1;
        }
        if sent > 0 {
            if let Err(e) = self.prune() {
                tracing::warn!("{e}");
            }
        }
        Ok(sent)
    }

    /// Each output with a cursor, and how many queued events it has not
    /// taken yet (for `mamori status`). Reads only.
    pub fn backlog(&self) -> Result<Vec<(String, usize)>, AlertError> {
        let numbers = self.numbers()?;
        let mut all: Vec<(String, usize)> = self
            .cursor_names()?
            .into_iter()
            .map(|name| {
                let cursor = self.cursor_no_init(&name).ok().flatten().unwrap_or(0);
                let waiting = numbers.iter().filter(|&&n| n > cursor).count();
                (name, waiting)
            })
            .collect();
        all.sort();
        Ok(all)
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
        serde_json::from_slice(&body).map(Some).map_err(|e| AlertError::QueueCorrupt { path, problem: e.to_string() })
    }

    /// Removes the events every output with a cursor has taken. Any
    /// process may: a command telling through fewer outputs than the agent
    /// still leaves what the agent's others have not taken.
    fn prune(&self) -> Result<(), AlertError> {
        let _lock = Flock::take(&self.dir.join("lock"))?;
        let mut low = u64::MAX;
        for name in self.cursor_names()? {
            // A cursor that cannot be read keeps everything.
            low = low.min(self.cursor_no_init(&name).ok().flatten().unwrap_or(0));
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
                problem: format!("not a number: {text:?}"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Output, What};

    /// Records the ids it is sent.
    struct Kept(Vec<String>);

    impl Output for Kept {
        fn name(&self) -> &'static str {
            "kept"
        }
        fn send(&mut self, alert: &Alert) -> Result<(), AlertError> {
            self.0.push(alert.id.clone());
            Ok(())
        }
        fn target(&self) -> String {
            String::new()
        }
        fn probe(&mut self) -> Result<String, AlertError> {
            Ok(String::new())
        }
    }

    fn queued(spool: &Spool, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let a = Alert::new(What::Test);
                spool.append(&a).unwrap();
                a.id
            })
            .collect()
    }

    #[test]
    fn a_damaged_event_is_skipped_not_a_wall() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 100).unwrap();
        let mut out = Kept(Vec::new());
        spool.cursor("kept").unwrap();
        let ids = queued(&spool, 3);
        std::fs::write(spool.event_path(2), b"{\"id\": tru").unwrap();
        assert_eq!(spool.deliver(&mut out).unwrap(), 3);
        assert_eq!(out.0, [ids[0].clone(), ids[2].clone()]);
        assert!(!spool.pending("kept").unwrap());
    }

    #[test]
    fn damaged_numbers_never_hide_a_new_event() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 100).unwrap();
        let mut out = Kept(Vec::new());
        spool.cursor("kept").unwrap();
        queued(&spool, 3);
        spool.deliver(&mut out).unwrap();
        // Everything taken is pruned; then the counter is damaged.
        assert_eq!(spool.numbers().unwrap(), Vec::<u64>::new());
        std::fs::write(dir.path().join("next"), b"garbage").unwrap();
        let new = queued(&spool, 1);
        out.0.clear();
        spool.deliver(&mut out).unwrap();
        assert_eq!(out.0, new, "numbered at or below the cursor, it would never be sent");
        // A damaged cursor starts the output at the newest event.
        std::fs::write(dir.path().join("sent/kept"), b"x").unwrap();
        let newer = queued(&spool, 1);
        out.0.clear();
        spool.deliver(&mut out).unwrap();
        assert!(out.0.is_empty(), "{:?}", out.0);
        let newest = queued(&spool, 1);
        spool.deliver(&mut out).unwrap();
        assert_eq!(out.0, newest, "{newer:?}");
    }
}
