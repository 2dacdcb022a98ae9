//! How a mamori command that works on the agent's behalf (`mamori restore`)
//! tells the running agent so, before it touches the vault or the protected
//! folders: otherwise its opens in the vault are refused and reported, and
//! a restore that puts a decoy back, deletes an attacker's files and writes
//! many more is judged an attacker and suspended.
//!
//! The agent listens on `STATE/agent.sock` (root's alone, in a state
//! directory that is root's alone). A command connects, sends one line
//! saying what it is (`restore INC-0001`) and keeps the connection open for
//! as long as it works. The agent takes the peer from the kernel
//! (`SO_PEERCRED`, and a pidfd of it), refuses any uid but root's, admits
//! the process by pid and start time to the sensor's [`Trusted`] set and
//! answers `ok`; from then until the connection closes the process is
//! treated as one of the agent's own threads. Its executable plays no part:
//! anyone can run mamori's, with a library preloaded.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mamori_sensor::{Admitted, Trusted};
use tracing::{info, warn};

/// The socket's name in the state directory.
pub const SOCKET: &str = "agent.sock";
/// The longest announcement line, newline included.
const LINE_MAX: usize = 256;
/// How long a client tries to connect while the agent's backlog is full.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// How long a client waits for the agent's answer.
const REPLY_WAIT: Duration = Duration::from_secs(10);
/// How long the agent waits for a connection's announcement.
const HELLO_WAIT: Duration = Duration::from_secs(5);
/// Connections at once; only root can connect, but a stuck one must not
/// pile up descriptors.
const CLIENTS_MAX: usize = 16;
/// How soon the listening thread notices it is to stop.
const POLL_MS: i32 = 200;
/// `SO_PEERPIDFD` (Linux 6.5): a pidfd of the peer as it connected. The
/// value differs on alpha, mips, parisc and sparc, where it is not asked.
#[cfg(not(any(target_arch = "mips", target_arch = "mips64", target_arch = "sparc64")))]
const SO_PEERPIDFD: libc::c_int = 77;

/// How long an admission waits for the sensor thread to catch up (see
/// [`Settled`]); an agent too busy for that still lets the command work.
const SETTLE_WAIT: Duration = Duration::from_secs(3);

/// Whether the sensor thread has handled what happened before a command
/// announced itself: the agent answers `ok` only then, so a restore run
/// right after its attacker was killed finds, in the incident, the files
/// that the attacker's last operations (still in the kernel's queue at the
/// kill) touched.
#[derive(Debug, Default)]
pub struct Settled {
    asked: AtomicU64,
    /// The asks seen at the last tick, and those every event queued before
    /// them has been handled for.
    ticks: Mutex<(u64, u64)>,
    /// The second of `ticks`, read without the lock: ticks come after
    /// every event, asks seldom.
    met: AtomicU64,
    reached: Condvar,
}

impl Settled {
    /// Called on the sensor thread after each tick, once the incidents are
    /// up to date. An ask seen at one tick is met at the next: the events
    /// read between the two were all queued after it was made.
    pub fn tick(&self) {
        let asked = self.asked.load(Ordering::SeqCst);
        if asked == self.met.load(Ordering::SeqCst) {
            return;
        }
        let mut ticks = self.ticks.lock().unwrap_or_else(|e| e.into_inner());
        *ticks = (asked, ticks.0);
        self.met.store(ticks.1, Ordering::SeqCst);
        self.reached.notify_all();
    }

    /// Waits until every event queued before now is handled, or `limit`.
    fn wait(&self, limit: Duration) -> bool {
        let ask = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        let ticks = self.ticks.lock().unwrap_or_else(|e| e.into_inner());
        let waited = self.reached.wait_timeout_while(ticks, limit, |t| t.1 < ask);
        waited.is_ok_and(|(_, timeout)| !timeout.timed_out())
    }
}

