//! Before-images of large files by range.
//!
//! Copying a 100 GiB disk image whole because a program opened it to write
//! would cost 100 GiB and minutes while the program waits. Instead the vault
//! pins the inode (so the file itself cannot vanish) and keeps, in a sparse
//! object of the file's size, each block just before it is first
//! overwritten; the agent learns of each write from a pre-content event.
//! A restore takes the file as it is now and lays the kept blocks back over it.
//!
//! Kept blocks are not fsynced: the writer waits for each, and an fsync of
//! thousands of scattered blocks takes a second. An agent killed leaves them
//! in the page cache, which the kernel writes back (within 30 s by default);
//! a power cut in those seconds may lose a kept block, as it may lose the
//! write that followed it.
//!
//! Files of an entry `N` of this kind:
//!
//! ```text
//! objects/N         sparse, the file's size at the start; kept blocks at their offsets
//! objects/N.ranges  one line per kept run: "OFFSET LEN BLAKE3", appended after the data
//! objects/N.inode   a hard link to the file's inode
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Blocks are kept whole: a write of a few bytes keeps the block around them.
pub(crate) const BLOCK: u64 = 4096;

/// A file being kept by range, while the agent runs.
pub(crate) struct Active {
    size: u64,
    /// One bit per block of the original size: kept already.
    kept: Vec<u64>,
    data: File,
    list: File,
}

impl Active {
    /// Creates the entry's files for `file` (of `size` bytes) under `objects`.
    pub(crate) fn create(objects: &Path, object: &str, file: &File, size: u64) -> io::Result<Active> {
        let open = |name: String| OpenOptions::new().write(true).read(true).create_new(true).mode(0o600).open(name);
        let data = open(objects.join(object).display().to_string())?;
        data.set_len(size)?;
        let list = open(objects.join(format!("{object}.ranges")).display().to_string())?;
        crate::sys::link_open_file(file, &objects.join(format!("{object}.inode")))?;
        let blocks = size.div_ceil(BLOCK);
        Ok(Active { size, kept: vec![0; blocks.div_ceil(64) as usize], data, list })
    }

    fn is_kept(&self, block: u64) -> bool {
        self.kept[(block / 64) as usize] & (1 << (block % 64)) != 0
    }

    fn set_kept(&mut self, block: u64) {
        self.kept[(block / 64) as usize] |= 1 << (block % 64);
    }

    /// Whether every block of `[offset, offset + len)` (`len == 0`: to the
    /// end) inside the original size is kept already.
    pub(crate) fn all_kept(&self, offset: u64, len: u64) -> bool {
        let end = if len == 0 { self.size } else { offset.saturating_add(len).min(self.size) };
        offset >= end || (offset / BLOCK..end.div_ceil(BLOCK)).all(|b| self.is_kept(b))
    }

    /// Keeps the blocks of `[offset, offset + len)` not kept yet, read from
    /// `src` (the file itself; reading it through the event's descriptor
    /// makes no new events). `len == 0` means to the end (a truncate).
    /// Returns the bytes newly kept.
    pub(crate) fn keep(&mut self, src: &File, offset: u64, len: u64) -> io::Result<u64> {
        let end = if len == 0 { self.size } else { offset.saturating_add(len).min(self.size) };
        if offset >= end {
            // Past the original end: nothing there to lose.
            return Ok(0);
        }
        let (first, last) = (offset / BLOCK, end.div_ceil(BLOCK));
        let mut kept = 0;
        let mut block = first;
        while block < last {
            if self.is_kept(block) {
                block += 1;
                continue;
            }
            let run_start = block;
            while block < last && !self.is_kept(block) {
                self.set_kept(block);
                block += 1;
            }
            let at = run_start * BLOCK;
            let n = ((block - run_start) * BLOCK).min(self.size - at);
            kept += self.copy_run(src, at, n)?;
        }
        Ok(kept)
    }

    fn copy_run(&mut self, src: &File, at: u64, n: u64) -> io::Result<u64> {
        let mut buf = vec![0u8; n as usize];
        let got = read_full_at(src, &mut buf, at)?;
        // A file already shorter than at the start: keep what is there.
        let buf = &buf[..got];
        self.data.write_all_at(buf, at)?;
        let hash = blake3::hash(buf).to_hex();
        // The data first, then its line: a line never promises unwritten data.
        self.list.write_all(format!("{at} {} {hash}\n", buf.len()).as_bytes())?;
        Ok(buf.len() as u64)
    }
}

