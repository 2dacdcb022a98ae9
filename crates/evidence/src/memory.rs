//! `maps/PID.txt` and, when asked for, `memory/PID-START.bin`: the writable
//! private memory (heap, stack, anonymous mappings) of the stopped processes,
//! where decrypted payloads, keys and ransom notes live.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;

use serde::{Deserialize, Serialize};

use crate::probe::{read_noted, Notes};
use crate::writer::Writer;
use crate::EvidenceError;

/// Even a huge process's map fits in this; more is noted, not kept.
pub(crate) const MAPS_CAP: u64 = 4 * 1024 * 1024;
const CHUNK: usize = 1024 * 1024;

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Region {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub path: String,
}

impl Region {
    /// Writable, private, and not backed by a file: what only this process
    /// holds. `[vvar]`/`[vdso]`-like kernel pages are left out.
    fn is_private_data(&self) -> bool {
        let p = self.perms.as_bytes();
        let anon = self.path.is_empty()
            || self.path == "[heap]"
            || self.path.starts_with("[stack")
            || self.path.starts_with("[anon");
        p.len() == 4 && p[0] == b'r' && p[1] == b'w' && p[3] == b'p' && anon
    }
}

pub(crate) fn parse_maps(text: &str) -> Vec<Region> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.splitn(6, char::is_whitespace);
            let (range, perms) = (f.next()?, f.next()?);
            let (start, end) = range.split_once('-')?;
            // offset, dev and inode, then the path after any padding.
            let path = f.nth(3).unwrap_or("").trim_start().to_owned();
            Some(Region {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                perms: perms.to_owned(),
                path,
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryImage {
    pub pid: u32,
    pub start: String,
    pub end: String,
    pub region: String,
    /// The bundle file; `None` when nothing of the region was kept.
    pub file: Option<String>,
    pub bytes: u64,
    /// Why the image is short of the region, if it is.
    pub skipped: Option<String>,
}

/// Writes `maps/PID.txt` and returns the parsed regions (none if unreadable).
pub(crate) fn write_maps(w: &mut Writer, pid: u32, notes: &mut Notes) -> Result<Vec<Region>, EvidenceError> {
    let Some(text) = read_noted(notes, Some(pid), format!("/proc/{pid}/maps").as_ref(), MAPS_CAP) else {
        return Ok(Vec::new());
    };
    w.put(&format!("maps/{pid}.txt"), &text)?;
    Ok(parse_maps(&String::from_utf8_lossy(&text)))
}

/// Copies the private data regions of `pid` into the bundle while `budget`
/// (bytes, shared by all processes) lasts.
pub(crate) fn dump(
    w: &mut Writer,
    pid: u32,
    regions: &[Region],
    budget: &mut u64,
    notes: &mut Notes,
) -> Result<Vec<MemoryImage>, EvidenceError> {
    let mut out = Vec::new();
    let mem = notes.keep(pid, &format!("/proc/{pid}/mem"), File::open(format!("/proc/{pid}/mem")));
    for r in regions.iter().filter(|r| r.is_private_data()) {
        let mut img = MemoryImage {
            pid,
            start: format!("{:x}", r.start),
            end: format!("{:x}", r.end),
            region: if r.path.is_empty() { "[anon]".to_owned() } else { r.path.clone() },
            file: None,
            bytes: 0,
            skipped: None,
        };
        let Some(mem) = &mem else {
            img.skipped = Some("/proc/PID/mem could not be opened".to_owned());
            out.push(img);
            continue;
        };
        let want = (r.end - r.start).min(*budget);
        let mut stream = None;
        let mut buf = vec![0u8; CHUNK];
        while img.bytes < want {
            let n = (want - img.bytes).min(CHUNK as u64) as usize;
            match mem.read_at(&mut buf[..n], r.start + img.bytes) {
                Ok(0) => {
                    img.skipped = Some(format!("end of data at offset {:#x}", img.bytes));
                    break;
                }
                Ok(k) => {
                    // The file is only created once there is something to put
                    // in it, so a region that cannot be read leaves no file.
                    if stream.is_none() {
                        let name = format!("memory/{pid}-{:x}.bin", r.start);
                        stream = Some(w.open(&name)?);
                        img.file = Some(name);
                    }
                    let s = stream.as_mut().expect("opened above");
                    s.write_all(&buf[..k]).map_err(EvidenceError::io(img.file.as_deref().unwrap_or_default()))?;
                    img.bytes += k as u64;
                }
                Err(e) => {
                    img.skipped = Some(format!("read failed at offset {:#x}: {e}", img.bytes));
                    break;
                }
            }
        }
        *budget -= img.bytes;
        if img.skipped.is_none() && img.bytes < r.end - r.start {
            img.skipped = Some(format!("size cap reached after {} bytes", img.bytes));
        }
        if let Some(s) = stream {
            w.finish(s)?;
        }
        out.push(img);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let text = "55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]\n\
7f1c2a000000-7f1c2a021000 rw-p 00000000 00:00 0 \n\
7f1c2b000000-7f1c2b001000 rw-p 00002000 08:01 1234                       /usr/lib/libc.so.6\n\
7f1c2c000000-7f1c2c001000 r--p 00000000 00:00 0 \n\
7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0                          [stack]\n\
7ffd1d000000-7ffd1d002000 r--p 00000000 00:00 0                          [vvar]\n";
        let r = parse_maps(text);
        assert_eq!(r.len(), 6);
        assert_eq!((r[0].start, r[0].end, r[0].path.as_str()), (0x55d0c0a00000, 0x55d0c0a21000, "[heap]"));
        assert_eq!(r[2].path, "/usr/lib/libc.so.6");
        let picked: Vec<bool> = r.iter().map(Region::is_private_data).collect();
        assert_eq!(picked, [true, true, false, false, true, false]);
    }

    #[test]
    fn path_with_spaces_is_whole() {
        let r = parse_maps("1000-2000 r-xp 00000000 08:01 99   /opt/my app/bin (deleted)\n");
        assert_eq!(r[0].path, "/opt/my app/bin (deleted)");
    }
}