/// Held by a command for as long as it works on the agent's behalf: the
/// agent trusts its process until this is dropped (or the process ends).
#[derive(Debug)]
pub struct Ticket {
    _stream: UnixStream,
}

/// Tells the agent on `state` that this process is `what` (one line, such
/// as `restore INC-0001`) and waits until it is trusted. `None` when no agent
/// listens there (none runs, so none will stop this process). An error when
/// the socket is not root's alone, when this process is not root, or when
/// the agent refuses or does not answer in time: carrying on would have
/// the agent judge this process as an attacker.
pub fn announce(state: &Path, what: &str) -> Result<Option<Ticket>> {
    if what.is_empty() || what.len() >= LINE_MAX || what.contains('\n') {
        bail!("an announcement to the agent is one line of under {LINE_MAX} bytes: {what:?}");
    }
    let path = state.join(SOCKET);
    let meta = match fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot look at the agent's socket {}", path.display())),
    };
    if !meta.file_type().is_socket() || meta.uid() != 0 || meta.mode() & 0o077 != 0 {
        bail!(
            "refusing {}: the agent's socket is root's alone (mode 0600), this is not (uid {}, mode {:o})",
            path.display(),
            meta.uid(),
            meta.mode() & 0o7777
        );
    }
    let mut stream = match connect(&path, CONNECT_WAIT) {
        Ok(stream) => stream,
        // Left behind by an agent that ended without removing it.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ECONNREFUSED | libc::ENOENT)) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot reach the agent at {}", path.display())),
    };
    let agent = peer_cred(stream.as_raw_fd()).context("cannot tell who listens on the agent's socket")?;
    if agent.uid != 0 {
        bail!("refusing {}: it is served by uid {}, not root", path.display(), agent.uid);
    }
    stream.set_read_timeout(Some(REPLY_WAIT))?;
    stream.set_write_timeout(Some(REPLY_WAIT))?;
    // A refusal may come before the line is even read: its reason is still to be read.
    let sent = stream.write_all(format!("{what}\n").as_bytes());
    let reply = read_line(&mut stream);
    match (sent, reply) {
        (Ok(()), Ok(reply)) if reply == "ok" => Ok(Some(Ticket { _stream: stream })),
        (_, Ok(reply)) => bail!("the agent did not let this command work on its behalf: {reply}"),
        (Err(e), Err(_)) => Err(e).context("cannot announce this command to the agent"),
        (Ok(()), Err(e)) => Err(e).context("the agent did not answer the announcement"),
    }
}

/// The agent's side: a thread accepting announcements on `STATE/agent.sock`
/// until dropped, when it stops, ends every admission and removes the socket.
pub struct Listener {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    pub fn start(state: &Path, trusted: Trusted, settled: Arc<Settled>) -> Result<Listener> {
        let path = state.join(SOCKET);
        // Only one agent runs on a state directory (the caller holds its
        // lock): a socket there is a dead agent's.
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove the old socket {}", path.display()))
            }
            _ => {}
        }
        // Created unreachable to others, rather than narrowed after: there is
        // no moment at which another user could connect.
        // SAFETY: umask has no preconditions; no other thread creates files now.
        let old = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(&path);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        let listener = bound.with_context(|| format!("cannot listen on {}", path.display()))?;
        let meta = fs::symlink_metadata(&path).with_context(|| format!("cannot look at {}", path.display()))?;
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if !meta.file_type().is_socket() || meta.uid() != euid || meta.mode() & 0o077 != 0 {
            bail!("{} is not the socket just made, or others can reach it (mode {:o})", path.display(), meta.mode());
        }
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("handshake".into())
                .spawn(move || serve(&listener, &trusted, &settled, &stop))
                .context("cannot start the handshake thread")?
        };
        Ok(Listener { path, stop, thread: Some(thread) })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = fs::remove_file(&self.path);
    }
}

