//! What `/proc` shows of an smbd process: its client connection, its user,
//! its configuration file. No subprocess: [`client_of`] runs on the sensor
//! thread.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use mamori_event::Client;

use crate::sys;
use crate::tcp::{self, ESTABLISHED};
use crate::SAMBA;

/// SMB over TCP, and over NetBIOS.
const SMB_PORTS: [u16; 2] = [445, 139];
/// An smbd child holds a few dozen descriptors; more than this is not one.
const MAX_FDS: usize = 4096;
/// A namespace's TCP table; a line is 150 bytes, so this is ~100 000 sockets.
const MAX_TABLE: u64 = 16 << 20;

/// For a process that serves one client connection (a Samba smbd child:
/// its executable's file name is `smbd` and its parent runs the same
/// file), the client it serves: the address and port at the other end of
/// its established TCP connection on local port 445 or 139, and the user
/// of its real uid.
///
/// The connection is found from the process's socket descriptors
/// (`/proc/PID/fd`). Each is asked directly, through a copy taken with
/// `pidfd_getfd` (needs ptrace rights over the process: root has them)
/// and closed at once; where the kernel refuses that, the descriptors'
/// inodes are looked up in its network namespace's tables
/// (`/proc/PID/net/tcp`, `tcp6`). The tables are the slow way: reading one
/// walks the kernel's whole connection hash (~4 ms per table on a machine
/// with 262 144 buckets, however few sockets it holds), too slow for the
/// sensor thread on every new smbd. `None` for anything else: the smbd master, its
/// helpers (no such connection), any other program, or one that is gone. A
/// connection process whose peer cannot be read (or that holds connections
/// to more than one address) is a client with an empty address.
///
/// The user is whoever the process runs as when asked: before the client
/// has logged in that is root, and a connection carrying sessions of
/// several users runs as each in turn. Samba's own account of the session
/// comes from [`crate::samba_sessions`].
pub fn client_of(pid: u32) -> Option<Client> {
    client_of_exe(pid, &fs::read_link(format!("/proc/{pid}/exe")).ok()?)
}

/// [`client_of`] for a caller that has read the process's executable
/// already (the sensor, introducing every new process), so it is not read
/// twice.
pub fn client_of_exe(pid: u32, exe: &Path) -> Option<Client> {
    if !is_smbd(exe) {
        return None;
    }
    let parent = mamori_proc::read_stat(pid)?.ppid;
    // The master's parent is init, or whatever started it: never smbd.
    if parent <= 1 || !same_executable(pid, parent)? {
        return None;
    }
    let sockets = socket_fds(pid);
    let remote = match ask_sockets(pid, &sockets, &SMB_PORTS) {
        Ok(remote) => remote,
        Err(Refused) => {
            let inodes: HashSet<u64> = sockets.iter().map(|(_, inode)| *inode).collect();
            search_tables(pid, &inodes, &SMB_PORTS)
        }
    };
    let uid = mamori_proc::read_status(pid)?.uid?;
    let (address, port) = match remote {
        Some(remote) => (remote.ip().to_string(), remote.port()),
        // A connection process whose peer could not be read is still one
        // client's, never the master's: judged on its own, with no address
        // to block. smbd names its helpers (smbd-notifyd, cleanupd); a
        // connection process keeps the name smbd.
        None if comm_is_smbd(pid) => (String::new(), 0),
        None => return None,
    };
    Some(Client { server: SAMBA.to_string(), address, port, user: user_name(uid), ..Client::default() })
}

fn comm_is_smbd(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_ascii_end() == b"smbd")
}

/// The smb.conf an smbd process was started with (`-s X`, `-sX`,
/// `--configfile=X`, `--configfile X`), as given on its command line, or
/// `None` when it uses the default (or is gone).
pub fn samba_config(pid: u32) -> Option<PathBuf> {
    let cmdline = mamori_proc::read_proc(&format!("/proc/{pid}/cmdline")).ok()?;
    config_from_args(cmdline.split(|b| *b == 0))
}

fn config_from_args<'a>(args: impl Iterator<Item = &'a [u8]>) -> Option<PathBuf> {
    let mut args = args.skip(1);
    while let Some(arg) = args.next() {
        let value = match arg {
            b"-s" | b"--configfile" => args.next()?,
            _ => match arg.strip_prefix(b"--configfile=") {
                Some(v) => v,
                // popt takes a short option's value glued on too; `--x` is another long option.
                None => match arg.strip_prefix(b"-s") {
                    Some(v) if !arg.starts_with(b"--") => v,
                    _ => continue,
                },
            },
        };
        return (!value.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(value)));
    }
    None
}

fn is_smbd(exe: &Path) -> bool {
    // A binary replaced by an upgrade still runs, as "smbd (deleted)".
    let name = exe.file_name().map(OsStrExt::as_bytes).unwrap_or_default();
    name == b"smbd" || name == b"smbd (deleted)"
}

/// Whether both processes run the same file (the same inode, so a path
/// that was replaced since does not fool it).
fn same_executable(a: u32, b: u32) -> Option<bool> {
    let a = fs::metadata(format!("/proc/{a}/exe")).ok()?;
    let b = fs::metadata(format!("/proc/{b}/exe")).ok()?;
    Some(a.dev() == b.dev() && a.ino() == b.ino())
}

/// The process's sockets: descriptor and inode (`socket:[INODE]` links in
/// its fd table), looking at no more than [`MAX_FDS`] descriptors. smbd
/// accepts its connection before it opens any file, so the connection's
/// descriptor is among the first (procfs lists them in order).
fn socket_fds(pid: u32) -> Vec<(i32, u64)> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    dir.take(MAX_FDS)
        .filter_map(|e| {
            let e = e.ok()?;
            let fd = e.file_name().to_str()?.parse().ok()?;
            let link = fs::read_link(e.path()).ok()?;
            let inode = link.as_os_str().as_bytes().strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
            Some((fd, std::str::from_utf8(inode).ok()?.parse().ok()?))
        })
        .collect()
}

