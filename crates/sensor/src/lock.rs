//! The vault's door: an open of anything in a guarded directory waits for an
//! answer, and only mamori gets in.
//!
//! The agent writes its vault from the thread that answers the protected
//! folders' permission events, so the vault's own permission events go to a
//! third group, answered by a thread of their own. That thread lets mamori's
//! own threads, and those of the processes the agent admitted (a restore,
//! see [`Trusted`]), through at once (they never wait on the sensor thread)
//! and hands every other opener, still blocked, to the sensor thread, which
//! knows the processes: it names the intruder, reports it, and refuses the
//! open.
//!
//! Deletes and renames have no permission event in fanotify: those are seen
//! (by the FID group) and stopped, not refused.

use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::fanotify::{Answer, Group};
use crate::records::events;
use crate::trusted::Trusted;
use crate::wake::Wake;

/// Opens of a guarded directory and of its entries.
pub(crate) const LOCK_MASK: u64 = libc::FAN_OPEN_PERM | libc::FAN_EVENT_ON_CHILD | libc::FAN_ONDIR;
/// How long the door's thread may take to notice the sensor is stopping.
const STOP_POLL_MS: i32 = 200;

/// An open by another process, blocked until this is dropped (allowed unless
/// [`Held::refuse`] was called).
pub(crate) struct Held {
    /// Declared before `file`: the answer must reach the kernel before the
    /// event's fd is closed.
    answer: Answer,
    pub file: File,
    pub tid: i32,
}

impl Held {
    pub fn refuse(&mut self) {
        self.answer.deny();
    }
}

pub(crate) struct Lock {
    group: Arc<Group>,
    held: Arc<Mutex<Vec<Held>>>,
    wake: Arc<Wake>,
    stop: Arc<AtomicBool>,
    door: Option<JoinHandle<()>>,
}

impl Lock {
    pub fn new(trusted: Trusted) -> io::Result<Lock> {
        let group = Arc::new(Group::init(
            libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK | libc::FAN_REPORT_TID,
            (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC | libc::O_NONBLOCK) as u32,
        )?);
        let wake = Arc::new(Wake::new()?);
        let held = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let door = {
            let (group, held, wake, stop) = (group.clone(), held.clone(), wake.clone(), stop.clone());
            std::thread::Builder::new()
                .name("vault-door".into())
                .spawn(move || door(&group, &held, &wake, &stop, &trusted))?
        };
        Ok(Lock { group, held, wake, stop, door: Some(door) })
    }

    pub fn group(&self) -> &Group {
        &self.group
    }

    /// Readable when openers are waiting for [`Lock::take`].
    pub fn wake_fd(&self) -> RawFd {
        self.wake.raw()
    }

    /// The openers waiting for the sensor thread's verdict.
    pub fn take(&self) -> Vec<Held> {
        self.wake.clear();
        std::mem::take(&mut *self.held.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock").field("group", &self.group).finish_non_exhaustive()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(door) = self.door.take() {
            let _ = door.join();
        }
        // Answered while the group is still open.
        drop(self.take());
    }
}

/// The door's thread: mamori's own opens (and its admitted processes') pass
/// at once, others wait in `held`.
fn door(group: &Group, held: &Mutex<Vec<Held>>, wake: &Wake, stop: &AtomicBool, trusted: &Trusted) {
    let mut buf = vec![0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd { fd: group.raw(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, STOP_POLL_MS) } <= 0 {
            continue;
        }
        let n = match group.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "reading the vault's permission events failed");
                return;
            }
        };
        let mut waiting = Vec::new();
        for ev in events(&buf[..n]) {
            if ev.fd < 0 {
                continue;
            }
            // SAFETY: the kernel installed this fd for us; we own and close it.
            let file = unsafe { File::from_raw_fd(ev.fd) };
            let answer = Answer::new(group, ev.fd);
            // One of our own threads (the agent writing its vault), or a restore reading it.
            if crate::sensor::own_thread(ev.pid) || trusted.holds_thread(ev.pid) {
                drop(answer);
                drop(file);
                continue;
            }
            waiting.push(Held { answer, file, tid: ev.pid });
        }
        if !waiting.is_empty() {
            held.lock().unwrap_or_else(|p| p.into_inner()).append(&mut waiting);
            wake.notify();
        }
    }
}