/// A connection: announcing itself, then trusted until it closes.
struct Client {
    stream: UnixStream,
    pid: u32,
    pidfd: Option<OwnedFd>,
    line: Vec<u8>,
    since: Instant,
    admitted: Option<Admitted>,
}

fn serve(listener: &UnixListener, trusted: &Trusted, settled: &Settled, stop: &AtomicBool) {
    let mut clients: Vec<Client> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut fds = vec![libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        fds.extend(clients.iter().map(|c| libc::pollfd {
            fd: c.stream.as_raw_fd(),
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        }));
        // SAFETY: `fds` is a valid array of its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, POLL_MS) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                warn!("the agent's socket failed, no command can announce itself any more: {e}");
                return;
            }
            continue;
        }
        let ready: Vec<bool> = fds[1..].iter().map(|p| p.revents != 0).collect();
        let mut kept = Vec::with_capacity(clients.len());
        for (mut client, ready) in clients.drain(..).zip(ready) {
            let open = !ready || client.serve(trusted, settled);
            if open && (client.admitted.is_some() || client.since.elapsed() < HELLO_WAIT) {
                kept.push(client);
            }
        }
        clients = kept;
        if fds[0].revents != 0 {
            accept(listener, &mut clients);
        }
    }
}

fn accept(listener: &UnixListener, clients: &mut Vec<Client>) {
    while let Ok((mut stream, _)) = listener.accept() {
        let peer = match peer_cred(stream.as_raw_fd()) {
            Ok(peer) => peer,
            Err(e) => {
                warn!("a connection to the agent's socket whose peer is unknown, refused: {e}");
                continue;
            }
        };
        let refuse = if peer.uid != 0 {
            warn!(pid = peer.pid, uid = peer.uid, "a process not of root's announced itself to the agent: refused");
            Some("only root's processes may work on the agent's behalf")
        } else if clients.len() >= CLIENTS_MAX {
            warn!(pid = peer.pid, "too many commands announced at once: refused");
            Some("too many commands at once")
        } else {
            None
        };
        if let Some(why) = refuse {
            let _ = stream.write_all(format!("refused: {why}\n").as_bytes());
            continue;
        }
        let _ = stream.set_nonblocking(true);
        let pidfd = peer_pidfd(stream.as_raw_fd(), peer.pid as u32);
        clients.push(Client {
            stream,
            pid: peer.pid as u32,
            pidfd,
            line: Vec::new(),
            since: Instant::now(),
            admitted: None,
        });
    }
}

impl Client {
    /// Reads what the peer sent; false once the connection is over.
    fn serve(&mut self, trusted: &Trusted, settled: &Settled) -> bool {
        let mut buf = [0u8; LINE_MAX];
        let n = match self.stream.read(&mut buf) {
            Ok(0) => return self.ended(),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return self.ended(),
        };
        if self.admitted.is_some() {
            // Nothing more is asked of a trusted peer but to close in the end.
            return true;
        }
        self.line.extend_from_slice(&buf[..n]);
        let Some(end) = self.line.iter().position(|&b| b == b'\n') else {
            if self.line.len() >= LINE_MAX {
                return self.refuse("an announcement is one short line");
            }
            return true;
        };
        let what = String::from_utf8_lossy(&self.line[..end]).into_owned();
        let Some(admitted) = self.pidfd.take().and_then(|fd| trusted.admit(self.pid, fd)) else {
            return self.refuse("the process that connected is gone");
        };
        info!(pid = self.pid, start = admitted.key().start, what, "a mamori command works on the agent's behalf");
        if !settled.wait(SETTLE_WAIT) {
            warn!(pid = self.pid, "the agent is behind on its events: the command may not see the latest of them");
        }
        // Blocking for this one short reply: a reply lost is a client that
        // waits for its timeout, and the socket's buffer is empty.
        let _ = self.stream.set_nonblocking(false);
        let _ = self.stream.set_write_timeout(Some(Duration::from_secs(1)));
        if self.stream.write_all(b"ok\n").is_err() {
            return false;
        }
        let _ = self.stream.set_nonblocking(true);
        self.admitted = Some(admitted);
        true
    }