/// Lays the kept runs of `object` (listed in `list`) over `out`, checking
/// each against its hash; then cuts `out` to `size`. Fails with
/// `InvalidData` when a kept run no longer matches its hash.
pub(crate) fn overlay(object: &Path, list: &Path, out: &File, size: u64) -> io::Result<()> {
    let data = File::open(object)?;
    for line in BufReader::new(File::open(list)?).lines() {
        let line = line?;
        // A torn last line (a crash while appending) promises nothing.
        let Some((at, len, hash)) = parse(&line) else { continue };
        let mut buf = vec![0u8; len as usize];
        let got = read_full_at(&data, &mut buf, at)?;
        if got != buf.len() || blake3::hash(&buf).to_hex().as_str() != hash {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("kept range at {at} was changed")));
        }
        out.write_all_at(&buf, at)?;
    }
    out.set_len(size)
}

fn parse(line: &str) -> Option<(u64, u64, &str)> {
    let mut it = line.split(' ');
    let at = it.next()?.parse().ok()?;
    let len = it.next()?.parse().ok()?;
    let hash = it.next().filter(|h| h.len() == 64)?;
    Some((at, len, hash))
}

fn read_full_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_block_once_and_lays_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let objects = dir.path().join("objects");
        std::fs::create_dir(&objects).unwrap();
        let path = dir.path().join("disk.img");
        let original: Vec<u8> = (0..10 * BLOCK as usize + 100).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &original).unwrap();
        let file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let mut active = Active::create(&objects, "1", &file, original.len() as u64).unwrap();

        // Unaligned write across blocks 1..=2, then the same again, then the tail and past the end.
        assert_eq!(active.keep(&file, BLOCK + 10, BLOCK).unwrap(), 2 * BLOCK);
        assert_eq!(active.keep(&file, BLOCK + 10, BLOCK).unwrap(), 0);
        assert_eq!(active.keep(&file, 10 * BLOCK, 50).unwrap(), 100);
        assert_eq!(active.keep(&file, 20 * BLOCK, 50).unwrap(), 0);
        file.write_all_at(&[0xAA; 2 * BLOCK as usize], BLOCK + 10).unwrap();
        file.write_all_at(&[0xBB; 500], 10 * BLOCK).unwrap();

        // The pin is the same inode as the live file.
        assert_eq!(std::fs::read(objects.join("1.inode")).unwrap(), std::fs::read(&path).unwrap());
        let restored = dir.path().join("restored");
        std::fs::copy(objects.join("1.inode"), &restored).unwrap();
        let out = File::options().write(true).open(&restored).unwrap();
        overlay(&objects.join("1"), &objects.join("1.ranges"), &out, original.len() as u64).unwrap();
        // Only blocks 1 and 2 and the tail were kept; the write at BLOCK+10 for 2*BLOCK
        // reaches into block 3, which was never announced, so compare what was announced.
        let got = std::fs::read(&restored).unwrap();
        assert_eq!(got.len(), original.len());
        assert_eq!(&got[..3 * BLOCK as usize], &original[..3 * BLOCK as usize]);
        assert_eq!(&got[10 * BLOCK as usize..], &original[10 * BLOCK as usize..]);
    }

    #[test]
    fn a_changed_kept_range_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let objects = dir.path().join("objects");
        std::fs::create_dir(&objects).unwrap();
        let path = dir.path().join("disk.img");
        std::fs::write(&path, vec![7u8; 4 * BLOCK as usize]).unwrap();
        let file = File::open(&path).unwrap();
        let mut active = Active::create(&objects, "1", &file, 4 * BLOCK).unwrap();
        active.keep(&file, 0, BLOCK).unwrap();
        File::options().write(true).open(objects.join("1")).unwrap().write_all_at(b"x", 5).unwrap();
        let out = tempfile::tempfile().unwrap();
        let err = overlay(&objects.join("1"), &objects.join("1.ranges"), &out, 4 * BLOCK).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
