//! `open-files.json`: what each process holds open, from `/proc/PID/fd` and
//! `fdinfo`.

use std::fs;

use serde::{Deserialize, Serialize};

use crate::probe::{read_capped, Notes};

/// A process can hold a million descriptors; the first ones are enough to
/// tell what it was doing, and the cut is noted.
const FD_CAP: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenFile {
    pub pid: u32,
    pub fd: u32,
    /// The link text: a path, `socket:[INODE]`, `pipe:[INODE]`, `anon_inode:...`.
    pub target: Option<String>,
    pub pos: Option<u64>,
    /// Open flags, octal as `fdinfo` prints them (e.g. `0100002`).
    pub flags: Option<String>,
    pub mnt_id: Option<u64>,
}

impl OpenFile {
    /// The inode of a socket descriptor, which is how its connection is found
    /// in the `net` tables.
    pub(crate) fn socket_inode(&self) -> Option<u64> {
        self.target.as_deref()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
    }
}

pub(crate) fn collect(pid: u32, notes: &mut Notes) -> Vec<OpenFile> {
    let dir = format!("/proc/{pid}/fd");
    let Some(entries) = notes.keep(pid, &dir, fs::read_dir(&dir)) else { return Vec::new() };
    let mut fds: Vec<u32> = entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    fds.sort_unstable();
    if fds.len() > FD_CAP {
        notes.add(Some(pid), &dir, format!("{} descriptors, the first {FD_CAP} kept", fds.len()));
        fds.truncate(FD_CAP);
    }
    fds.into_iter()
        .map(|fd| {
            // A descriptor closed since the listing is simply left without
            // details: the process was not stopped for long enough, or a
            // thread of it was not stopped at all.
            let target = fs::read_link(format!("{dir}/{fd}")).ok().map(mamori_event::names::encode);
            let info = read_capped(format!("/proc/{pid}/fdinfo/{fd}").as_ref(), 64 * 1024)
                .map(|(b, _)| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let field = |k: &str| info.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_owned());
            OpenFile {
                pid,
                fd,
                target,
                pos: field("pos:").and_then(|v| v.parse().ok()),
                flags: field("flags:"),
                mnt_id: field("mnt_id:").and_then(|v| v.parse().ok()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom};
    use std::os::fd::AsRawFd;

    #[test]
    fn own_open_file_with_position() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("held");
        let mut f = fs::File::options().create(true).truncate(true).read(true).write(true).open(&p).unwrap();
        f.seek(SeekFrom::Start(1234)).unwrap();
        let mut notes = Notes::default();
        let all = collect(std::process::id(), &mut notes);
        let me = all.iter().find(|o| o.fd == f.as_raw_fd() as u32).unwrap();
        assert_eq!(me.target.as_deref(), Some(p.to_str().unwrap()));
        assert_eq!(me.pos, Some(1234));
        // O_RDWR is 02 in the low bits of the octal flags.
        assert!(me.flags.as_deref().unwrap().ends_with('2'), "{:?}", me.flags);
    }

    #[test]
    fn socket_inode_parse() {
        let o = |t: &str| OpenFile { pid: 1, fd: 3, target: Some(t.into()), pos: None, flags: None, mnt_id: None };
        assert_eq!(o("socket:[12345]").socket_inode(), Some(12345));
        assert_eq!(o("pipe:[12345]").socket_inode(), None);
        assert_eq!(o("/tmp/socket:[1]").socket_inode(), None);
    }
}
