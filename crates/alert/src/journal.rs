//! The local journal, by its native protocol: one datagram of fields to
//! journald's socket (`KEY=VALUE` lines; a value with a newline in the
//! length-prefixed binary form), or, when the datagram would be too large
//! for the socket, the same bytes in a sealed memfd passed along it, as
//! `sd_journal_sendv` does. A few lines, so no crate: the ones that exist
//! either hard-code the socket's path (which a test or a container needs
//! to change) or come as a `log` backend.
//!
//! Every event carries `MESSAGE_ID` (fixed per kind, for `journalctl
//! MESSAGE_ID=…` and catalogs) and `MAMORI_*` fields for machines.

use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::JournalConfig;
use crate::output::Output;
use crate::syslog::{facts, syslog_severity};
use crate::text::{text, Language};
use crate::{Alert, AlertError, What};

/// Where journald listens, unless the config says otherwise.
pub const SOCKET: &str = "/run/systemd/journal/socket";

const NAME: &str = "journal";

/// journald reads a datagram in one go; a local write is quick or broken.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Fixed per kind (random once, never changed): `journalctl MESSAGE_ID=…`
/// finds every event of a kind across versions.
fn message_id(alert: &Alert) -> &'static str {
    match alert.what {
        What::Incident { .. } => "fc6779a2f53e4723b554210a80154b59",
        What::RestoreFinished { .. } => "34c37b50d0b04fa9899ffa8fd6dd31db",
        What::Degraded { .. } => "50a76967ca744712a87b0dc3f0d381a2",
        What::Finding(_) => "b258da994d34491a90184fdba9fe3714",
        What::Test => "702195485dc84ebd908a83f776b4489a",
    }
}

struct JournalOutput {
    lang: Language,
    socket: PathBuf,
}

/// The output of `[alerts.journal]`, in its own language or the alerts'.
pub fn output(c: &JournalConfig, lang: Language) -> Result<Box<dyn Output>, AlertError> {
    let socket = c.socket.clone().unwrap_or_else(|| PathBuf::from(SOCKET));
    if !socket.is_absolute() {
        return Err(AlertError::config("journal.socket", "must be an absolute path"));
    }
    Ok(Box::new(JournalOutput { lang: c.lang.unwrap_or(lang), socket }))
}

/// The event's fields, in the order sent.
fn fields(alert: &Alert, lang: Language) -> Vec<(&'static str, String)> {
    let t = text(alert, lang);
    let mut message = t.title;
    for line in &t.lines {
        message.push('\n');
        message.push_str(line);
    }
    let mut f: Vec<(&'static str, String)> = vec![
        ("MESSAGE", message),
        ("MESSAGE_ID", message_id(alert).into()),
        ("PRIORITY", syslog_severity(alert.severity()).to_string()),
        // auth, as the syslog output's default: whoever forwards the
        // journal to syslog files it with the other security events.
        ("SYSLOG_FACILITY", "4".into()),
        ("SYSLOG_IDENTIFIER", "mamori".into()),
        ("MAMORI_ID", alert.id.clone()),
        ("MAMORI_KIND", alert.kind().into()),
        ("MAMORI_SEVERITY", alert.severity().as_str().into()),
        ("MAMORI_TIME", alert.time_rfc3339()),
        ("MAMORI_HOST", alert.host.clone()),
    ];
    let x = facts(alert);
    let mut opt = |key, v: Option<String>| {
        if let Some(v) = v {
            f.push((key, v));
        }
    };
    opt("MAMORI_INCIDENT", x.incident);
    opt("MAMORI_EXE", x.exe);
    opt("MAMORI_PID", x.pid.map(|v| v.to_string()));
    opt("MAMORI_UID", x.uid.map(|v| v.to_string()));
    opt("MAMORI_ACTION", x.action.map(Into::into));
    opt("MAMORI_FILES", x.files.map(|v| v.to_string()));
    opt("MAMORI_FIRST_FILE", x.first_file);
    opt("MAMORI_FAILED", x.failed.map(|v| v.to_string()));
    opt("MAMORI_CLIENT", x.client);
    opt("MAMORI_CLIENT_USER", x.client_user);
    opt("MAMORI_CLIENT_MACHINE", x.client_machine);
    opt("MAMORI_RESTORE", x.restore);
    opt("MAMORI_CAUSE", x.cause.map(Into::into));
    opt("MAMORI_CHECK", x.check);
    opt("MAMORI_TARGET", x.target);
    f
}

