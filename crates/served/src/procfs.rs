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

use crate::tcp::{self, ESTABLISHED};
use crate::SAMBA;

/// SMB over TCP, and over NetBIOS.
const SMB_PORTS: [u16; 2] = [445, 139];
/// An smbd child holds a few dozen descriptors; more than this is not one.
const MAX_FDS: usize = 4096;
/// A namespace's TCP table; a line is 150 bytes, so this is ~100 000 sockets.
const MAX_TABLE: u64 = 16 << 20;
const MAX_CMDLINE: u64 = 64 << 10;

/// For a process that serves one client connection (a Samba smbd child:
/// its executable's file name is `smbd` and its parent runs the same
/// file), the client it serves: the address and port at the other end of
/// its established TCP connection on local port 445 or 139, found through
/// its socket descriptors in its own network namespace's tables, and the
/// user of its real uid. `None` for anything else: the smbd master, its
/// helpers (no such connection), any other program, a process that holds
/// connections to more than one address, or one that is gone.
///
/// The user is whoever the process runs as when asked: before the client
/// has logged in that is root, and a connection carrying sessions of
/// several users runs as each in turn. Samba's own account of the session
/// comes from [`crate::samba_sessions`].
pub fn client_of(pid: u32) -> Option<Client> {
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    if !is_smbd(&exe) {
        return None;
    }
    let parent = mamori_proc::read_stat(pid)?.ppid;
    // The master's parent is init, or whatever started it: never smbd.
    if parent <= 1 || !same_executable(pid, parent)? {
        return None;
    }
    let sockets = socket_inodes(pid);
    if sockets.is_empty() {
        return None;
    }
    let remote = client_connection(pid, &sockets)?;
    let uid = mamori_proc::read_status(pid)?.uid?;
    Some(Client {
        server: SAMBA.to_string(),
        address: remote.ip().to_string(),
        port: remote.port(),
        user: user_name(uid),
        ..Client::default()
    })
}

/// The smb.conf an smbd process was started with (`-s X`, `-sX`,
/// `--configfile=X`, `--configfile X`), as given on its command line, or
/// `None` when it uses the default (or is gone).
pub fn samba_config(pid: u32) -> Option<PathBuf> {
    let mut cmdline = Vec::new();
    File::open(format!("/proc/{pid}/cmdline")).ok()?.take(MAX_CMDLINE).read_to_end(&mut cmdline).ok()?;
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

/// The inodes of the process's sockets (`socket:[INODE]` links in its fd
/// table), looking at no more than [`MAX_FDS`] descriptors.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else { return HashSet::new() };
    dir.take(MAX_FDS)
        .filter_map(|e| {
            let link = fs::read_link(e.ok()?.path()).ok()?;
            let inode = link.as_os_str().as_bytes().strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
            std::str::from_utf8(inode).ok()?.parse().ok()
        })
        .collect()
}

/// The remote end of the process's established SMB connections, when they
/// all lead to one address.
fn client_connection(pid: u32, sockets: &HashSet<u64>) -> Option<SocketAddr> {
    let mut found: Option<SocketAddr> = None;
    for table in ["tcp", "tcp6"] {
        let Ok(file) = File::open(format!("/proc/{pid}/net/{table}")) else { continue };
        for line in BufReader::new(file.take(MAX_TABLE)).split(b'\n') {
            let Ok(line) = line else { break };
            let Some(s) = std::str::from_utf8(&line).ok().and_then(tcp::parse_line) else { continue };
            if s.state != ESTABLISHED || !SMB_PORTS.contains(&s.local.port()) || !sockets.contains(&s.inode) {
                continue;
            }
            match found {
                None => found = Some(s.remote),
                // Multichannel: more connections of the same client.
                Some(f) if f.ip() == s.remote.ip() => {}
                Some(_) => return None,
            }
        }
    }
    found
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
