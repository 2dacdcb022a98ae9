//! Processes the agent vouches for as it does for its own threads: a
//! `mamori restore` that announced itself on the agent's socket puts
//! before-images back, deletes what an attacker made and writes many files
//! (a decoy among them). Judged, that would look like an attack, and the
//! restore would be suspended for good.
//!
//! The set is shared by whoever admits processes (the agent's handshake), the
//! door's thread and the sensor thread. A process is held by its pidfd and
//! its start time, so neither a pid reused after it exits nor a thread of
//! another process is ever taken for it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mamori_event::ProcKey;

/// Processes that ended while admitted, remembered so that their events
/// still queued in the kernel are not judged: a restore's last deletes are
/// often read after it exited.
const DEPARTED_MAX: usize = 64;

/// The set of admitted processes; clones share it.
#[derive(Clone, Debug, Default)]
pub struct Trusted {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// How many entries `live` and `departed` hold: the common case (none)
    /// is read without the lock on every event.
    count: AtomicUsize,
    serial: AtomicU64,
    sets: Mutex<Sets>,
}

#[derive(Debug, Default)]
struct Sets {
    live: Vec<Live>,
    departed: Vec<ProcKey>,
}

#[derive(Debug)]
struct Live {
    key: ProcKey,
    pidfd: OwnedFd,
    serial: u64,
}

/// A process admitted by [`Trusted::admit`], trusted until this is dropped.
#[derive(Debug)]
pub struct Admitted {
    inner: Arc<Inner>,
    key: ProcKey,
    serial: u64,
}

impl Admitted {
    pub fn key(&self) -> ProcKey {
        self.key
    }
}

impl Trusted {
    /// Admits the process `pidfd` refers to, whose pid is `pid`. `None` when
    /// it has exited: then its pid may already name another process, whose
    /// start time would be read here.
    pub fn admit(&self, pid: u32, pidfd: OwnedFd) -> Option<Admitted> {
        let start = mamori_proc::start_time(pid)?;
        // Alive after the read: the pid was still its own, so was the start time.
        if exited(&pidfd) {
            return None;
        }
        let key = ProcKey { pid, start };
        let serial = self.inner.serial.fetch_add(1, Ordering::Relaxed);
        let mut sets = self.inner.lock();
        sets.live.push(Live { key, pidfd, serial });
        self.inner.count.store(sets.live.len() + sets.departed.len(), Ordering::Release);
        Some(Admitted { inner: self.inner.clone(), key, serial })
    }

    /// Whether the process `key` is admitted, or ended while it was. Keys
    /// carry the start time: a reused pid never matches.
    pub(crate) fn holds(&self, key: ProcKey) -> bool {
        if self.inner.count.load(Ordering::Acquire) == 0 {
            return false;
        }
        let sets = self.inner.lock();
        sets.live.iter().any(|l| l.key == key) || sets.departed.contains(&key)
    }

    /// Whether thread `tid` belongs to a live admitted process, for a thread
    /// blocked in an open right now (the door's openers).
    pub(crate) fn holds_thread(&self, tid: i32) -> bool {
        if self.inner.count.load(Ordering::Acquire) == 0 {
            return false;
        }
        let sets = self.inner.lock();
        // The thread is looked for first: if the process is still alive after
        // that, its pid was not reused in between, so the thread was its.
        sets.live.iter().any(|l| Path::new(&format!("/proc/{}/task/{tid}", l.key.pid)).exists() && !exited(&l.pidfd))
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sets> {
        self.sets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut sets = self.inner.lock();
        let Some(at) = sets.live.iter().position(|l| l.serial == self.serial) else { return };
        let live = sets.live.swap_remove(at);
        // Still running (it closed its connection early): judged from now on.
        // Ended: it can do nothing more, but what it did may still be queued.
        if exited(&live.pidfd) || mamori_proc::start_time(live.key.pid) != Some(live.key.start) {
            if sets.departed.len() >= DEPARTED_MAX {
                sets.departed.remove(0);
            }
            sets.departed.push(live.key);
        }
        self.inner.count.store(sets.live.len() + sets.departed.len(), Ordering::Release);
    }
}

/// Whether the process of a pidfd has exited (a pidfd polls readable then).
fn exited(pidfd: &OwnedFd) -> bool {
    let mut pfd = libc::pollfd { fd: pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, no wait.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n != 0
}

/// A pidfd of process `pid`.
pub fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscall; the result is a new fd we own or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just created, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_is_trusted_while_admitted_and_its_key_after_it_ended() {
        let trusted = Trusted::default();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let admitted = trusted.admit(pid, pidfd_open(pid).unwrap()).expect("a live child is admitted");
        let key = admitted.key();
        assert_eq!(Some(key.start), mamori_proc::start_time(pid));
        assert!(trusted.holds(key));
        assert!(trusted.holds_thread(pid as i32), "its main thread");
        assert!(!trusted.holds(ProcKey { pid, start: key.start + 1 }), "another process at that pid");
        // SAFETY: gettid has no preconditions.
        assert!(!trusted.holds_thread(unsafe { libc::gettid() }), "a thread of another process");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!trusted.holds_thread(pid as i32), "an ended process opens nothing");
        drop(admitted);
        assert!(trusted.holds(key), "its queued events are still its own");
    }

    #[test]
    fn a_process_that_closed_early_is_judged_again() {
        let trusted = Trusted::default();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let admitted = trusted.admit(pid, pidfd_open(pid).unwrap()).unwrap();
        let key = admitted.key();
        drop(admitted);
        assert!(!trusted.holds(key));
        assert!(!trusted.holds_thread(pid as i32));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn an_ended_process_is_not_admitted() {
        let trusted = Trusted::default();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let fd = pidfd_open(pid).unwrap();
        child.wait().unwrap();
        assert!(trusted.admit(pid, fd).is_none());
    }
}
