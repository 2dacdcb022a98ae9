//! What a pre-content event costs a writer before the agent does anything:
//! 4 KiB writes at random offsets of a 1 GiB file, timed without a listener,
//! then with a fanotify group whose thread only answers `FAN_ALLOW` to each
//! `FAN_PRE_ACCESS`. This is the floor under keeping a large file by range
//! on a filesystem without reflinks (ext4): every first write to a block
//! pays it.
//!
//! Run as root: `cargo run --release -p mamori-sensor --example pre_access_floor [DIR]`
//! (DIR defaults to /var/tmp; the example makes, and removes, its own file there).

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::time::Instant;

const FAN_PRE_ACCESS: u64 = 0x0010_0000;
const SIZE: u64 = 1 << 30;
const WRITES: u64 = 16_384;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/var/tmp".into());
    let scratch = tempfile_in(&dir);
    let path = scratch.join("disk.img");
    let file = OpenOptions::new().create_new(true).read(true).write(true).open(&path).expect("create the test file");
    file.set_len(SIZE).expect("size the test file");
    drop(file);

    let plain = time_writes(&path);
    let group = listen(&path);
    let answered = time_writes(&path);
    drop(group);
    std::fs::remove_dir_all(&scratch).ok();
    println!("{WRITES} random 4 KiB writes into 1 GiB:");
    println!("  no listener:                 {:.2} µs a write", plain);
    println!("  a listener that only answers: {:.2} µs a write", answered);
    println!(
        "  round trip:                  {:.2} µs, {:.0} ms in all",
        answered - plain,
        (answered - plain) * WRITES as f64 / 1000.0
    );
}

fn tempfile_in(dir: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(dir).join(format!("mamori-floor-{}", std::process::id()));
    std::fs::create_dir(&p).expect("make a scratch folder");
    p
}

/// Mean µs a write, over a fresh open (the kernel decides at open whether
/// a file reports accesses).
fn time_writes(path: &std::path::Path) -> f64 {
    let file = OpenOptions::new().write(true).open(path).expect("open the test file");
    let block = [0x5au8; 4096];
    let mut state = 7u64;
    let start = Instant::now();
    for _ in 0..WRITES {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let offset = (state >> 33) % (SIZE / 4096) * 4096;
        file.write_all_at(&block, offset).expect("write");
    }
    start.elapsed().as_secs_f64() * 1e6 / WRITES as f64
}

/// A pre-content group marked on the file, and a thread answering it.
fn listen(path: &std::path::Path) -> OwnedFd {
    // SAFETY: plain syscalls; results checked.
    let fd = unsafe { libc::fanotify_init(libc::FAN_CLASS_PRE_CONTENT | libc::FAN_CLOEXEC, libc::O_RDONLY as u32) };
    assert!(fd >= 0, "fanotify_init: {} (run as root)", std::io::Error::last_os_error());
    // SAFETY: a fresh fd nothing else owns.
    let group = unsafe { OwnedFd::from_raw_fd(fd) };
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL");
    // SAFETY: cpath is NUL-terminated.
    let r = unsafe { libc::fanotify_mark(fd, libc::FAN_MARK_ADD, FAN_PRE_ACCESS, libc::AT_FDCWD, cpath.as_ptr()) };
    assert!(r == 0, "fanotify_mark: {}", std::io::Error::last_os_error());
    let raw = group.as_raw_fd();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        loop {
            // SAFETY: buf is valid for buf.len() bytes.
            let n = unsafe { libc::read(raw, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return;
            }
            let mut at = 0usize;
            while at + std::mem::size_of::<libc::fanotify_event_metadata>() <= n as usize {
                // SAFETY: the kernel wrote whole records; read unaligned.
                let ev: libc::fanotify_event_metadata = unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                let resp = libc::fanotify_response { fd: ev.fd, response: libc::FAN_ALLOW };
                // SAFETY: resp is a valid fanotify_response.
                unsafe {
                    libc::write(raw, (&resp as *const libc::fanotify_response).cast(), std::mem::size_of_val(&resp))
                };
                // SAFETY: the kernel gave us this fd.
                drop(unsafe { File::from_raw_fd(ev.fd) });
                if ev.event_len == 0 {
                    break;
                }
                at += ev.event_len as usize;
            }
        }
    });
    group
}
