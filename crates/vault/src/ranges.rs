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
//!
//! A record holds at most a MiB, so keeping a run of any length never holds
//! more than that in memory. A hole (found with `SEEK_DATA`) is a record
//! with the top bit of LEN set, BLAKE3 of its OFFSET and LEN, and no bytes:
//! it costs nothing from the budget, and a restore makes it read as zeros.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::FileExt;

/// Blocks are kept whole: a write of a few bytes keeps the block around them.
pub(crate) const BLOCK: u64 = 4096;
const HEADER: usize = 8 + 8 + 32;
/// The most bytes kept in one record, and so the most held in memory at
/// once, however large the run a write or truncate puts at risk.
const CHUNK: u64 = 1 << 20;
/// Set in a record's LEN: the range was a hole (no bytes follow), to read
/// back as zeros. Data records are never this long.
const HOLE: u64 = 1 << 63;

/// A file being kept by range, while the agent runs.
pub(crate) struct Active {
    /// Its owner when keeping began: whose share of the budget its blocks take.
    pub(crate) uid: u32,
    size: u64,
    /// Blocks of the original size kept already (data or hole).
    kept: Runs,
    /// The file itself, through the descriptor of the open that began
    /// keeping it: reading it makes no events, and its read-ahead is set
    /// once rather than before every write.
    src: File,
    log: File,
    /// Bytes of `log` written whole: a record cut short (the disk filled)
    /// is cut off again, so the records after it stay readable.
    log_len: u64,
    buf: Vec<u8>,
}

/// What [`Active::keep`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kept {
    /// Bytes of data newly kept (holes cost nothing).
    pub bytes: u64,
    /// Some of the range was left unkept: it would have taken more than the room given.
    pub refused: bool,
}

impl Active {
    /// Creates the entry's files for `file` (of `size` bytes) in the
    /// directory `objects`, in the vault whose directory is `vault`.
    pub(crate) fn create(
        objects: BorrowedFd<'_>,
        object: &str,
        file: &File,
        size: u64,
        uid: u32,
        vault: &File,
    ) -> io::Result<Active> {
        let flags = libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_EXCL;
        let log = crate::sys::open_in(objects, OsStr::new(object), flags, 0o600)?;
        crate::mounts::link(file, objects, OsStr::new(&format!("{object}.inode")), vault)?;
        let src = file.try_clone()?;
        // Writes to a large file land anywhere: reading ahead of each kept
        // block would only read what nobody asked for.
        // SAFETY: plain syscall on an open fd.
        unsafe { libc::posix_fadvise(src.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
        Ok(Active { uid, size, kept: Runs::default(), src, log, log_len: 0, buf: Vec::new() })
    }

    /// The blocks `[first, last)` that `[offset, offset + len)` (`len == 0`:
    /// to the end) touches inside the original size, if any.
    fn blocks(&self, offset: u64, len: u64) -> Option<(u64, u64)> {
        let end = if len == 0 { self.size } else { offset.saturating_add(len).min(self.size) };
        (offset < end).then(|| (offset / BLOCK, end.div_ceil(BLOCK)))
    }

    /// Whether every block of `[offset, offset + len)` (`len == 0`: to the
    /// end) inside the original size is kept already.
    pub(crate) fn all_kept(&self, offset: u64, len: u64) -> bool {
        self.blocks(offset, len).is_none_or(|(first, last)| self.kept.covers(first, last))
    }

    /// Keeps the blocks of `[offset, offset + len)` not kept yet. `len == 0`
    /// means to the end (a truncate). Keeps no more than `room` bytes of
    /// data: what would take more is left unkept and reported as refused.
    pub(crate) fn keep(&mut self, offset: u64, len: u64, room: u64) -> io::Result<Kept> {
        // Past the original end: nothing there to lose.
        let Some((first, last)) = self.blocks(offset, len) else { return Ok(Kept { bytes: 0, refused: false }) };
        let mut done = Kept { bytes: 0, refused: false };
        let mut from = first;
        while let Some((a, b)) = self.kept.first_gap(from, last).filter(|_| !done.refused) {
            from = b;
            let (at, end) = (a * BLOCK, (b * BLOCK).min(self.size));
            // A run of one chunk is read as it is, holes and all: asking
            // where the holes are would cost two more system calls per write.
            if end - at <= CHUNK {
                self.keep_data(at, end, room, &mut done)?;
                continue;
            }
            let mut pos = at;
            while pos < end && !done.refused {
                let (data, hole) = self.next_data(pos, end)?;
                if data > pos {
                    self.keep_hole(pos, data)?;
                }
                if data < hole {
                    self.keep_data(data, hole, room, &mut done)?;
                }
                pos = hole;
            }
        }
        Ok(done)
    }

    /// The next data in `[pos, end)`, block-aligned: `(start, end)`, with
    /// `start == end` (both `end`) when the rest is a hole. A hole is the
    /// filesystem's own: `SEEK_DATA` skips it without reading it.
    fn next_data(&self, pos: u64, end: u64) -> io::Result<(u64, u64)> {
        let seek = |at: u64, whence| {
            // SAFETY: plain syscall on an open fd. It moves the offset of
            // the agent's own description, which is only ever read by offset.
            let r = unsafe { libc::lseek(self.src.as_raw_fd(), at as libc::off_t, whence) };
            if r < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(r as u64)
            }
        };
        let data = match seek(pos, libc::SEEK_DATA) {
            Ok(d) => (d / BLOCK * BLOCK).max(pos),
            // No data after `pos` (or the file is shorter now): a hole to the end.
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return Ok((end, end)),
            Err(e) => return Err(e),
        };
        if data >= end {
            return Ok((end, end));
        }
        let hole = seek(data, libc::SEEK_HOLE)?.div_ceil(BLOCK) * BLOCK;
        Ok((data, hole.max(data + BLOCK).min(end)))
    }

    /// Keeps the bytes of `[at, end)` (block-aligned, but for the file's end)
    /// in records of at most a chunk, each only if it fits in what is left of `room`.
    fn keep_data(&mut self, mut at: u64, end: u64, room: u64, done: &mut Kept) -> io::Result<()> {
        while at < end {
            let n = (end - at).min(CHUNK);
            if done.bytes + n > room {
                done.refused = true;
                return Ok(());
            }
            self.buf.resize(HEADER + n as usize, 0);
            let got = read_full_at(&self.src, &mut self.buf[HEADER..], at)?;
            // A file already shorter than at the start: keep what is there.
            self.buf.truncate(HEADER + got);
            let hash = blake3::hash(&self.buf[HEADER..]);
            self.buf[..8].copy_from_slice(&at.to_le_bytes());
            self.buf[8..16].copy_from_slice(&(got as u64).to_le_bytes());
            self.buf[16..HEADER].copy_from_slice(hash.as_bytes());
            self.append_record()?;
            self.kept.insert(at / BLOCK, (at + n).div_ceil(BLOCK));
            done.bytes += got as u64;
            at += n;
        }
        Ok(())
    }

    /// Records `[at, end)` as a hole: a later write there is then known to
    /// overwrite zeros, and a restore puts the zeros back.
    fn keep_hole(&mut self, at: u64, end: u64) -> io::Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(&at.to_le_bytes());
        self.buf.extend_from_slice(&((end - at) | HOLE).to_le_bytes());
        let hash = blake3::hash(&self.buf[..16]);
        self.buf.extend_from_slice(hash.as_bytes());
        self.append_record()?;
        self.kept.insert(at / BLOCK, end.div_ceil(BLOCK));
        Ok(())
    }

