//! The event loop: reads both groups, turns kernel records into [`Event`]s
//! and answers permission events with the handler's decision.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mamori_content::{read_facts_sized, read_facts_whole, Depth, Whole};
use mamori_event::{ContentFacts, Event, EventKind, OpenMode, ProcKey};

use crate::closes::{Closed, Closes};
use crate::fanotify::{Answer, Group};
use crate::handles::{FileHandles, HandleKey};
use crate::known::{Known, Named};
use crate::lock::{Held, Lock};
use crate::openmode::Syscalls;
use crate::procs::{Procs, Who};
use crate::ready::{Ready, Source, Woken};
use crate::records::{access_range, dir_entries, events, object_handle, RawEvent};
use crate::scope::Scope;
use crate::trusted::Trusted;
use crate::watch::Watch;
use crate::{Decision, Handler, Opened, SensorConfig, SensorError, Stats};
use mamori_guard::{Allow, Denial, Guard};

/// Not in Debian 12's headers (kernel 6.14+): before each read or write of a
/// marked file, with the range in an info record.
pub const FAN_PRE_ACCESS: u64 = 0x0010_0000;
const FRESH_MAX: usize = 65_536;
/// Threads with a created file not yet opened: almost always one or none.
const CREATED_MAX: usize = 4_096;
const TICK: Duration = Duration::from_millis(200);
/// How long held closes wait for the open that usually follows a close.
const HELD_WAIT: Duration = Duration::from_millis(1);
const BUF_LEN: usize = 64 * 1024;

pub struct Sensor {
    ready: Ready,
    watch: Watch,
    closes: Closes,
    /// Files (inodes) that were empty when last opened, with the path they
    /// were opened by: their close needs only light facts.
    fresh: HashMap<(u64, u64), Named>,
    /// The file each thread created last (its create event comes just
    /// before the open that created it), by handle.
    created: HashMap<i32, Created>,
    handles: FileHandles,
    /// What opens to read found, for the next open of the same file.
    known: Known,
    /// Renames seen so far: a path noted before the last one may be stale.
    renames: u64,
    /// The last file event was a close, held.
    just_held: bool,
    /// Entry events read while opens wait in the other queue: handed to the
    /// handler just before its next event, so those opens are answered first.
    deferring: bool,
    deferred: Vec<Event>,
    /// The thread that runs the sensor, and the handler's vault with it.
    tid: i32,
    procs: Procs,
    syscalls: Syscalls,
    stats: Stats,
    buf: Vec<u8>,
    /// Processes treated as the sensor's own, shared with the door and the agent.
    trusted: Trusted,
    /// The kernel-side lock on the vault, where the kernel allows it.
    bpf: Option<Guard>,
}

/// The permission group's `fanotify_init` flags (`mamori check` makes one the same way).
pub const PERM_GROUP: libc::c_uint = libc::FAN_CLASS_PRE_CONTENT
    | libc::FAN_CLOEXEC
    | libc::FAN_NONBLOCK
    | libc::FAN_REPORT_TID
    | libc::FAN_UNLIMITED_MARKS;
/// Its event fds' flags. O_NONBLOCK: the kernel opens the event fd itself;
/// a FIFO must not stall it. O_NOATIME: access times are evidence, and each
/// read for facts or a kept block would otherwise dirty the inode once more.
pub const PERM_EVENT_FD: libc::c_uint =
    (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOATIME) as libc::c_uint;
/// The entry-event group's flags, before the optional target and thread reports.
pub const FID_GROUP: libc::c_uint = libc::FAN_CLASS_NOTIF
    | libc::FAN_CLOEXEC
    | libc::FAN_NONBLOCK
    | libc::FAN_UNLIMITED_MARKS
    | libc::FAN_REPORT_DFID_NAME
    | libc::FAN_REPORT_FID;

