//! Making what the vault wrote durable, off the writer's path.
//!
//! A copy is taken while its opener waits; an fsync of the copy, of the
//! folder it was named in and of the log line cost three journal commits
//! (about 10 ms a file on this kind of machine), which made rewriting small
//! files eight times slower. Instead a thread of the vault's own makes what
//! was written since its last round durable, within an [`EVERY`]: the
//! data of each copy (written out together, then waited for), then the log
//! and the objects' folder, whose sync commits every name and line with
//! one journal commit. A power cut can lose the copies of the last second,
//! as it can lose the writes that followed them, and a crash never leaves
//! an entry whose object is not whole (a copy's object is checked against
//! the size its line records when the vault is opened).
//!
//! Only the vault's own files: `syncfs` would also write out every user's
//! dirty data on the filesystem each second, which under a program writing
//! many files made its rewrites several times slower than the writes
//! themselves. It is the fallback only when the thread falls behind (more
//! copies waiting than are kept open for it, [`MAX_PENDING`]) or a round
//! failed; a burst of copies starts a round early instead ([`ROUND_FULL`]).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a kept before-image stays in the page cache only.
pub const EVERY: Duration = Duration::from_secs(1);
/// Copies that start a round at once, without waiting for the second to
/// end: each is kept open until its round (held files share the open-file
/// limit with them).
const ROUND_FULL: usize = 256;
/// The most copies kept open for a round: past it (the thread is behind)
/// their descriptors are closed and the round syncs the whole filesystem.
const MAX_PENDING: usize = 4 * ROUND_FULL;

/// What the next round has to make durable.
#[derive(Default)]
struct Pending {
    /// Copies whose data must reach the disk.
    copies: Vec<File>,
    /// A line was appended or a name made.
    written: bool,
    /// The whole filesystem, as something was left out of `copies`.
    everything: bool,
    /// The log, when it was replaced (compacted) since the last round.
    log: Option<File>,
}

#[derive(Default)]
struct State {
    next: Pending,
    /// The vault is closing: the next round is the last.
    closing: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Rung when a round is full, and when the vault closes.
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for the next round (a second, a full round, or the vault
    /// closing) and takes what it has to do; true for the last round.
    fn next_round(&self) -> (Pending, bool) {
        let deadline = Instant::now() + EVERY;
        let mut state = self.lock();
        while !state.closing && state.next.copies.len() < ROUND_FULL {
            let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else { break };
            state = self.wake.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        (std::mem::take(&mut state.next), state.closing)
    }
}

pub(crate) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts syncing what is written into `objects` (the objects' folder,
    /// which the thread keeps open) and `log` (a descriptor of the log).
    pub fn start(objects: File, log: File) -> std::io::Result<Syncer> {
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        let thread = std::thread::Builder::new().name("vault-sync".into()).spawn(move || {
            let mut log = log;
            loop {
                let (mut round, last) = theirs.next_round();
                if let Some(new) = round.log.take() {
                    log = new;
                }
                if let Err(e) = sync(&objects, &log, round) {
                    tracing::warn!("VAULT: making the vault's writes durable failed: {e}");
                    theirs.lock().next.everything = true;
                }
                if last {
                    return;
                }
            }
        })?;
        Ok(Syncer { shared, thread: Some(thread) })
    }

    /// A line was appended to the log, or a name made in `objects/`.
    pub fn written(&self) {
        self.shared.lock().next.written = true;
    }

    /// A copy was written (and named) whose data must reach the disk.
    pub fn copied(&self, copy: File) {
        let mut state = self.shared.lock();
        let p = &mut state.next;
        p.written = true;
        if p.copies.len() < MAX_PENDING {
            p.copies.push(copy);
        } else {
            p.everything = true;
        }
        if p.copies.len() >= ROUND_FULL {
            self.shared.wake.notify_one();
        }
    }

    /// The log was replaced: later lines go to `log`.
    pub fn log_replaced(&self, log: File) {
        self.shared.lock().next.log = Some(log);
    }
}

/// One round: the copies' data written out together and waited for, then
/// the log's lines and the folder's names (one journal commit covers them
/// and every block the copies took).
fn sync(objects: &File, log: &File, round: Pending) -> std::io::Result<()> {
    if round.everything {
        // SAFETY: syncfs takes a descriptor we own for the thread's life.
        return check(unsafe { libc::syncfs(objects.as_raw_fd()) });
    }
    if !round.written {
        return Ok(());
    }
    let copies = &round.copies;
    for (flags, copy) in
        [libc::SYNC_FILE_RANGE_WRITE, WAIT_ALL].into_iter().flat_map(|f| copies.iter().map(move |c| (f, c)))
    {
        // SAFETY: a descriptor we own; 0, 0 is the whole file.
        check(unsafe { libc::sync_file_range(copy.as_raw_fd(), 0, 0, flags) })?;
    }
    log.sync_data()?;
    objects.sync_all()
}

/// Waits for what an earlier `SYNC_FILE_RANGE_WRITE` started, and writes
/// what is dirty since.
const WAIT_ALL: libc::c_uint =
    libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;

fn check(ret: libc::c_int) -> std::io::Result<()> {
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl Drop for Syncer {
    /// Syncs what is left, then ends the thread.
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
