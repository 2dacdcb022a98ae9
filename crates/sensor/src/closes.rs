//! Content facts of closed files, computed on a thread of their own.
//!
//! The thread that answers permission events must not spend its time
//! hashing: a program writing many files would wait at each open for the
//! facts of the file it closed before. Closes are handed to a worker and
//! come back, facts computed, in the order they were handed over; a wake-up
//! fd tells the sensor's poll that results are waiting.
//!
//! The light facts of a new file (12 KiB read at most) are cheaper to
//! compute than two hand-offs between threads, so while nothing is in the
//! worker the sensor holds such closes and weighs them itself, one at a time
//! when it has nothing else to do. A program writing files one after another
//! opens the next right after closing the last: that open is answered first,
//! not after the close is weighed. Holding is bounded; past the bound, and
//! as soon as any close goes to the worker, the held ones go there first, so
//! closes still come back in order.
//!
//! Some opens still wait for the closes before them: an open of the same
//! file (so the engine sees the close before the reopen), an open that is
//! about to change an existing file, and any open by a process the handler
//! already suspects (so detection keeps pace with an attack). A program
//! creating new files never waits.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::fs::MetadataExt;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use mamori_content::Depth;
use mamori_event::{ContentFacts, ProcKey};

use crate::wake::Wake;

/// Closes held on the sensor's thread at most, before they go to the worker.
const HELD_MAX: usize = 64;
/// How long the sensor spins for a result before it sleeps.
const SPIN: std::time::Duration = std::time::Duration::from_micros(200);

/// A closed file on its way through the worker.
pub(crate) struct Closed {
    pub file: File,
    /// As read at the close: what it is, its size and its inode.
    pub meta: Option<Metadata>,
    pub path: String,
    pub proc: Option<ProcKey>,
    pub time_ns: u64,
    /// Light for files that were empty when opened (new files): nothing
    /// before them to compare block by block, and most bulk writing is that.
    pub depth: Depth,
    /// Filled in by the worker; `None` when the file is not a regular file or unreadable.
    pub facts: Option<ContentFacts>,
}

impl Closed {
    fn weigh(&mut self) {
        self.facts = self.meta.as_ref().and_then(|m| crate::sensor::facts_as(&self.file, m, self.depth, true));
    }

    fn inode(&self) -> Option<(u64, u64)> {
        self.meta.as_ref().map(|m| (m.dev(), m.ino()))
    }
}

pub(crate) struct Closes {
    tx: Option<Sender<Closed>>,
    rx: Receiver<Closed>,
    wake: Arc<Wake>,
    /// Handed to the worker and not yet taken back. While any are, none is
    /// held.
    in_flight: usize,
    held: VecDeque<Closed>,
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
                c.weigh();
                if done.send(c).is_err() {
                    return;
                }
                worker_wake.notify();
            }
        })?;
        Ok(Closes {
            tx: Some(tx),
            rx,
            wake,
            in_flight: 0,
            held: VecDeque::new(),
            by_inode: HashMap::new(),
            worker: Some(worker),
        })
    }

    /// Readable when results are waiting.
    pub fn wake_fd(&self) -> RawFd {
        self.wake.raw()
    }

    /// Hands `c` to the worker, after any held closes.
    pub fn submit(&mut self, c: Closed) {
        self.count(&c);
        while let Some(h) = self.held.pop_front() {
            self.send(h);
        }
        self.send(c);
    }

    /// Keeps a close whose facts are light for the sensor to weigh itself
    /// ([`Closes::next`]), unless the worker has closes ahead of it.
    pub fn hold(&mut self, c: Closed) {
        if self.in_flight > 0 || self.held.len() >= HELD_MAX {
            return self.submit(c);
        }
        self.count(&c);
        self.held.push_back(c);
    }

    fn count(&mut self, c: &Closed) {
        if let Some(ino) = c.inode() {
            *self.by_inode.entry(ino).or_default() += 1;
        }
    }

    fn send(&mut self, c: Closed) {
        self.in_flight += 1;
        if let Some(tx) = &self.tx {
            // The worker only stops when `tx` is dropped.
            let _ = tx.send(c);
        }
    }

    pub fn any_pending(&self) -> bool {
        self.in_flight > 0 || !self.held.is_empty()
    }

    /// Whether closes are held for the sensor to weigh.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    pub fn pending_for(&self, inode: Option<(u64, u64)>) -> bool {
        inode.is_some_and(|i| self.by_inode.contains_key(&i))
    }

    /// The next close, facts computed: from the worker (waiting for it when
    /// `block`, else only if ready), or else the first held one, weighed now.
    pub fn next(&mut self, block: bool) -> Option<Closed> {
        let c = if self.in_flight > 0 {
            let c = if block { self.wait_for_worker()? } else { self.rx.try_recv().ok()? };
            self.in_flight -= 1;
            c
        } else {
            let mut c = self.held.pop_front()?;
            c.weigh();
            c
        };
        if let Some(ino) = c.inode() {
            if let Some(n) = self.by_inode.get_mut(&ino) {
                *n -= 1;
                if *n == 0 {
                    self.by_inode.remove(&ino);
                }
            }
        }
        Some(c)
    }

    /// The worker's next result. A sensor that waits for one is waiting for
    /// facts a few tens of microseconds from done: going to sleep and being
    /// woken for them costs two wake-ups through the hypervisor, more than
    /// the wait itself, so it spins for a bounded while first.
    fn wait_for_worker(&self) -> Option<Closed> {
        let start = std::time::Instant::now();
        while start.elapsed() < SPIN {
            match self.rx.try_recv() {
                Ok(c) => return Some(c),
                Err(mpsc::TryRecvError::Disconnected) => return None,
                Err(mpsc::TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
        self.rx.recv().ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(dir: &std::path::Path, name: &str, depth: Depth) -> Closed {
        let path = dir.join(name);
        std::fs::write(&path, name.repeat(100)).unwrap();
        let file = File::open(&path).unwrap();
        let meta = file.metadata().ok();
        Closed { file, meta, path: name.to_owned(), proc: None, time_ns: 0, depth, facts: None }
    }

    #[test]
    fn held_and_worker_closes_come_back_in_order_weighed() {
        let dir = tempfile::tempdir().unwrap();
        let mut closes = Closes::new().unwrap();
        let a = closed(dir.path(), "a", Depth::Light);
        let a_inode = a.inode();
        closes.hold(a);
        closes.hold(closed(dir.path(), "b", Depth::Light));
        assert!(closes.holding() && closes.pending_for(a_inode));
        // A close for the worker sends the held ones ahead of it.
        closes.submit(closed(dir.path(), "c", Depth::Full));
        assert!(!closes.holding() && closes.any_pending());
        // Held while the worker has closes: to the worker, behind them.
        closes.hold(closed(dir.path(), "d", Depth::Light));
        assert!(!closes.holding());
        let order: Vec<(String, bool)> =
            std::iter::from_fn(|| closes.next(true)).map(|c| (c.path, c.facts.is_some())).collect();
        let want: Vec<(String, bool)> = ["a", "b", "c", "d"].iter().map(|n| (n.to_string(), true)).collect();
        assert_eq!(order, want);
        assert!(!closes.any_pending() && !closes.pending_for(a_inode));
        // With the worker idle, a held close is weighed on the spot.
        closes.hold(closed(dir.path(), "e", Depth::Light));
        let e = closes.next(false).unwrap();
        assert_eq!((e.path.as_str(), e.facts.is_some()), ("e", true));
    }
}