impl Sensor {
    /// Creates both groups and marks every directory under each root.
    pub fn new(cfg: SensorConfig) -> Result<Sensor, SensorError> {
        let mut roots = Vec::new();
        for root in &cfg.protect {
            let meta = std::fs::metadata(root).map_err(|source| SensorError::Root { path: root.clone(), source })?;
            if !meta.is_dir() {
                return Err(SensorError::NotDirectory { path: root.clone() });
            }
            roots.push(root.canonicalize().map_err(|source| SensorError::Root { path: root.clone(), source })?);
        }
        // An exclusion may not exist yet (a state dir made later): keep it as given.
        let exclude = cfg.exclude.iter().map(|e| e.canonicalize().unwrap_or_else(|_| e.clone())).collect();

        let perm = Group::init(PERM_GROUP, PERM_EVENT_FD).map_err(SensorError::Init)?;
        let fid_flags = FID_GROUP;
        // The created file's own handle (5.17+) names a new file's open
        // without a walk of /proc; thread ids attribute to the thread.
        let fid = Group::init(fid_flags | libc::FAN_REPORT_TARGET_FID | libc::FAN_REPORT_TID, libc::O_RDONLY as u32)
            .or_else(|_| Group::init(fid_flags | libc::FAN_REPORT_TID, libc::O_RDONLY as u32))
            .or_else(|_| Group::init(fid_flags, libc::O_RDONLY as u32))
            .map_err(SensorError::Init)?;

        let mut guard = Vec::new();
        for g in &cfg.guard {
            guard.push(g.canonicalize().map_err(|source| SensorError::Root { path: g.clone(), source })?);
        }
        let trusted = Trusted::default();
        let lock = Lock::new(trusted.clone()).map_err(SensorError::Init)?;
        let unmarked = cfg.unmarked.iter().map(|u| u.canonicalize().unwrap_or_else(|_| u.clone())).collect();
        let mut watch = Watch::new(perm, fid, lock, Scope::new(roots.clone(), exclude, guard.clone(), unmarked));
        for root in roots.iter().chain(&guard) {
            watch.watch_root(root)?;
        }
        tracing::info!(roots = roots.len(), dirs = watch.marked, "sensor watching");
        let bpf = lock_deletes(&guard, std::fs::read_link("/proc/self/exe").ok());
        let closes = Closes::new().map_err(SensorError::Init)?;
        let ready = Ready::new().map_err(SensorError::Poll)?;
        let bpf_fd = bpf.as_ref().map(|g| g.as_fd().as_raw_fd());
        let sources = [
            (Some(watch.fid.raw()), Source::Fid),
            (Some(watch.perm.raw()), Source::Perm),
            (Some(closes.wake_fd()), Source::Closes),
            (Some(watch.lock.wake_fd()), Source::Door),
            (bpf_fd, Source::Bpf),
        ];
        for (fd, source) in sources {
            if let Some(fd) = fd {
                ready.add(fd, source).map_err(SensorError::Poll)?;
            }
        }
        Ok(Sensor {
            ready,
            watch,
            closes,
            fresh: HashMap::new(),
            created: HashMap::new(),
            handles: FileHandles::default(),
            known: Known::default(),
            renames: 0,
            just_held: false,
            deferring: false,
            deferred: Vec::new(),
            tid: 0,
            procs: Procs::new(trusted.clone()),
            syscalls: Syscalls::default(),
            stats: Stats::default(),
            buf: vec![0; BUF_LEN],
            trusted,
            bpf,
        })
    }

    /// The processes to treat as the sensor's own: their opens in the vault
    /// pass the door, and their events are answered at once, never reported.
    pub fn trusted(&self) -> Trusted {
        self.trusted.clone()
    }

    pub fn stats(&self) -> Stats {
        Stats { dirs_marked: self.watch.marked, ..self.stats }
    }