    /// Appends the record in `buf` in one write, the block kept with its
    /// header; a record the disk had no room for is cut off again.
    fn append_record(&mut self) -> io::Result<()> {
        match self.log.write_all(&self.buf) {
            Ok(()) => {
                self.log_len += self.buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.log.set_len(self.log_len);
                Err(e)
            }
        }
    }
}

/// Runs of kept blocks, `start -> end` (half-open), disjoint and merged
/// where they touch. Its size follows what was kept, not the file's size:
/// a whole sparse terabyte kept at a truncate is one run.
#[derive(Default)]
struct Runs(BTreeMap<u64, u64>);

impl Runs {
    fn covers(&self, first: u64, last: u64) -> bool {
        self.0.range(..=first).next_back().is_some_and(|(_, &end)| end >= last)
    }

    /// The first run of blocks in `[from, last)` not kept yet.
    fn first_gap(&self, from: u64, last: u64) -> Option<(u64, u64)> {
        let start = match self.0.range(..=from).next_back() {
            Some((_, &end)) if end > from => end,
            _ => from,
        };
        let end = self.0.range(start..).next().map_or(last, |(&s, _)| s.min(last));
        (start < last).then_some((start, end))
    }

    fn insert(&mut self, mut start: u64, mut end: u64) {
        if let Some((&s, &e)) = self.0.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
            }
        }
        while let Some((&s, &e)) = self.0.range(start..=end).next() {
            self.0.remove(&s);
            end = end.max(e);
        }
        self.0.insert(start, end);
    }
}

/// Lays the kept blocks of `log` over `out`, checking each against its
/// hash; then cuts `out` to `size`. Fails with `InvalidData` when a kept
/// block no longer matches its hash or lies outside the file. A torn last
/// record (a crash while appending) promises nothing and is skipped. Reads
/// a chunk at a time, however long a record says it is.
pub(crate) fn overlay(log: &File, out: &File, size: u64) -> io::Result<()> {
    let log_len = log.metadata()?.len();
    let mut header = [0u8; HEADER];
    let mut data = vec![0u8; CHUNK as usize];
    let mut pos = 0u64;
    while pos + HEADER as u64 <= log_len {
        log.read_exact_at(&mut header, pos)?;
        pos += HEADER as u64;
        let at = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
        let raw = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        let (len, hole) = (raw & !HOLE, raw & HOLE != 0);
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("kept range at {at} {what}"));
        if at.checked_add(len).is_none_or(|end| end > size) {
            return Err(bad("lies outside the file"));
        }
        if hole {
            if blake3::hash(&header[..16]).as_bytes() != &header[16..] {
                return Err(bad("was changed"));
            }
            punch_zeros(out, at, len, &mut data)?;
            continue;
        }
        if pos + len > log_len {
            break;
        }
        // Written before it is checked: `out` is the restore's temp file,
        // thrown away when the check fails.
        let mut hasher = blake3::Hasher::new();
        let mut done = 0;
        while done < len {
            let n = (len - done).min(CHUNK) as usize;
            log.read_exact_at(&mut data[..n], pos + done)?;
            hasher.update(&data[..n]);
            out.write_all_at(&data[..n], at + done)?;
            done += n as u64;
        }
        pos += len;
        if hasher.finalize().as_bytes() != &header[16..] {
            return Err(bad("was changed"));
        }
    }
    out.set_len(size)
}

