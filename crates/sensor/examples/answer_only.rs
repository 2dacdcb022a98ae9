//! The floor under mamori's overhead: a listener that takes the events
//! mamori's design takes, on the same marks, and answers each at once.
//!
//! Every directory under DIR carries the marks the sensor puts on it (open
//! permission, pre-content access and written-file close, for its entries;
//! creates, deletes and renames in the name group), and new directories get
//! them as they appear. An opened file smaller than mamori's default size
//! for keeping by range (64 MiB) gets the ignore mark mamori gives a file it
//! need not watch, so its reads and writes cost nothing; a larger one reports
//! every access, as a file kept by range does. Nothing is read, weighed,
//! kept or named: what a workload pays with this listener is what the
//! kernel interface costs on this machine, and what it pays with mamori
//! beyond that is mamori's own work. `scripts/bench-overhead.sh` runs it as
//! the middle arm of every pair.
//!
//! Run as root: `cargo run --release -p mamori-sensor --example answer_only DIR`
//! (prints `ready` once DIR is marked; runs until killed).

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use mamori_sensor::{FAN_PRE_ACCESS, FID_MASK, PERM_MASK};

/// mamori's default `range_copy_from_mib`.
const RANGE_FROM: u64 = 64 << 20;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: answer_only DIR");
    // The same groups as the sensor's (see mamori_sensor::Sensor::new).
    let perm = init(
        libc::FAN_CLASS_PRE_CONTENT | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK | libc::FAN_REPORT_TID,
        libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOATIME,
    );
    let fid = init(
        libc::FAN_CLASS_NOTIF
            | libc::FAN_CLOEXEC
            | libc::FAN_NONBLOCK
            | libc::FAN_REPORT_DFID_NAME
            | libc::FAN_REPORT_FID
            | libc::FAN_REPORT_TARGET_FID
            | libc::FAN_REPORT_TID,
        libc::O_RDONLY,
    );
    let root = open_dir(libc::AT_FDCWD, Path::new(&dir)).expect("open DIR");
    mark_tree(&perm, &fid, root.as_raw_fd());
    println!("ready");
    io::stdout().flush().ok();

    let mut buf = vec![0u8; 64 * 1024];
    let mut fds = [
        libc::pollfd { fd: fid.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: perm.as_raw_fd(), events: libc::POLLIN, revents: 0 },
    ];
    loop {
        // SAFETY: fds holds two valid pollfds.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            continue;
        }
        for (ev, info) in read_events(&fid, &mut buf) {
            if ev.mask & libc::FAN_CREATE != 0 && ev.mask & libc::FAN_ONDIR != 0 {
                if let Some(dir) = created_dir(root.as_raw_fd(), info) {
                    mark_tree(&perm, &fid, dir.as_raw_fd());
                }
            }
        }
        for (ev, _) in read_events(&perm, &mut buf) {
            if ev.fd < 0 {
                continue;
            }
            // SAFETY: the kernel installed this fd for us.
            let file = unsafe { File::from_raw_fd(ev.fd) };
            if ev.mask & libc::FAN_OPEN_PERM != 0 {
                // As the sensor does: an ignore mark set at one open (say,
                // the one that created the file) is lifted for the next.
                let flags = if file.metadata().is_ok_and(|m| m.len() < RANGE_FROM) {
                    libc::FAN_MARK_ADD
                        | libc::FAN_MARK_IGNORED_MASK
                        | libc::FAN_MARK_IGNORED_SURV_MODIFY
                        | libc::FAN_MARK_EVICTABLE
                } else {
                    libc::FAN_MARK_REMOVE | libc::FAN_MARK_IGNORED_MASK
                };
                mark(&perm, flags, FAN_PRE_ACCESS | libc::FAN_CLOSE_WRITE, ev.fd);
            }
            if ev.mask & (libc::FAN_OPEN_PERM | FAN_PRE_ACCESS) != 0 {
                let answer = libc::fanotify_response { fd: ev.fd, response: libc::FAN_ALLOW };
                // SAFETY: answer is a valid fanotify_response; the kernel copies it.
                unsafe {
                    libc::write(
                        perm.as_raw_fd(),
                        (&answer as *const libc::fanotify_response).cast(),
                        std::mem::size_of_val(&answer),
                    )
                };
            }
        }
    }
}