    /// Runs until `stop` is set.
    pub fn run(&mut self, handler: &mut dyn Handler, stop: &AtomicBool) -> Result<(), SensorError> {
        // SAFETY: gettid has no preconditions.
        self.tid = unsafe { libc::gettid() };
        let mut last_tick = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            // Held closes are weighed when nothing else is waiting, one at a
            // time, so an open that comes meanwhile is answered first. Right
            // after a close its writer's next open is due: they wait for it
            // (or a moment) and are weighed while that opener writes.
            let holding = self.closes.holding();
            let timeout = match (holding, self.just_held) {
                (false, _) => TICK,
                (true, true) => HELD_WAIT,
                (true, false) => Duration::ZERO,
            };
            let woken = self.ready.wait(timeout).map_err(SensorError::Poll)?;
            if holding && woken == Woken::default() {
                self.just_held = false;
                if let Some(c) = self.closes.next(false) {
                    self.report_close(c, handler);
                }
                continue;
            }
            let mut batch = false;
            if woken.has(Source::Fid) {
                // A program making files waits in its open while the create
                // that came just before is weighed: weigh it after the answer
                // (the open's event is looked for even if it was not in yet
                // at the wake: an empty read costs less than that wait).
                self.deferring = true;
                let read = self.read_batch(false, handler);
                self.deferring = false;
                batch |= read?;
            }
            if woken.has(Source::Perm) || !self.deferred.is_empty() {
                batch |= self.read_batch(true, handler)?;
            }
            self.flush(handler);
            if woken.has(Source::Closes) {
                self.closes.clear_wake();
                batch |= self.closed(handler, false);
            }
            if woken.has(Source::Door) {
                for held in self.watch.lock.take() {
                    self.at_the_door(held, handler);
                }
                batch = true;
            }
            if woken.has(Source::Bpf) {
                let denied: Vec<Denial> = self.bpf.as_mut().map(|g| g.denials().collect()).unwrap_or_default();
                for d in denied {
                    self.intrusion(d.tid as i32, &d.dir.join(&d.name), now_ns(), handler);
                }
                batch = true;
            }
            if batch || last_tick.elapsed() >= TICK {
                handler.tick();
                last_tick = Instant::now();
            }
        }
        while self.closed(handler, true) {}
        Ok(())
    }

    /// Hands the handler the closes whose facts are computed: those ready,
    /// or (`wait`) the next one, waiting for it. False when there was none.
    fn closed(&mut self, handler: &mut dyn Handler, wait: bool) -> bool {
        let mut any = false;
        while let Some(c) = self.closes.next(wait && !any) {
            any = true;
            self.report_close(c, handler);
        }
        any
    }

    fn report_close(&mut self, c: Closed, handler: &mut dyn Handler) {
        if let Some(after) = c.facts {
            let kind = EventKind::CloseWrite { path: c.path, after };
            self.emit(handler, Event { time_ns: c.time_ns, proc: c.proc, kind }, None);
        }
    }

    /// Reads and handles one batch from a group; false when none was queued.
    fn read_batch(&mut self, content: bool, handler: &mut dyn Handler) -> Result<bool, SensorError> {
        let mut buf = std::mem::take(&mut self.buf);
        let group = if content { &self.watch.perm } else { &self.watch.fid };
        let n = group.read(&mut buf).map_err(SensorError::Read);
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.buf = buf;
                return Err(e);
            }
        };
        let time_ns = now_ns();
        for ev in events(&buf[..n]) {
            if ev.mask & libc::FAN_Q_OVERFLOW != 0 {
                self.overflow(time_ns, handler);
            } else if content {
                self.content_event(&ev, time_ns, handler);
            } else {
                self.fid_event(&ev, time_ns, handler);
            }
        }
        self.buf = buf;
        Ok(n > 0)
    }

    fn overflow(&mut self, time_ns: u64, handler: &mut dyn Handler) {
        self.stats.overflows += 1;
        tracing::warn!(overflows = self.stats.overflows, "fanotify queue overflowed: events were lost");
        self.emit(handler, Event { time_ns, proc: None, kind: EventKind::Overflow { lost: 1 } }, None);
    }

    /// An open about to happen (answered here), a write about to happen to
    /// a file kept by range (answered here), or a written file closed.
    fn content_event(&mut self, ev: &RawEvent, time_ns: u64, handler: &mut dyn Handler) {
        if ev.fd < 0 {
            return;
        }
        // SAFETY: the kernel installed this fd for us; we own and close it.
        let file = unsafe { File::from_raw_fd(ev.fd) };
        let perm = ev.mask & libc::FAN_OPEN_PERM != 0;
        let pre_access = ev.mask & FAN_PRE_ACCESS != 0;
        // Declared after `file` so the answer is sent before the fd closes.
        let mut answer = (perm || pre_access).then(|| Answer::new(&self.watch.perm, ev.fd));
        if perm || pre_access {
            self.stats.perm_events += 1;
        }
        if pre_access {
            let keep_watching = match access_range(ev.info) {
                Some((offset, len)) => {
                    let syscalls = &mut self.syscalls;
                    handler.before_write(&file, offset, len, &mut || syscalls.reading(ev.pid))
                }
                None => false,
            };
            if !keep_watching {
                self.watch(&file, FAN_PRE_ACCESS, false);
            }
            return;
        }
        let (decision, file, quiet) = self.file_event(ev, file, perm, time_ns, &mut answer, handler);
        let watch_writes = decision == Some(Decision::AllowWatchWrites);
        if let Some(file) = file.as_ref().filter(|_| watch_writes || !quiet) {
            // Decided while the opener still waits, so its first write is covered (or free).
            self.watch(file, FAN_PRE_ACCESS, watch_writes);
        }
        if let (Some(a), Some(Decision::Deny)) = (answer.as_mut(), decision) {
            a.deny();
        }
        // The kernel knows the event by its fd: answer before closing it.
        drop(answer);
        drop(file);
    }

    /// Reports an open to the handler (its decision, and the file back), or
    /// hands a close to the worker that computes its facts. An open answered
    /// here already (`answer` taken) gives neither back. The last value says
    /// that the file's accesses are unwatched already (see `Recalled::quiet`).
    fn file_event(
        &mut self,
        ev: &RawEvent,
        file: File,
        perm: bool,
        time_ns: u64,
        answer: &mut Option<Answer>,
        handler: &mut dyn Handler,
    ) -> (Option<Decision>, Option<File>, bool) {
        // Read once: every open and close passes here.
        let meta = file.metadata().ok();
        let inode = meta.as_ref().map(|m| (m.dev(), m.ino()));
        let empty = meta.as_ref().is_some_and(|m| m.len() == 0);
        let close = !perm && ev.mask & libc::FAN_CLOSE_WRITE != 0;
        let fresh = if close { inode.and_then(|i| self.fresh.remove(&i)) } else { None };
        let light = fresh.is_some();
        // A new file's close comes right after its open: the path read then
        // stands unless something was renamed since (reading it is a walk
        // of /proc, a tenth of the agent's time for a program making files).
        let noted = fresh.and_then(|f| f.current(self.renames));
        // An open that has just created its file: named by the create.
        let created = match (perm && empty, meta.as_ref()) {
            (true, Some(meta)) => self.created_by(ev.pid, &file, meta.dev()),
            _ => None,
        };
        let by_create = created.is_some();
        // A file opened again, unchanged: named as it was then.
        let recalled = match (perm && !empty, meta.as_ref()) {
            (true, Some(meta)) => self.known.recall(meta, self.renames),
            _ => None,
        };
        let (known, known_facts, was_quiet) = match recalled {
            Some(r) => (r.path, r.facts, r.quiet),
            None => (None, None, false),
        };
        let by_known = known.is_some();
        let path = match noted.or(created).or(known) {
            Some(path) => path,
            None => match self.current_path(ev.fd, meta.as_ref()) {
                Some(path) => path,
                None => return (None, perm.then_some(file), false),
            },
        };
        let Some(proc) = self.attribute(ev.pid, time_ns, handler) else { return (None, perm.then_some(file), false) };
        if !perm {
            if close {
                if light && proc.is_some_and(|p| !handler.weighs_new_files(p)) {
                    return (None, None, false);
                }
                let depth = if light { Depth::Light } else { Depth::Full };
                let closed = Closed { file, meta, path, proc, time_ns, depth, facts: None };
                if depth == Depth::Light {
                    self.closes.hold(closed);
                    self.just_held = true;
                } else {
                    self.closes.submit(closed);
                }
            }
            return (None, None, false);
        }
        // Read while the opener waits, like the path: once it goes on, its
        // system call is another, and the file may have moved.
        // The open that created a file writes it (what else it asked for,
        // read or truncate, changes nothing in an empty file).
        let mode = if by_create { OpenMode::Write } else { self.syscalls.open_mode(ev.pid) };
        // A file about to change is kept under its name as it is now, not
        // as remembered: the event of a rename just made may still be queued.
        let path = if by_known && mode.writes() {
            match self.current_path(ev.fd, meta.as_ref()) {
                Some(path) => path,
                None => return (None, Some(file), false),
            }
        } else {
            path
        };
        if !empty {
            // Only an empty file's open is answered before the entry events
            // read with it are weighed: it has nothing to lose.
            self.flush(handler);
        }
        let suspect = proc.is_some_and(|p| handler.is_suspect(p));
        self.just_held = false;
        // A read by a process with no evidence against it changes nothing.
        // Once the file's accesses are unwatched (its mark set now, or left
        // by its last open while it stayed unchanged), nothing its opener
        // waits for is left to decide: what is kept of the file is kept from
        // the kernel's descriptor, held here until the handler is done, and
        // a delete that follows is read after this open is weighed. So it
        // goes on now and the open is weighed after: a backup or a scanner
        // waits for the round trip alone. Not a file whose writes are
        // watched (kept by range): its ignore mark would silence them.
        let mut unwatched = was_quiet;
        if !empty && !mode.writes() && !suspect && !self.closes.pending_for(inode) {
            if !unwatched && meta.as_ref().is_some_and(|m| !handler.watches_writes(m.dev(), m.ino())) {
                self.watch(&file, FAN_PRE_ACCESS, false);
                unwatched = true;
            }
            if unwatched {
                drop(answer.take());
            }
        }
        // An empty file holds nothing to keep: unless its opener is suspect,
        // it goes on at once (its writes unwatched), and the open is weighed
        // after. Creating files is most of what busy programs do, and their
        // wait here was most of what mamori cost them.
        let answered = empty && !suspect && !self.closes.pending_for(inode);
        let unheard = answered && proc.is_some_and(|p| !handler.weighs_new_files(p));
        // The file may carry the close ignore of the program that made it:
        // whoever writes it now is heard when done. Not a file just made: a
        // new inode carries no mark.
        let lift_close_ignore = mode.writes() && !by_create;
        if answered {
            // Nor is its close worth reading when its creator's new files go
            // unweighed: one event fewer for every file such a program makes.
            if unheard {
                self.watch(&file, FAN_PRE_ACCESS | libc::FAN_CLOSE_WRITE, false);
            } else {
                if !by_create {
                    self.watch(&file, libc::FAN_CLOSE_WRITE, true);
                }
                self.watch(&file, FAN_PRE_ACCESS, false);
            }
            drop(answer.take());
        } else if lift_close_ignore {
            self.watch(&file, libc::FAN_CLOSE_WRITE, true);
        }
        // The engine must see a file's close before its reopen; and before
        // an existing file is opened to be changed, or a suspect opens
        // anything, the writes before it, so detection keeps pace with an
        // attack. Creating new files (empty) never waits.
        let changes_existing = mode.writes() && !empty;
        let mut remember = None;
        if let Some(i) = inode {
            if unheard {
                self.fresh.remove(&i);
            } else if empty {
                if self.fresh.len() >= FRESH_MAX {
                    // Forgetting only makes later closes take full facts.
                    self.fresh.clear();
                }
                self.fresh.insert(i, Named { path: path.clone(), renames: self.renames });
            } else {
                self.fresh.remove(&i);
            }
        }
        let (before, whole) = if empty {
            (None, None)
        } else if mode.writes() {
            meta.as_ref().map_or((None, None), |m| facts_whole(&file, m))
        } else {
            // Backups and scanners read the same files again and again:
            // what an unchanged file holds is known from its last open.
            let facts = match known_facts {
                Some(known_facts) if by_known => Some(known_facts),
                known_facts => {
                    let light = known_facts.or_else(|| {
                        let m = meta.as_ref().filter(|m| handler.facts_at_read(proc, m))?;
                        facts_as(&file, m, Depth::Light, false)
                    });
                    // Its one name, as it was before the vault pins it.
                    let unique = meta.as_ref().is_some_and(|m| m.nlink() == 1);
                    remember = Some((unique.then(|| path.clone()), light.clone()));
                    light
                }
            };
            (facts, None)
        };
        // Read before waiting for the closes: their facts are computed on
        // the worker meanwhile, so a program rewriting files waits for one
        // file's facts, not two in a row. The opener is held either way, so
        // the file is as it found it; a close of this same file still
        // pending changes nothing in it any more.
        let in_order = changes_existing || suspect;
        while self.closes.pending_for(inode) || (in_order && self.closes.any_pending()) {
            self.closed(handler, true);
        }
        let kind = EventKind::Open { path, mode, before };
        if answered {
            // Not the file as the opener found it any more: it may be
            // writing already, and a vault given it would keep the new
            // content as the old.
            self.emit(handler, Event { time_ns, proc, kind }, None);
            return (None, None, false);
        }
        let opened = meta.as_ref().map(|meta| Opened { file: &file, meta, whole: whole.as_ref() });
        let decision = self.emit(handler, Event { time_ns, proc, kind }, opened);
        // As the file was before the handler kept it: a read is held open,
        // which changes nothing; a pin on disk (a second name, a change)
        // only makes the next open read it afresh, which is the safe side.
        if let (Some((path, light)), Some(meta)) = (remember, meta.as_ref()) {
            self.known.note(meta, path.as_deref(), self.renames, light.as_ref());
        }
        let quiet = decision != Decision::AllowWatchWrites;
        if let (Some(meta), true) = (meta.as_ref(), quiet != was_quiet) {
            self.known.set_quiet(meta, quiet);
        }
        (Some(decision), Some(file), unwatched && quiet)
    }

    /// The path of an event's file as the kernel names it now, if in scope.
    fn current_path(&self, fd: i32, meta: Option<&std::fs::Metadata>) -> Option<String> {
        let path = undeleted(crate::handles::fd_path(fd).ok()?, meta);
        self.watch.scope.covers(&path).then(|| path_string(&path))
    }

    /// Notes a file's creation, for its opener to find (see `created_by`).
    fn note_created(&mut self, ev: &RawEvent, path: &str) {
        let Some(handle) = object_handle(ev.info) else { return };
        if self.created.len() >= CREATED_MAX {
            // Forgetting only makes those opens read their path from /proc.
            self.created.clear();
        }
        let name = Named { path: path.to_owned(), renames: self.renames };
        self.created.insert(ev.pid, Created { handle, name });
    }

    /// The path of the file that thread `tid` has just created, if `file`
    /// (on device `dev`) is that file and nothing was renamed since.
    fn created_by(&mut self, tid: i32, file: &File, dev: u64) -> Option<String> {
        let c = self.created.remove(&tid)?;
        let path = c.name.current(self.renames)?;
        let handle = self.handles.of(file, dev).ok()?;
        (handle == c.handle).then_some(path)
    }

    /// Turns the reporting of a file's `mask` events (its reads and
    /// writes, its closes) on or off, with an ignore mark on its inode.
    /// Evictable, so the marks of files no longer in use do not keep their
    /// inodes in memory (a file evicted and opened again gets a new open
    /// event, and a new mark). Every open passes here before its opener goes
    /// on, so an ignore set for one opener is lifted for the next.
    fn watch(&self, file: &File, mask: u64, on: bool) {
        let result = if on {
            self.watch.perm.mark(libc::FAN_MARK_REMOVE | libc::FAN_MARK_IGNORED_MASK, mask, file)
        } else {
            self.watch.perm.mark(
                libc::FAN_MARK_ADD
                    | libc::FAN_MARK_IGNORED_MASK
                    | libc::FAN_MARK_IGNORED_SURV_MODIFY
                    | libc::FAN_MARK_EVICTABLE,
                mask,
                file,
            )
        };
        match result {
            // Removing an ignore mark that was never there.
            Err(e) if on && e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => tracing::debug!(error = %e, on, "cannot change the write watch of a file"),
            Ok(()) => {}
        }
    }

    /// A name created, deleted or renamed in a watched directory.
    fn fid_event(&mut self, ev: &RawEvent, time_ns: u64, handler: &mut dyn Handler) {
        let dir = ev.mask & libc::FAN_ONDIR != 0;
        // A file this thread made or removed: the vault's pins and copies,
        // one for every file first opened. Never reported, so not even
        // resolved (renames still count, for the paths noted).
        if ev.pid == self.tid && !dir && ev.mask & libc::FAN_RENAME == 0 {
            return;
        }
        let recs = dir_entries(ev.info);
        let guarded = recs.iter().find_map(|r| {
            let path = self.watch.resolve(&r.dir)?.join(std::ffi::OsStr::from_bytes(&r.name));
            self.watch.scope.guarded(&path).then_some(path)
        });
        if let Some(path) = guarded {
            // Our own threads: the vault's own writes (a cheap look first).
            if !own_thread(ev.pid) {
                self.intrusion(ev.pid, &path, time_ns, handler);
            }
            return;
        }
        let mut path_of = |want: u8| {
            let rec = recs.iter().find(|r| r.info_type == want)?;
            let parent = self.watch.resolve(&rec.dir)?;
            Some(parent.join(std::ffi::OsStr::from_bytes(&rec.name)))
        };
        let kind = if ev.mask & libc::FAN_RENAME != 0 {
            self.renames += 1;
            // The kernel leaves out the record of a directory it does not
            // watch: a move from outside reads as a create, a move out as a delete.
            let from = path_of(libc::FAN_EVENT_INFO_TYPE_OLD_DFID_NAME);
            let to = path_of(libc::FAN_EVENT_INFO_TYPE_NEW_DFID_NAME);
            let covers = |p: &Option<PathBuf>| p.as_deref().is_some_and(|p| self.watch.scope.covers(p));
            let (was, is) = (covers(&from), covers(&to));
            match (from, to) {
                (Some(from), Some(to)) => {
                    if dir {
                        match (was, is) {
                            (true, true) => self.watch.moved(&from, &to),
                            (false, true) => self.watch.watch_tree(&to),
                            (true, false) => self.watch.unwatch_tree(&from, &to),
                            (false, false) => {}
                        }
                    }
                    if !was && !is {
                        return;
                    }
                    if !dir {
                        self.closes_before_rename(&to, handler);
                    }
                    EventKind::Rename { from: path_string(&from), to: path_string(&to), dir, replaced: None }
                }
                (None, Some(to)) if is => {
                    if dir {
                        self.watch.watch_tree(&to);
                    }
                    EventKind::Create { path: path_string(&to), dir }
                }
                (Some(from), None) if was => {
                    if dir {
                        // Its marks stay, but its events now resolve outside the scope.
                        self.watch.deleted(&from);
                    }
                    EventKind::Delete { path: path_string(&from), dir, before: None }
                }
                _ => return,
            }
        } else {
            let Some(path) = path_of(libc::FAN_EVENT_INFO_TYPE_DFID_NAME) else {
                tracing::debug!(mask = ev.mask, "entry event with an unresolvable directory");
                return;
            };
            let create = ev.mask & libc::FAN_CREATE != 0;
            if dir {
                if create {
                    self.watch.watch_tree(&path);
                } else {
                    self.watch.deleted(&path);
                }
            }
            if !self.watch.scope.covers(&path) {
                return;
            }
            let path = path_string(&path);
            if create {
                if !dir {
                    self.note_created(ev, &path);
                }
                EventKind::Create { path, dir }
            } else if ev.mask & libc::FAN_DELETE != 0 {
                EventKind::Delete { path, dir, before: None }
            } else {
                return;
            }
        };
        if matches!(kind, EventKind::Delete { .. }) && self.closes.holding() {
            // A close weighed after its file's delete would describe a file
            // the engine has already seen go (and an original deleted is
            // paired with the new files written before it).
            self.closed(handler, false);
        }
        if let Some(proc) = self.attribute(ev.pid, time_ns, handler) {
            self.emit(handler, Event { time_ns, proc, kind }, None);
        }
    }

    /// A file written and then renamed (encrypt, then add an extension) is
    /// read from the kernel close first, but its facts come back from the
    /// worker later: the engine must see the close under the old name
    /// before the rename, or it cannot compare the content with the one
    /// before. Looked up by inode, at the new name (the old one is gone);
    /// a stat, not an open, so no event of ours.
    fn closes_before_rename(&mut self, to: &Path, handler: &mut dyn Handler) {
        if !self.closes.any_pending() {
            return;
        }
        let inode = std::fs::symlink_metadata(to).ok().map(|m| (m.dev(), m.ino()));
        while self.closes.pending_for(inode) {
            self.closed(handler, true);
        }
    }

    /// Another process, blocked opening something in the vault: refused
    /// and reported, unless admitted meanwhile (the door looked before).
    fn at_the_door(&mut self, mut held: Held, handler: &mut dyn Handler) {
        let path = crate::handles::fd_path(held.file.as_raw_fd()).unwrap_or_default();
        if self.intrusion(held.tid, &path, now_ns(), handler) {
            held.refuse();
        }
    }

    /// Another process (the door and the BPF lock let mamori's own threads
    /// through before this) touched a guarded path: reported, and true,
    /// unless it is one the agent admitted. What it runs says nothing: any
    /// process can run mamori's executable, with a library preloaded.
    fn intrusion(&mut self, tid: i32, path: &Path, time_ns: u64, handler: &mut dyn Handler) -> bool {
        let Some(proc) = self.attribute(tid, time_ns, handler) else { return false };
        self.emit(handler, Event { time_ns, proc, kind: EventKind::Guarded { path: path_string(path) } }, None);
        true
    }

    /// The event's process, introducing it first if new; `None` for mamori's own.
    fn attribute(&mut self, tid: i32, time_ns: u64, handler: &mut dyn Handler) -> Option<Option<ProcKey>> {
        let mut intro = Vec::new();
        let who = self.procs.attribute(tid, &mut intro);
        for info in intro {
            let proc = Some(info.key);
            self.emit(handler, Event { time_ns, proc, kind: EventKind::Proc(info) }, None);
        }
        match who {
            Who::Own => None,
            Who::Proc(key) => {
                if key.is_none() {
                    self.stats.unattributed += 1;
                }
                Some(key)
            }
        }
    }

    /// Hands `ev` to the handler, after every event deferred before it; or
    /// defers it too (only events without a file, whose answer is no one's).
    fn emit(&mut self, handler: &mut dyn Handler, ev: Event, opened: Option<Opened<'_>>) -> Decision {
        if self.deferring && opened.is_none() {
            self.deferred.push(ev);
            return Decision::Allow;
        }
        self.flush(handler);
        self.stats.events += 1;
        handler.event(&ev, opened)
    }

    fn flush(&mut self, handler: &mut dyn Handler) {
        let mut deferred = std::mem::take(&mut self.deferred);
        for ev in deferred.drain(..) {
            self.stats.events += 1;
            handler.event(&ev, None);
        }
        self.deferred = deferred;
    }
}