/// The kernel would not lend the process's descriptors (no pidfd_getfd,
/// or no ptrace rights over it): look in the tables instead.
#[derive(Debug)]
struct Refused;

/// Asks each of the process's sockets itself, through a copy of its
/// descriptor, for the remote end of an established TCP connection on one
/// of `ports`; see [`one_address`] for what counts.
fn ask_sockets(pid: u32, sockets: &[(i32, u64)], ports: &[u16]) -> Result<Option<SocketAddr>, Refused> {
    let pidfd = match sys::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
        Err(_) => return Err(Refused),
    };
    let mut remotes = Vec::new();
    for (fd, _) in sockets {
        let sock = match sys::pidfd_getfd(&pidfd, *fd) {
            Ok(sock) => sock,
            // Closed since the fd table was read, or the process is gone.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBADF | libc::ESRCH)) => continue,
            Err(_) => return Err(Refused),
        };
        let Some(local) = sys::local_tcp(&sock) else { continue };
        if !ports.contains(&local.port()) || !sys::established(&sock) {
            continue;
        }
        if let Some(remote) = sys::peer(&sock) {
            remotes.push(remote);
        }
    }
    Ok(one_address(remotes))
}

/// The same, from the namespace's tables by socket inode.
fn search_tables(pid: u32, inodes: &HashSet<u64>, ports: &[u16]) -> Option<SocketAddr> {
    let mut remotes = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(file) = File::open(format!("/proc/{pid}/net/{table}")) else { continue };
        // One large buffer: every read of the table walks the kernel's hash again.
        for line in BufReader::with_capacity(256 << 10, file.take(MAX_TABLE)).split(b'\n') {
            let Ok(line) = line else { break };
            let Some(s) = std::str::from_utf8(&line).ok().and_then(tcp::parse_line) else { continue };
            if s.state == ESTABLISHED && ports.contains(&s.local.port()) && inodes.contains(&s.inode) {
                remotes.push(s.remote);
            }
        }
    }
    one_address(remotes)
}

/// The client, when every connection leads to one address (several are
/// multichannel: more connections of the same client); `None` for none,
/// or for a process that talks to more than one.
fn one_address(remotes: Vec<SocketAddr>) -> Option<SocketAddr> {
    let first = *remotes.first()?;
    remotes.iter().all(|r| r.ip() == first.ip()).then_some(first)
}

/// The account name of `uid`, through the system's user database (so
/// directory users of a domain member resolve too), or the number.
fn user_name(uid: u32) -> String {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: all-zero is a valid passwd (null pointers, zero ids).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: pwd, buf and result outlive the call; buf's length is passed.
        let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return uid.to_string();
        }
        // SAFETY: on success pw_name points into buf, NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return name.to_string_lossy().into_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Option<PathBuf> {
        config_from_args(args.iter().map(|a| a.as_bytes()))
    }

    #[test]
    fn config_file_forms() {
        let want = Some(PathBuf::from("/srv/lab/smb.conf"));
        assert_eq!(config(&["smbd", "-s", "/srv/lab/smb.conf", "-D"]), want);
        assert_eq!(config(&["/usr/sbin/smbd", "-D", "-s/srv/lab/smb.conf"]), want);
        assert_eq!(config(&["smbd", "--configfile=/srv/lab/smb.conf"]), want);
        assert_eq!(config(&["smbd", "--foreground", "--configfile", "/srv/lab/smb.conf"]), want);
    }

    #[test]
    fn default_config_and_odd_command_lines() {
        assert_eq!(config(&["smbd", "--foreground", "--no-process-group"]), None);
        assert_eq!(config(&["smbd", "-s"]), None);
        assert_eq!(config(&["smbd", "--configfile="]), None);
        assert_eq!(config(&[]), None);
        // The program name is not an option, whatever it looks like.
        assert_eq!(config(&["-s/x"]), None);
        assert_eq!(config(&["smbd", "--s/x"]), None);
    }

    #[test]
    fn a_live_connection_asked_and_looked_up() {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_served, _) = listener.accept().unwrap();
        let want = client.local_addr().unwrap();
        let me = std::process::id();
        let sockets = socket_fds(me);
        assert!(sockets.len() >= 3, "{sockets:?}");
        // The listener is not established and the client's own end has another local port.
        assert_eq!(ask_sockets(me, &sockets, &[port]).unwrap(), Some(want));
        let inodes = sockets.iter().map(|(_, inode)| *inode).collect();
        assert_eq!(search_tables(me, &inodes, &[port]), Some(want));
        assert_eq!(ask_sockets(me, &sockets, &[1]).unwrap(), None);
        assert_eq!(search_tables(me, &inodes, &[1]), None);
    }

    #[test]
    fn one_client_address_or_none() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(one_address(vec![]), None);
        assert_eq!(one_address(vec![a("10.0.0.2:5000"), a("10.0.0.2:5001")]), Some(a("10.0.0.2:5000")));
        assert_eq!(one_address(vec![a("10.0.0.2:5000"), a("10.0.0.3:5000")]), None);
    }

    #[test]
    fn this_process_serves_no_client() {
        assert_eq!(client_of(std::process::id()), None);
        assert_eq!(client_of(1), None);
        assert_eq!(client_of(u32::MAX), None);
    }

    #[test]
    fn user_names() {
        assert_eq!(user_name(0), "root");
        assert_eq!(user_name(3_999_999_999), "3999999999");
    }
}
