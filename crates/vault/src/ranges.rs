//! Before-images of large files by range.
//!
//! Copying a 100 GiB disk image whole because a program opened it to write
//! would cost 100 GiB and minutes while the program waits. Instead the vault
//! pins the inode (so the file itself cannot vanish) and keeps each block
//! just before it is first overwritten; the agent learns of each write from
//! a pre-content event. A restore takes the file as it is now and lays the
//! kept blocks back over it.
//!
//! The writer waits while its block is kept, so keeping is one append to a
//! log (a header and the block in a single write): no sparse file to
//! allocate into, no second file whose times to update. Kept blocks are not
//! fsynced either: an fsync of thousands of scattered blocks takes a second.
//! An agent killed leaves them in the page cache, which the kernel writes
//! back (within 30 s by default); a power cut in those seconds may lose a
//! kept block, as it may lose the write that followed it.
//!
//! Files of an entry `N` of this kind:
//!
//! ```text
//! objects/N         records: OFFSET (u64 LE), LEN (u64 LE), BLAKE3 of the bytes (32), the bytes
//! objects/N.inode   a hard link to the file's inode
//! ```

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Blocks are kept whole: a write of a few bytes keeps the block around them.
pub(crate) const BLOCK: u64 = 4096;
const HEADER: usize = 8 + 8 + 32;

/// A file being kept by range, while the agent runs.
pub(crate) struct Active {
    size: u64,
    /// One bit per block of the original size: kept already.
    kept: Vec<u64>,
    /// The file itself, through the descriptor of the open that began
    /// keeping it: reading it makes no events, and its read-ahead is set
    /// once rather than before every write.
    src: File,
    log: File,
    buf: Vec<u8>,
}

impl Active {
    /// Creates the entry's files for `file` (of `size` bytes) under `objects`.
    pub(crate) fn create(objects: &Path, object: &str, file: &File, size: u64) -> io::Result<Active> {
        let log = OpenOptions::new().append(true).create_new(true).mode(0o600).open(objects.join(object))?;
        crate::sys::link_open_file(file, &objects.join(format!("{object}.inode")))?;
        let src = file.try_clone()?;
        // Writes to a large file land anywhere: reading ahead of each kept
        // block would only read what nobody asked for.
        // SAFETY: plain syscall on an open fd.
        unsafe { libc::posix_fadvise(src.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
        let blocks = size.div_ceil(BLOCK);
        Ok(Active { size, kept: vec![0; blocks.div_ceil(64) as usize], src, log, buf: Vec::new() })
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

    /// Keeps the blocks of `[offset, offset + len)` not kept yet. `len == 0`
    /// means to the end (a truncate). Returns the bytes newly kept.
    pub(crate) fn keep(&mut self, offset: u64, len: u64) -> io::Result<u64> {
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
            kept += self.copy_run(at, n as usize)?;
        }
        Ok(kept)
    }

    fn copy_run(&mut self, at: u64, n: usize) -> io::Result<u64> {
        self.buf.resize(HEADER + n, 0);
        let got = read_full_at(&self.src, &mut self.buf[HEADER..], at)?;
        // A file already shorter than at the start: keep what is there.
        self.buf.truncate(HEADER + got);
        let hash = blake3::hash(&self.buf[HEADER..]);
        self.buf[..8].copy_from_slice(&at.to_le_bytes());
        self.buf[8..16].copy_from_slice(&(got as u64).to_le_bytes());
        self.buf[16..HEADER].copy_from_slice(hash.as_bytes());
        self.log.write_all(&self.buf)?;
        Ok(got as u64)
    }
}

/// Lays the kept blocks of `object` over `out`, checking each against its
/// hash; then cuts `out` to `size`. Fails with `InvalidData` when a kept
/// block no longer matches its hash. A torn last record (a crash while
/// appending) promises nothing and is skipped.
pub(crate) fn overlay(object: &Path, out: &File, size: u64) -> io::Result<()> {
    let mut log = BufReader::new(File::open(object)?);
    let mut header = [0u8; HEADER];
    let mut data = Vec::new();
    loop {
        match log.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        let at = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        if len > 1 << 30 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("kept range at {at} has a bad length")));
        }
        data.resize(len as usize, 0);
        match log.read_exact(&mut data) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
        if blake3::hash(&data).as_bytes() != &header[16..] {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("kept range at {at} was changed")));
        }
        out.write_all_at(&data, at)?;
    }
    out.set_len(size)
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
        assert_eq!(active.keep(BLOCK + 10, BLOCK).unwrap(), 2 * BLOCK);
        assert_eq!(active.keep(BLOCK + 10, BLOCK).unwrap(), 0);
        assert_eq!(active.keep(10 * BLOCK, 50).unwrap(), 100);
        assert_eq!(active.keep(20 * BLOCK, 50).unwrap(), 0);
        file.write_all_at(&[0xAA; 2 * BLOCK as usize], BLOCK + 10).unwrap();
        file.write_all_at(&[0xBB; 500], 10 * BLOCK).unwrap();

        // The pin is the same inode as the live file.
        assert_eq!(std::fs::read(objects.join("1.inode")).unwrap(), std::fs::read(&path).unwrap());
        let restored = dir.path().join("restored");
        std::fs::copy(objects.join("1.inode"), &restored).unwrap();
        let out = File::options().write(true).open(&restored).unwrap();
        overlay(&objects.join("1"), &out, original.len() as u64).unwrap();
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
        active.keep(0, BLOCK).unwrap();
        // A byte of the kept block (past the record's header) changed.
        File::options().write(true).open(objects.join("1")).unwrap().write_all_at(b"x", HEADER as u64 + 5).unwrap();
        let out = tempfile::tempfile().unwrap();
        let err = overlay(&objects.join("1"), &out, 4 * BLOCK).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
