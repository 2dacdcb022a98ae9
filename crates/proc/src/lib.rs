//! Reading process facts from `/proc`.
//!
//! Every reader returns `None` when the process is gone or the file does not
//! parse: a process can exit between any two reads, so absence is ordinary.
//!
//! The command name (field 2 of `/proc/PID/stat`) is wrapped in parentheses
//! and may itself hold spaces and `)`, so the fields after it are found from
//! the *last* `)`.

use std::borrow::Cow;
use std::fs;
use std::io::{self, Read};

use mamori_event::ProcKey;

/// The fields of `/proc/PID/stat` mamori uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    /// `R`, `S`, `D`, `T`, `t`, `Z`, ... (see proc(5)).
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    pub session: u32,
    /// Clock ticks since boot (field 22).
    pub start: u64,
    /// The kernel's `PF_*` task flags (field 9).
    pub flags: u32,
}

/// `PF_IO_WORKER`: an io_uring worker thread of the process.
const PF_IO_WORKER: u32 = 0x10;

impl Stat {
    pub fn key(&self) -> ProcKey {
        ProcKey { pid: self.pid, start: self.start }
    }

    /// An io_uring worker: it runs no user code, and an idle one notices a
    /// stop only when its idle wait ends (seconds later).
    pub fn is_io_worker(&self) -> bool {
        self.flags & PF_IO_WORKER != 0
    }
}

pub fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(pid, &text(&read_proc(&format!("/proc/{pid}/stat")).ok()?))
}

/// The most of a `/proc` file [`read_proc`] reads: a command line may be
/// megabytes long, as its process chose, and is read while an event waits.
pub const MAX_PROC_BYTES: usize = 64 << 10;

/// A file under `/proc` (its first [`MAX_PROC_BYTES`]), read with as few
/// system calls as it takes (open, one read, close): `fs::read` asks for a
/// size first, which a `/proc` file does not have, and reads again to find
/// the end. `stat`, `status`, `cgroup` and `cmdline` give all they hold to
/// the first read that has room for it, so a read that leaves room has
/// reached the end. Read on every new process's first event, while that
/// event waits.
pub fn read_proc(path: &str) -> io::Result<Vec<u8>> {
    let mut file = fs::File::open(path)?;
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        let n = file.read(&mut buf[len..])?;
        len += n;
        if n == 0 || len < buf.len() || len == MAX_PROC_BYTES {
            break;
        }
        buf.resize((buf.len() * 2).min(MAX_PROC_BYTES), 0);
    }
    buf.truncate(len);
    Ok(buf)
}

/// The text of a `/proc` file: a program's name is any bytes its author
/// chose, and one that is not UTF-8 must not make its process unreadable
/// (its events would go unattributed, and so unjudged).
fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Parses the text of a `stat` file; `pid` is taken as given, not from field 1.
pub fn parse_stat(pid: u32, text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    // `rest` starts at field 3 (state), so field N is at index N - 3.
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        pid,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
        flags: f.get(6)?.parse().ok()?,
    })
}

/// The process start time (clock ticks since boot, field 22 of `/proc/PID/stat`).
pub fn start_time(pid: u32) -> Option<u64> {
    read_stat(pid).map(|s| s.start)
}

/// The wall-clock time (ns since the Unix epoch) at which a process that
/// started `ticks` clock ticks after boot began, on this boot.
pub fn started_ns(ticks: u64) -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let btime: u64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|&h| h > 0)?;
    Some(btime * 1_000_000_000 + ticks * (1_000_000_000 / hz))
}

/// One thread of a process, from `/proc/PID/task/TID/stat`.
pub fn thread_stat(pid: u32, tid: u32) -> Option<Stat> {
    parse_stat(tid, &text(&read_proc(&format!("/proc/{pid}/task/{tid}/stat")).ok()?))
}

/// Every process visible in `/proc` right now (threads other than the main
/// one are not listed there).
pub fn all() -> Vec<Stat> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()).filter_map(read_stat).collect()
}

/// The fields of `/proc/PID/status` mamori uses; a field is `None` when its
/// line is missing or malformed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// The process a thread belongs to.
    pub tgid: Option<u32>,
    /// The real user id.
    pub uid: Option<u32>,
}

pub fn read_status(pid: u32) -> Option<Status> {
    Some(parse_status(&text(&read_proc(&format!("/proc/{pid}/status")).ok()?)))
}

