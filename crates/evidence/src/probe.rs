//! Reading `/proc` of processes that may vanish or hide: every read is
//! bounded, and a read that fails becomes a [`Note`] in the bundle instead of
//! an error, because a bundle with gaps is still evidence and the gaps are
//! themselves worth knowing.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use mamori_userfile::Follow;
use serde::{Deserialize, Serialize};

/// Something the collector could not read, or cut short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    pub what: String,
    pub error: String,
}

#[derive(Debug, Default)]
pub(crate) struct Notes(pub(crate) Vec<Note>);

impl Notes {
    pub(crate) fn add(&mut self, pid: Option<u32>, what: impl Into<String>, error: impl ToString) {
        self.0.push(Note { pid, what: what.into(), error: error.to_string() });
    }

    /// The value of `r`, or `None` with a note saying why not.
    pub(crate) fn keep<T>(&mut self, pid: u32, what: &str, r: io::Result<T>) -> Option<T> {
        r.map_err(|e| self.add(Some(pid), what, e)).ok()
    }
}

/// Opens a regular file to read, never blocking and never through a link
/// unless `follow` (for the magic links of `/proc/PID`, such as `exe`): the
/// collector runs as root at the worst moment (`mamori_userfile`).
pub(crate) fn open_regular(path: &Path, follow: bool) -> io::Result<File> {
    let follow = if follow { Follow::MagicLink } else { Follow::Never };
    Ok(mamori_userfile::open_regular(path, follow)?)
}

/// Up to `cap` bytes of a file, and whether there was more.
pub(crate) fn read_capped(path: &Path, cap: u64) -> io::Result<(Vec<u8>, bool)> {
    let mut buf = Vec::new();
    open_regular(path, false)?.take(cap + 1).read_to_end(&mut buf)?;
    let more = buf.len() as u64 > cap;
    buf.truncate(cap as usize);
    Ok((buf, more))
}

/// Like [`read_capped`], noting a cut as well as a failure.
pub(crate) fn read_noted(notes: &mut Notes, pid: Option<u32>, path: &Path, cap: u64) -> Option<Vec<u8>> {
    let what = path.display().to_string();
    let (bytes, more) = read_capped(path, cap).map_err(|e| notes.add(pid, &what, e)).ok()?;
    if more {
        notes.add(pid, path.display().to_string(), format!("truncated to {cap} bytes"));
    }
    Some(bytes)
}

/// NUL-separated strings (cmdline, environ), escaped as names are
/// (`mamori_event::names`): arguments are often paths, kept to the byte.
pub(crate) fn split_nul(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| mamori_event::names::encode(OsStr::from_bytes(s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_read_reports_the_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_capped(&p, 4).unwrap(), (b"0123".to_vec(), true));
        assert_eq!(read_capped(&p, 10).unwrap(), (b"0123456789".to_vec(), false));
        let mut notes = Notes::default();
        assert_eq!(read_noted(&mut notes, Some(1), &p, 4), Some(b"0123".to_vec()));
        assert_eq!(read_noted(&mut notes, Some(1), &dir.path().join("gone"), 4), None);
        assert_eq!(notes.0.len(), 2, "{notes:?}");
    }

    /// What an attacker can leave where a path is expected: neither may
    /// block the reader or lead it elsewhere.
    #[test]
    fn fifos_and_links_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads the NUL-terminated path only.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"secret").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (f, l) = (fifo, link.clone());
        std::thread::spawn(move || tx.send((read_capped(&f, 4).is_err(), read_capped(&l, 4).is_err())));
        let refused = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("the reads returned");
        assert_eq!(refused, (true, true));
        assert!(open_regular(&link, true).is_ok(), "a link may be followed when asked to");
    }

    #[test]
    fn nul_split_drops_the_terminator() {
        assert_eq!(split_nul(b"a=1\0b=\xff\0"), vec!["a=1".to_owned(), "b=\\xff".to_owned()]);
    }
}