/// The native protocol's payload: `KEY=VALUE\n`, or, for a value holding a
/// newline, `KEY\n` + its length (64-bit little-endian) + the value + `\n`.
pub fn serialize(fields: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in fields {
        out.extend_from_slice(key.as_bytes());
        if value.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out
}

impl JournalOutput {
    fn deliver(&self, payload: &[u8]) -> Result<(), String> {
        let sock = UnixDatagram::unbound().map_err(|e| e.to_string())?;
        sock.set_write_timeout(Some(WRITE_TIMEOUT)).map_err(|e| e.to_string())?;
        match sock.send_to(payload, &self.socket) {
            Ok(_) => Ok(()),
            // Larger than a datagram may be: hand the bytes over in a memfd.
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) || e.raw_os_error() == Some(libc::ENOBUFS) => {
                let memfd = sealed_memfd(payload).map_err(|e| format!("memfd for a large entry: {e}"))?;
                send_fd(&sock, &self.socket, &memfd).map_err(|e| self.problem(&e))
            }
            Err(e) => Err(self.problem(&e)),
        }
    }

    fn problem(&self, e: &std::io::Error) -> String {
        let path = self.socket.display();
        match e.kind() {
            ErrorKind::NotFound => format!("no journald: {path} does not exist (is systemd-journald running?)"),
            ErrorKind::ConnectionRefused => format!("no journald: nothing listens on {path}"),
            _ => format!("{path}: {e}"),
        }
    }
}

impl Output for JournalOutput {
    fn name(&self) -> &'static str {
        NAME
    }

    fn send(&mut self, alert: &Alert) -> Result<(), AlertError> {
        self.deliver(&serialize(&fields(alert, self.lang))).map_err(|p| AlertError::send(NAME, p))
    }

    fn target(&self) -> String {
        self.socket.display().to_string()
    }

    fn probe(&mut self) -> Result<String, AlertError> {
        let sock = UnixDatagram::unbound().map_err(|e| AlertError::send(NAME, e))?;
        // A datagram socket's connect only checks that someone is bound there.
        sock.connect(&self.socket).map_err(|e| AlertError::send(NAME, self.problem(&e)))?;
        Ok(format!("journald listens on {}", self.socket.display()))
    }
}

/// A memfd holding `data`, sealed so journald can trust it will not change.
fn sealed_memfd(data: &[u8]) -> std::io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name; the fd returned is ours alone.
    let fd = unsafe { libc::memfd_create(c"mamori-journal".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(fd);
    file.write_all(data)?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    // SAFETY: fcntl on an fd we own.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(OwnedFd::from(file))
}

/// An empty datagram to `path` carrying `fd` (SCM_RIGHTS): journald reads
/// the entry from the fd.
fn send_fd(sock: &UnixDatagram, path: &Path, fd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: zeroed sockaddr_un is valid; the path is bounds-checked below.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(std::io::Error::new(ErrorKind::InvalidInput, "socket path too long"));
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let addr_len = (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t;
    // Room for one fd, aligned as the kernel expects.
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    assert!(space <= std::mem::size_of_val(&control));
    // SAFETY: msghdr is plain data; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_un).cast();
    msg.msg_namelen = addr_len;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points at `space` bytes; CMSG_FIRSTHDR is then non-null.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd.as_raw_fd());
    }
    // SAFETY: a valid socket and a msghdr built above.
    if unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_values_use_the_length_prefixed_form() {
        let bytes = serialize(&[("A", "x=y".into()), ("B", "1\n2".into())]);
        let mut want = b"A=x=y\nB\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"1\n2\n");
        assert_eq!(bytes, want);
    }
}