    fn refuse(&mut self, why: &str) -> bool {
        warn!(pid = self.pid, "an announcement to the agent refused: {why}");
        let _ = self.stream.write_all(format!("refused: {why}\n").as_bytes());
        false
    }

    fn ended(&self) -> bool {
        if let Some(a) = &self.admitted {
            let key = a.key();
            let same = mamori_proc::start_time(key.pid) == Some(key.start);
            info!(pid = key.pid, running = same, "a mamori command is done working on the agent's behalf");
        }
        false
    }
}

/// The peer of a Unix socket as the kernel recorded it at connect (or listen).
fn peer_cred(fd: RawFd) -> io::Result<libc::ucred> {
    let mut cred = libc::ucred { pid: 0, uid: u32::MAX, gid: u32::MAX };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a writable ucred and `len` its size.
    let r = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, (&raw mut cred).cast(), &mut len) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred)
}

/// A pidfd of the peer: the one the kernel took as it connected where it
/// offers one, so that no later process at that pid can stand in for it;
/// else one opened now (the start time read at admission still tells a
/// reused pid, but not one reused in the moment since the connect).
fn peer_pidfd(fd: RawFd, pid: u32) -> Option<OwnedFd> {
    #[cfg(not(any(target_arch = "mips", target_arch = "mips64", target_arch = "sparc64")))]
    {
        let mut pidfd: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `pidfd` is a writable int and `len` its size.
        let r = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, SO_PEERPIDFD, (&raw mut pidfd).cast(), &mut len) };
        if r == 0 && pidfd >= 0 {
            // SAFETY: the kernel installed this fd for us.
            return Some(unsafe { OwnedFd::from_raw_fd(pidfd) });
        }
    }
    mamori_sensor::pidfd_open(pid).ok()
}

/// Connects without waiting past `wait`, which a blocking connect would
/// when the listener's backlog is full (a stuck agent).
fn connect(path: &Path, wait: Duration) -> io::Result<UnixStream> {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the socket's path is too long"));
    }
    for (to, &from) in addr.sun_path.iter_mut().zip(bytes) {
        *to = from as libc::c_char;
    }
    // SAFETY: plain syscall; the result is a new fd we own or -1.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: just created, owned by nobody else.
    let stream = unsafe { UnixStream::from_raw_fd(fd) };
    let deadline = Instant::now() + wait;
    loop {
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        // SAFETY: `addr` is a valid sockaddr_un of `len` bytes.
        if unsafe { libc::connect(fd, (&raw const addr).cast(), len) } == 0 {
            break;
        }
        let e = io::Error::last_os_error();
        // A Unix socket's non-blocking connect fails with EAGAIN while the backlog is full.
        if e.raw_os_error() != Some(libc::EAGAIN) {
            return Err(e);
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the agent accepts no connection"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// One line from the agent, without its newline.
fn read_line(stream: &mut UnixStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < LINE_MAX {
        if stream.read(&mut byte)? == 0 {
            break;
        }
        if byte[0] == b'\n' {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
        line.push(byte[0]);
    }
    if line.is_empty() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the agent closed the connection"));
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ask_is_met_at_the_second_tick_after_it_and_not_before() {
        let settled = Arc::new(Settled::default());
        settled.tick();
        assert!(!settled.wait(Duration::from_millis(50)), "no tick since the ask");
        let waiter = {
            let settled = settled.clone();
            std::thread::spawn(move || settled.wait(Duration::from_secs(10)))
        };
        while settled.asked.load(Ordering::SeqCst) < 2 {
            std::thread::yield_now();
        }
        // The first tick sees the ask; events it handled may predate it.
        settled.tick();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "met at the first tick after the ask");
        settled.tick();
        assert!(waiter.join().unwrap());
    }
}