/// A file created, as its create event named it.
struct Created {
    handle: HandleKey,
    name: Named,
}

/// Facts of a regular file whose metadata was just read; `None` when it is
/// not one, is unreadable, or is empty and `empty_ok` is false (an empty
/// file before an open says nothing).
pub(crate) fn facts_as(file: &File, meta: &std::fs::Metadata, depth: Depth, empty_ok: bool) -> Option<ContentFacts> {
    read_regular(meta, empty_ok, || read_facts_sized(file, meta.len(), depth))
}

/// Full facts of a regular file about to change, and all its bytes when
/// they were read whole (see [`mamori_content::read_facts_whole`]).
fn facts_whole(file: &File, meta: &std::fs::Metadata) -> (Option<ContentFacts>, Option<Whole>) {
    read_regular(meta, false, || read_facts_whole(file, meta.len(), Depth::Full))
        .map_or((None, None), |(facts, whole)| (Some(facts), whole))
}

fn read_regular<T>(meta: &std::fs::Metadata, empty_ok: bool, read: impl FnOnce() -> std::io::Result<T>) -> Option<T> {
    if !meta.is_file() || (meta.len() == 0 && !empty_ok) {
        return None;
    }
    read().inspect_err(|e| tracing::debug!(error = %e, "reading content facts failed")).ok()
}

