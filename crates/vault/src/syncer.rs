//! Making what the vault wrote durable, off the writer's path.
//!
//! A copy is taken while its opener waits; an fsync of the copy, of the
//! folder it was renamed in and of the log line cost three journal commits
//! (about 10 ms a file on this kind of machine), which made rewriting small
//! files eight times slower. Instead a thread of the vault's own calls
//! `syncfs` on the vault's filesystem at most once a [`EVERY`], when something
//! was written since: a power cut can lose the copies of the last second, as
//! it can lose the writes that followed them, and a crash never leaves an
//! entry whose object is not whole (a copy's object is checked against the
//! size its line records when the vault is opened).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The longest a kept before-image stays in the page cache only.
pub const EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Syncer {
    dirty: Arc<AtomicBool>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts syncing the filesystem of `dir` (a descriptor the thread keeps).
    pub fn start(dir: File) -> std::io::Result<Syncer> {
        let dirty = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = channel::<()>();
        let flag = dirty.clone();
        let thread = std::thread::Builder::new().name("vault-sync".into()).spawn(move || loop {
            let last = !matches!(stopped.recv_timeout(EVERY), Err(RecvTimeoutError::Timeout));
            if flag.swap(false, Ordering::AcqRel) {
                // SAFETY: syncfs takes a descriptor we own for the thread's life.
                if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
                    tracing::warn!("VAULT: syncing the vault's filesystem failed: {}", std::io::Error::last_os_error());
                    flag.store(true, Ordering::Release);
                }
            }
            if last {
                return;
            }
        })?;
        Ok(Syncer { dirty, stop: Some(stop), thread: Some(thread) })
    }

    /// Something was written that must reach the disk.
    pub fn written(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

impl Drop for Syncer {
    /// Syncs what is left, then ends the thread.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