fn init(flags: u32, event_flags: i32) -> OwnedFd {
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe { libc::fanotify_init(flags, event_flags as u32) };
    assert!(fd >= 0, "fanotify_init: {} (run as root, on kernel 6.14 or later)", io::Error::last_os_error());
    // SAFETY: a fresh fd nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn mark(group: &OwnedFd, flags: u32, mask: u64, fd: RawFd) -> bool {
    // SAFETY: a NULL path marks the object of `fd`.
    unsafe { libc::fanotify_mark(group.as_raw_fd(), flags, mask, fd, std::ptr::null()) == 0 }
}

fn open_dir(at: RawFd, name: &Path) -> Option<OwnedFd> {
    let c = CString::new(name.as_os_str().as_bytes()).ok()?;
    // SAFETY: c is NUL-terminated; the result is checked.
    let fd = unsafe { libc::openat(at, c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    // SAFETY: a fresh fd nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Marks a directory in both groups before listing it, then its subdirectories.
fn mark_tree(perm: &OwnedFd, fid: &OwnedFd, dir: RawFd) {
    let ok = mark(perm, libc::FAN_MARK_ADD | libc::FAN_MARK_ONLYDIR, PERM_MASK, dir)
        && mark(fid, libc::FAN_MARK_ADD | libc::FAN_MARK_ONLYDIR, FID_MASK, dir);
    assert!(ok, "fanotify_mark: {}", io::Error::last_os_error());
    let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{dir}")) else { return };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if let Some(sub) = open_dir(dir, Path::new(&entry.file_name())) {
                mark_tree(perm, fid, sub.as_raw_fd());
            }
        }
    }
}

/// The directory a create event names: its parent by handle, then the name.
fn created_dir(mount: RawFd, info: &[u8]) -> Option<OwnedFd> {
    // header (4), fsid (8), handle_bytes (4), handle_type (4), handle, name
    let len = u16::from_ne_bytes([*info.get(2)?, *info.get(3)?]) as usize;
    let rec = info.get(..len)?;
    if rec[0] != libc::FAN_EVENT_INFO_TYPE_DFID_NAME {
        return None;
    }
    let handle_bytes = u32::from_ne_bytes(rec.get(12..16)?.try_into().ok()?) as usize;
    let handle = rec.get(12..20 + handle_bytes)?;
    let name = rec.get(20 + handle_bytes..)?.split(|b| *b == 0).next()?;
    // An aligned copy: the kernel reads a struct file_handle from it.
    let mut aligned = vec![0u64; handle.len().div_ceil(8)];
    // SAFETY: aligned holds at least handle.len() bytes.
    unsafe { std::ptr::copy_nonoverlapping(handle.as_ptr(), aligned.as_mut_ptr().cast(), handle.len()) };
    // SAFETY: aligned holds a whole file_handle; the result is checked.
    let parent = unsafe { libc::open_by_handle_at(mount, aligned.as_mut_ptr().cast(), libc::O_RDONLY) };
    if parent < 0 {
        return None;
    }
    // SAFETY: a fresh fd nothing else owns.
    let parent = unsafe { OwnedFd::from_raw_fd(parent) };
    open_dir(parent.as_raw_fd(), Path::new(std::ffi::OsStr::from_bytes(name)))
}

/// Reads one batch from a group: each event's header and its info records.
fn read_events<'a>(
    group: &OwnedFd,
    buf: &'a mut [u8],
) -> impl Iterator<Item = (libc::fanotify_event_metadata, &'a [u8])> + 'a {
    // SAFETY: buf is valid for buf.len() bytes; the fd is non-blocking.
    let n = unsafe { libc::read(group.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }.max(0) as usize;
    let mut rest = &buf[..n];
    let head = std::mem::size_of::<libc::fanotify_event_metadata>();
    std::iter::from_fn(move || {
        if rest.len() < head {
            return None;
        }
        // SAFETY: the kernel wrote whole records; read unaligned.
        let ev: libc::fanotify_event_metadata = unsafe { std::ptr::read_unaligned(rest.as_ptr().cast()) };
        let len = (ev.event_len as usize).clamp(head, rest.len());
        let info = &rest[head..len];
        rest = &rest[len..];
        Some((ev, info))
    })
}