/// The kernel names a file whose name was removed "<last path> (deleted)";
/// its last path is what the engine knows it by. Its link count says
/// nothing (the vault's pin is another link): a file really named so is
/// at that name, the very inode (a stat, not an open: no event of ours).
fn undeleted(path: PathBuf, meta: Option<&std::fs::Metadata>) -> PathBuf {
    let Some(stripped) = path.as_os_str().as_bytes().strip_suffix(b" (deleted)") else { return path };
    let there = std::fs::symlink_metadata(&path)
        .is_ok_and(|at| meta.is_none_or(|m| (at.dev(), at.ino()) == (m.dev(), m.ino())));
    if there {
        path
    } else {
        PathBuf::from(std::ffi::OsStr::from_bytes(stripped))
    }
}

/// Names are bytes: a path is carried losslessly (see `mamori_event::names`).
fn path_string(path: &Path) -> String {
    mamori_event::names::encode(path)
}

pub(crate) fn own_thread(tid: i32) -> bool {
    Path::new(&format!("/proc/self/task/{tid}")).exists()
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Deletes and renames in the vault have no fanotify permission event: a
/// BPF LSM program refuses them where the kernel lets one attach (it needs
/// BPF LSM active and BPF trampolines allowed). Elsewhere they are seen and
/// the process stopped, but not refused.
fn lock_deletes(guard: &[PathBuf], own_exe: Option<PathBuf>) -> Option<Guard> {
    if guard.is_empty() {
        return None;
    }
    // A guard covers the entries of the directories it is given: the vaults and the folders in them.
    let mut dirs = guard.to_vec();
    for g in guard {
        let subdirs = std::fs::read_dir(g).into_iter().flatten().flatten();
        dirs.extend(subdirs.filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
    }
    match Guard::start(&dirs, Allow { pid: std::process::id(), exe: own_exe }) {
        Ok(g) => {
            tracing::info!(dirs = dirs.len(), "the vault is locked in the kernel: deletes and renames are refused");
            Some(g)
        }
        Err(e) => {
            tracing::warn!("deletes and renames in the vault are seen and stopped, not refused: {e}");
            None
        }
    }
}
