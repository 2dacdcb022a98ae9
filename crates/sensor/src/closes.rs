//! Content facts of closed files, computed on a thread of their own.
//!
//! The thread that answers permission events must not spend its time
//! hashing: a program writing many files would wait at each open for the
//! facts of the file it closed before. Closes are handed to a worker and
//! come back, facts computed, in the order they were handed over; a wake-up
//! fd tells the sensor's poll that results are waiting. Only the light facts
//! of a new file (12 KiB read at most) are computed by the sensor itself,
//! when nothing is ahead of them here: cheaper than two hand-offs.
//!
//! Some opens still wait for the closes before them: an open of the same
//! file (so the engine sees the close before the reopen), an open that is
//! about to change an existing file, and any open by a process the handler
//! already suspects (so detection keeps pace with an attack). A program
//! creating new files never waits.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::RawFd;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use mamori_content::Depth;
use mamori_event::{ContentFacts, ProcKey};

use crate::wake::Wake;

/// A closed file on its way through the worker.
pub(crate) struct Closed {
    pub file: File,
    pub inode: Option<(u64, u64)>,
    pub path: String,
    pub proc: Option<ProcKey>,
    pub time_ns: u64,
    /// Light for files that were empty when opened (new files): nothing
    /// before them to compare block by block, and most bulk writing is that.
    pub depth: Depth,
    /// Filled in by the worker; `None` when the file is not a regular file or unreadable.
    pub facts: Option<ContentFacts>,
}

pub(crate) struct Closes {
    tx: Option<Sender<Closed>>,
    rx: Receiver<Closed>,
    wake: Arc<Wake>,
    pending: usize,
    by_inode: HashMap<(u64, u64), usize>,
    worker: Option<JoinHandle<()>>,
}

impl Closes {
    pub fn new() -> io::Result<Closes> {
        let wake = Arc::new(Wake::new()?);
        let (tx, jobs) = mpsc::channel::<Closed>();
        let (done, rx) = mpsc::channel::<Closed>();
        let worker_wake = wake.clone();
        let worker = std::thread::Builder::new().name("close-facts".into()).spawn(move || {
            for mut c in jobs {
                c.facts = crate::sensor::facts(&c.file, c.depth, true);
                if done.send(c).is_err() {
                    return;
                }
                worker_wake.notify();
            }
        })?;
        Ok(Closes { tx: Some(tx), rx, wake, pending: 0, by_inode: HashMap::new(), worker: Some(worker) })
    }

    /// Readable when results are waiting.
    pub fn wake_fd(&self) -> RawFd {
        self.wake.raw()
    }

    pub fn submit(&mut self, c: Closed) {
        self.pending += 1;
        if let Some(ino) = c.inode {
            *self.by_inode.entry(ino).or_default() += 1;
        }
        if let Some(tx) = &self.tx {
            // The worker only stops when `tx` is dropped.
            let _ = tx.send(c);
        }
    }

    pub fn any_pending(&self) -> bool {
        self.pending > 0
    }

    pub fn pending_for(&self, inode: Option<(u64, u64)>) -> bool {
        inode.is_some_and(|i| self.by_inode.contains_key(&i))
    }

    /// The next result: waiting for it when `block`, else only if ready.
    pub fn next(&mut self, block: bool) -> Option<Closed> {
        if self.pending == 0 {
            return None;
        }
        let c = if block { self.rx.recv().ok()? } else { self.rx.try_recv().ok()? };
        self.pending -= 1;
        if let Some(ino) = c.inode {
            if let Some(n) = self.by_inode.get_mut(&ino) {
                *n -= 1;
                if *n == 0 {
                    self.by_inode.remove(&ino);
                }
            }
        }
        Some(c)
    }

    /// Clears the wake-up counter (results are then taken with [`Closes::next`]).
    pub fn clear_wake(&self) {
        self.wake.clear();
    }
}

impl Drop for Closes {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}