/// Makes `[at, at + len)` of `out` read as zeros: a hole where the
/// filesystem can punch one, else zeros written (only over what `out`
/// holds: past its end it reads as zeros already).
fn punch_zeros(out: &File, at: u64, len: u64, buf: &mut [u8]) -> io::Result<()> {
    let end = (at + len).min(out.metadata()?.len());
    if at >= end {
        return Ok(());
    }
    // SAFETY: plain syscall on an open fd.
    let punched = unsafe {
        libc::fallocate(
            out.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            at as libc::off_t,
            (end - at) as libc::off_t,
        )
    };
    if punched == 0 {
        return Ok(());
    }
    buf.fill(0);
    let mut pos = at;
    while pos < end {
        let n = (end - pos).min(buf.len() as u64) as usize;
        out.write_all_at(&buf[..n], pos)?;
        pos += n as u64;
    }
    Ok(())
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
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn keeps_each_block_once_and_lays_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let objects = dir.path().join("objects");
        std::fs::create_dir(&objects).unwrap();
        let path = dir.path().join("disk.img");
        let original: Vec<u8> = (0..10 * BLOCK as usize + 100).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &original).unwrap();
        let file = File::options().read(true).write(true).open(&path).unwrap();
        let objects_fd = File::open(&objects).unwrap();
        let vault = File::open(dir.path()).unwrap();
        let mut active = Active::create(objects_fd.as_fd(), "1", &file, original.len() as u64, 0, &vault).unwrap();

        // Unaligned write across blocks 1..=2, then the same again, then the tail and past the end.
        let kept = |bytes| Kept { bytes, refused: false };
        assert_eq!(active.keep(BLOCK + 10, BLOCK, u64::MAX).unwrap(), kept(2 * BLOCK));
        assert_eq!(active.keep(BLOCK + 10, BLOCK, u64::MAX).unwrap(), kept(0));
        assert_eq!(active.keep(10 * BLOCK, 50, u64::MAX).unwrap(), kept(100));
        assert_eq!(active.keep(20 * BLOCK, 50, u64::MAX).unwrap(), kept(0));
        file.write_all_at(&[0xAA; 2 * BLOCK as usize], BLOCK + 10).unwrap();
        file.write_all_at(&[0xBB; 500], 10 * BLOCK).unwrap();

        // The pin is the same inode as the live file.
        assert_eq!(std::fs::read(objects.join("1.inode")).unwrap(), std::fs::read(&path).unwrap());
        let restored = dir.path().join("restored");
        std::fs::copy(objects.join("1.inode"), &restored).unwrap();
        let out = File::options().write(true).open(&restored).unwrap();
        overlay(&File::open(objects.join("1")).unwrap(), &out, original.len() as u64).unwrap();
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
        let objects_fd = File::open(&objects).unwrap();
        let vault = File::open(dir.path()).unwrap();
        let mut active = Active::create(objects_fd.as_fd(), "1", &file, 4 * BLOCK, 0, &vault).unwrap();
        active.keep(0, BLOCK, u64::MAX).unwrap();
        // A byte of the kept block (past the record's header) changed.
        File::options().write(true).open(objects.join("1")).unwrap().write_all_at(b"x", HEADER as u64 + 5).unwrap();
        let out = tempfile::tempfile().unwrap();
        let err = overlay(&File::open(objects.join("1")).unwrap(), &out, 4 * BLOCK).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn runs_merge_and_report_their_gaps() {
        let mut runs = Runs::default();
        runs.insert(10, 20);
        runs.insert(30, 40);
        assert!(runs.covers(12, 20) && !runs.covers(12, 21) && !runs.covers(5, 12));
        assert_eq!(runs.first_gap(0, 50), Some((0, 10)));
        assert_eq!(runs.first_gap(10, 50), Some((20, 30)));
        assert_eq!(runs.first_gap(35, 40), None);
        runs.insert(20, 30);
        assert_eq!(runs.0.len(), 1, "touching runs merge: {:?}", runs.0);
        assert!(runs.covers(10, 40));
        runs.insert(0, 1 << 40);
        assert_eq!(runs.0.into_iter().collect::<Vec<_>>(), vec![(0, 1 << 40)]);
    }
}