pub fn parse_status(text: &str) -> Status {
    let first = |v: &str| v.split_whitespace().next().and_then(|v| v.parse().ok());
    let mut st = Status::default();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("Tgid:") {
            st.tgid = first(v);
        } else if let Some(v) = line.strip_prefix("Uid:") {
            st.uid = first(v);
        }
    }
    st
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_start_is_in_the_past_and_after_boot() {
        let me = super::read_stat(std::process::id()).unwrap();
        let started = super::started_ns(me.start).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        assert!(started <= now && now - started < 3_600_000_000_000, "{started} vs {now}");
    }

    use super::*;

    /// A program may be named with any bytes, and its name is in `stat` and
    /// `status`: not UTF-8, it must still be read, or its every event would
    /// go unattributed and unjudged.
    #[test]
    fn a_process_named_with_bytes_that_are_not_utf8_is_read() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join(std::ffi::OsStr::from_bytes(b"\xff\xfe) Z 1 1 1"));
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let mut child = spawn_copied(std::process::Command::new(&exe).arg("5"));
        let pid = child.id();
        // Until the exec is done, /proc shows the test's own name.
        let start = std::time::Instant::now();
        while !std::fs::read(format!("/proc/{pid}/comm")).unwrap().starts_with(b"\xff") {
            assert!(start.elapsed() < std::time::Duration::from_secs(5), "the child never ran its program");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let stat = read_stat(pid);
        let status = read_status(pid);
        child.kill().unwrap();
        child.wait().unwrap();
        let stat = stat.expect("stat of a process with a name that is not UTF-8");
        assert_eq!((stat.pid, stat.ppid), (pid, std::process::id()));
        assert_eq!(status.expect("status").tgid, Some(pid));
    }

    /// Spawns a program just copied: a child another test thread forks
    /// meanwhile holds the copy's descriptor open until it execs, and the
    /// kernel refuses to run a file open for writing (`ETXTBSY`).
    fn spawn_copied(command: &mut std::process::Command) -> std::process::Child {
        for _ in 0..100 {
            match command.spawn() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                other => return other.unwrap(),
            }
        }
        panic!("the copied program stayed busy");
    }

    /// A command line is as long as its process made it: what is read of it is bounded.
    #[test]
    fn a_long_command_line_is_read_up_to_the_bound() {
        // The shell waits on its input, which the test holds open.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "read x", &"x".repeat(100 << 10)])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let path = format!("/proc/{}/cmdline", child.id());
        let head = b"sh\0-c\0read x\0";
        let start = std::time::Instant::now();
        let mut read = read_proc(&path).unwrap();
        while !read.starts_with(head) {
            assert!(start.elapsed() < std::time::Duration::from_secs(5), "the child never ran its shell");
            std::thread::sleep(std::time::Duration::from_millis(5));
            read = read_proc(&path).unwrap();
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(read.len(), MAX_PROC_BYTES);
        assert!(read[head.len()..].iter().all(|&b| b == b'x'));
    }

    #[test]
    fn comm_with_parens_and_spaces() {
        let line = "4242 (evil) (x y) S 17 4243 4244 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10\n";
        let st = parse_stat(4242, line).unwrap();
        assert_eq!(
            st,
            Stat { pid: 4242, state: 'S', ppid: 17, pgrp: 4243, session: 4244, start: 987654, flags: 4194560 }
        );
        assert!(!st.is_io_worker());
        assert_eq!(st.key(), ProcKey { pid: 4242, start: 987654 });
    }

    #[test]
    fn truncated_line_is_none() {
        assert_eq!(parse_stat(1, "1 (init) S 0 1"), None);
        assert_eq!(parse_stat(1, "1 (init"), None);
    }

    #[test]
    fn own_stat_reads() {
        let me = read_stat(std::process::id()).unwrap();
        assert!(me.start > 0);
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        // SAFETY: getpgrp and getsid have no preconditions.
        let (pgrp, sid) = unsafe { (libc::getpgrp(), libc::getsid(0)) };
        assert_eq!((me.pgrp, me.session), (pgrp as u32, sid as u32));
        assert_eq!(start_time(me.pid), Some(me.start));
    }

    #[test]
    fn own_thread_is_running_while_it_reads() {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        assert_eq!(thread_stat(std::process::id(), tid).map(|s| s.state), Some('R'));
    }

    /// A stop once waited seconds for an idle io_uring worker (the `io-uring`
    /// family): the worker must be told apart from the process's own threads.
    #[test]
    fn an_io_uring_worker_thread_is_recognised() {
        let before: Vec<u32> = tasks();
        let mut ring = io_uring::IoUring::new(2).unwrap();
        // IOSQE_ASYNC sends even a no-op to a worker thread.
        let nop = io_uring::opcode::Nop::new().build().flags(io_uring::squeue::Flags::ASYNC);
        // SAFETY: a no-op refers to no memory.
        unsafe { ring.submission().push(&nop).unwrap() };
        ring.submit_and_wait(1).unwrap();
        let me = std::process::id();
        let workers: Vec<Stat> =
            tasks().into_iter().filter(|t| !before.contains(t)).filter_map(|t| thread_stat(me, t)).collect();
        assert!(workers.iter().any(Stat::is_io_worker), "{workers:?}");
        // SAFETY: gettid has no preconditions.
        let own = thread_stat(me, unsafe { libc::gettid() } as u32).unwrap();
        assert!(!own.is_io_worker());
    }

    fn tasks() -> Vec<u32> {
        let dir = std::fs::read_dir("/proc/self/task").unwrap();
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
    }

    #[test]
    fn all_lists_this_process_and_init() {
        let procs = all();
        assert!(procs.iter().any(|s| s.pid == std::process::id()));
        assert!(procs.iter().any(|s| s.pid == 1 && s.ppid == 0));
    }

    #[test]
    fn parses_status() {
        let text = "Name:\tsh\nTgid:\t100\nPid:\t101\nUid:\t1000\t0\t0\t0\n";
        assert_eq!(parse_status(text), Status { tgid: Some(100), uid: Some(1000) });
        assert_eq!(parse_status("Name:\tsh\nTgid:\tx\n"), Status { tgid: None, uid: None });
    }

    #[test]
    fn own_status_reads() {
        let st = read_status(std::process::id()).unwrap();
        // SAFETY: getuid has no preconditions.
        assert_eq!(st, Status { tgid: Some(std::process::id()), uid: Some(unsafe { libc::getuid() }) });
    }
}
