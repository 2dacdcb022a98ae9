//! What a family does to one file: encrypt the chosen bytes by the chosen
//! method, add the footer, rename.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use memmap2::MmapMut;

use crate::error::SimError;
use crate::family::{Ext, Method, Plan, Rename, Span};
use crate::keystream::{random_bytes, Keystream, RunKey};
use crate::uring::{Ring, RingFile};

const CHUNK: usize = 1 << 20;
const MIB: u64 = 1 << 20;
const FOOTER_LEN: usize = 512;
/// A gzip member's header (deflate, no name, Unix): all that tells gzip.
const GZIP_HEADER: &[u8] = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03";

/// A family's per-file work with everything drawn once per run (key, random
/// extension) already drawn. Shared by reference between worker threads.
pub(crate) struct FileJob {
    plan: Plan,
    key: RunKey,
    ext: Option<String>,
    /// The archivers installed here, which take turns file by file.
    archivers: Vec<Archiver>,
    turn: AtomicUsize,
}

#[derive(Debug, Clone, Copy)]
enum Archiver {
    SevenZip,
    Zip,
}

impl FileJob {
    pub fn new(plan: Plan) -> Result<Self, SimError> {
        let ext = match (plan.method, plan.rename) {
            (Method::NewThenDelete(ext), _) | (_, Rename::Before(ext) | Rename::After(ext) | Rename::AllFirst(ext)) => {
                Some(draw_ext(ext)?)
            }
            _ => None,
        };
        if let Method::IoUring = plan.method {
            // Without this a kernel that refuses io_uring would turn the run
            // into one error per file, which looks like a defence at work.
            Ring::new().map_err(SimError::Uring)?;
        }
        let mut archivers = Vec::new();
        if let Method::Archive = plan.method {
            archivers = [(Archiver::SevenZip, "7z"), (Archiver::Zip, "zip")]
                .into_iter()
                .filter(|(_, program)| installed(program))
                .map(|(a, _)| a)
                .collect();
            // As with io_uring: one error per file would look like a defence at work.
            if archivers.is_empty() {
                return Err(SimError::NoArchiver);
            }
        }
        Ok(FileJob { plan, key: RunKey::random()?, ext, archivers, turn: AtomicUsize::new(0) })
    }

    /// Renames `path` to the run's extension, for families that rename every file first.
    pub fn rename(&self, path: &Path) -> Result<PathBuf, SimError> {
        rename_with_ext(path, self.ext.as_deref().unwrap_or_default())
    }

    pub fn apply(&self, original: &Path) -> Result<(), SimError> {
        match self.plan.method {
            Method::IoUring => return self.apply_through_ring(original),
            Method::Archive => return self.archive(original),
            _ => {}
        }
        let mut path = original.to_path_buf();
        if let (Rename::Before(_), Some(ext)) = (self.plan.rename, &self.ext) {
            path = rename_with_ext(&path, ext)?;
        }
        let mut cipher = self.key.file_cipher(self.plan.cipher)?;
        let (file, end) = self.encrypt(&path, &mut cipher).map_err(SimError::io(&path))?;
        if self.plan.footer {
            let blob: [u8; FOOTER_LEN] = random_bytes()?;
            file.write_all_at(&blob, end).map_err(SimError::io(&path))?;
        }
        drop(file);
        if let (Rename::After(_), Some(ext)) = (self.plan.rename, &self.ext) {
            rename_with_ext(&path, ext)?;
        }
        Ok(())
    }

    /// Puts `original` into an archive with a fresh random password, by the
    /// next archiver's turn, then deletes it.
    fn archive(&self, original: &Path) -> Result<(), SimError> {
        let archiver = self.archivers[self.turn.fetch_add(1, Ordering::Relaxed) % self.archivers.len()];
        let password: String = random_bytes::<12>()?.iter().map(|b| format!("{b:02x}")).collect();
        let (mut cmd, ext) = match archiver {
            Archiver::SevenZip => {
                let mut c = Command::new("7z");
                c.args(["a", "-bd", "-y", "-mhe=on"]).arg(format!("-p{password}"));
                (c, "7z")
            }
            Archiver::Zip => {
                let mut c = Command::new("zip");
                c.args(["-q", "-j", "-P", &password]);
                (c, "zip")
            }
        };
        let archive = with_ext(original, ext);
        let status = cmd
            .arg(&archive)
            .arg(original)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(SimError::io(&archive))?;
        if !status.success() {
            return Err(SimError::Io { path: archive, source: io::Error::other(format!("{archiver:?} {status}")) });
        }
        fs::remove_file(original).map_err(SimError::io(original))
    }

    /// What [`apply`](Self::apply) does for in-place methods, with every
    /// operation on the victim submitted through one io_uring.
    fn apply_through_ring(&self, original: &Path) -> Result<(), SimError> {
        let mut ring = Ring::new().map_err(SimError::Uring)?;
        let mut path = original.to_path_buf();
        if let (Rename::Before(_), Some(ext)) = (self.plan.rename, &self.ext) {
            let new = with_ext(&path, ext);
            ring.rename(&path, &new).map_err(SimError::io(&path))?;
            path = new;
        }
        let mut cipher = self.key.file_cipher(self.plan.cipher)?;
        let footer = if self.plan.footer { Some(random_bytes::<FOOTER_LEN>()?) } else { None };
        ring.with_file(&path, |file| {
            let len = file.len()?;
            encrypt_in_place(file, &ranges(self.plan.span, len)?, len, &mut cipher)?;
            match footer {
                Some(blob) => file.write_all_at(&blob, len),
                None => Ok(()),
            }
        })
        .map_err(SimError::io(&path))?;
        if let (Rename::After(_), Some(ext)) = (self.plan.rename, &self.ext) {
            ring.rename(&path, &with_ext(&path, ext)).map_err(SimError::io(&path))?;
        }
        Ok(())
    }

    /// Returns the file that now holds the ciphertext and where it ends.
    fn encrypt(&self, path: &Path, cipher: &mut Keystream) -> std::io::Result<(File, u64)> {
        match self.plan.method {
            Method::InPlace => {
                let mut file = open_rw(path)?;
                let len = file.metadata()?.len();
                encrypt_in_place(&mut file, &ranges(self.plan.span, len)?, len, cipher)?;
                Ok((file, len))
            }
            Method::Mmap => {
                let file = open_rw(path)?;
                let len = file.metadata()?.len();
                if len > 0 {
                    // SAFETY: the mapping is private to this call and the file
                    // belongs to a test target; a concurrent truncation by
                    // another process could fault, which a simulator accepts.
                    let mut map = unsafe { MmapMut::map_mut(&file)? };
                    for range in ranges(self.plan.span, len)? {
                        cipher.apply(range.start, &mut map[range.start as usize..range.end as usize]);
                    }
                    map.flush()?;
                }
                Ok((file, len))
            }
            Method::Truncate | Method::Disguise => {
                let mut data = read_all(path)?;
                encrypt_buf(cipher, &ranges(self.plan.span, data.len() as u64)?, 0, &mut data);
                let header: &[u8] = if matches!(self.plan.method, Method::Disguise) { GZIP_HEADER } else { &[] };
                let mut file = open_opts().write(true).truncate(true).open(path)?;
                file.write_all(header)?;
                file.write_all(&data)?;
                Ok((file, (header.len() + data.len()) as u64))
            }
            Method::Base64 => {
                let mut data = read_all(path)?;
                encrypt_buf(cipher, &ranges(self.plan.span, data.len() as u64)?, 0, &mut data);
                let text = base64::engine::general_purpose::STANDARD.encode(&data);
                // Base64 is longer than its input, so writing from offset 0
                // replaces every original byte without a truncate.
                let file = open_rw(path)?;
                file.write_all_at(text.as_bytes(), 0)?;
                Ok((file, text.len() as u64))
            }
            Method::Wipe => {
                let file = open_rw(path)?;
                let len = file.metadata()?.len();
                let zeros = vec![0u8; CHUNK.min(len as usize)];
                let mut off = 0u64;
                while off < len {
                    let n = CHUNK.min((len - off) as usize);
                    file.write_all_at(&zeros[..n], off)?;
                    off += n as u64;
                }
                Ok((file, len))
            }
            Method::IoUring | Method::Archive => unreachable!("apply hands these methods to their own paths"),
            Method::NewThenDelete(_) => {
                let mut src = open_opts().read(true).open(path)?;
                let len = src.metadata()?.len();
                let spans = ranges(self.plan.span, len)?;
                let dst_path = with_ext(path, self.ext.as_deref().unwrap_or_default());
                let mut dst = open_opts().write(true).create(true).truncate(true).open(&dst_path)?;
                let mut buf = vec![0u8; CHUNK];
                let mut off = 0u64;
                loop {
                    let n = src.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    encrypt_buf(cipher, &spans, off, &mut buf[..n]);
                    dst.write_all(&buf[..n])?;
                    off += n as u64;
                }
                drop(src);
                fs::remove_file(path)?;
                Ok((dst, off))
            }
        }
    }
}

/// Positional I/O on one open file: by system call or through a ring.
trait Positional {
    fn read_exact_at(&mut self, buf: &mut [u8], off: u64) -> io::Result<()>;
    fn write_all_at(&mut self, buf: &[u8], off: u64) -> io::Result<()>;
}

impl Positional for File {
    fn read_exact_at(&mut self, buf: &mut [u8], off: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, off)
    }

    fn write_all_at(&mut self, buf: &[u8], off: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, off)
    }
}

impl Positional for RingFile<'_> {
    fn read_exact_at(&mut self, buf: &mut [u8], off: u64) -> io::Result<()> {
        RingFile::read_exact_at(self, buf, off)
    }

    fn write_all_at(&mut self, buf: &[u8], off: u64) -> io::Result<()> {
        RingFile::write_all_at(self, buf, off)
    }
}

/// Reads, encrypts and writes back `spans` of a `len`-byte file, a chunk at
/// a time, so memory stays bounded on disk images.
fn encrypt_in_place(
    file: &mut impl Positional,
    spans: &[Range<u64>],
    len: u64,
    cipher: &mut Keystream,
) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK.min(len as usize)];
    for range in spans {
        let mut off = range.start;
        while off < range.end {
            let n = CHUNK.min((range.end - off) as usize);
            file.read_exact_at(&mut buf[..n], off)?;
            cipher.apply(off, &mut buf[..n]);
            file.write_all_at(&buf[..n], off)?;
            off += n as u64;
        }
    }
    Ok(())
}

/// The byte ranges of a `len`-byte file that `span` encrypts.
fn ranges(span: Span, len: u64) -> Result<Vec<Range<u64>>, std::io::Error> {
    Ok(match span {
        Span::Whole => std::iter::once(0..len).collect(),
        Span::Intermittent if len >= 10 * MIB => {
            (0..len).step_by(10 * MIB as usize).map(|s| s..(s + MIB).min(len)).collect()
        }
        Span::Intermittent => std::iter::once(0..len.min(4 * MIB)).collect(),
        Span::AfterHeader => {
            let [r]: [u8; 1] = random_bytes().map_err(std::io::Error::other)?;
            // Tiny files keep at most half, so something always changes.
            let header = (16 + u64::from(r) % 241).min(len / 2);
            std::iter::once(header..len).collect()
        }
    })
}

/// Encrypts the parts of `buf`, the file's bytes from offset `base`, that lie
/// inside `spans`, at their true file offsets.
fn encrypt_buf(cipher: &mut Keystream, spans: &[Range<u64>], base: u64, buf: &mut [u8]) {
    let end = base + buf.len() as u64;
    for r in spans {
        let (start, stop) = (r.start.max(base), r.end.min(end));
        if start < stop {
            cipher.apply(start, &mut buf[(start - base) as usize..(stop - base) as usize]);
        }
    }
}

fn open_opts() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.custom_flags(libc::O_NOFOLLOW);
    o
}

fn open_rw(path: &Path) -> std::io::Result<File> {
    open_opts().read(true).write(true).open(path)
}

fn read_all(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    open_opts().read(true).open(path)?.read_to_end(&mut data)?;
    Ok(data)
}

fn with_ext(path: &Path, ext: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

fn rename_with_ext(path: &Path, ext: &str) -> Result<PathBuf, SimError> {
    let new = with_ext(path, ext);
    fs::rename(path, &new).map_err(SimError::io(path))?;
    Ok(new)
}

/// Whether `program` is an executable file in one of `$PATH`'s folders.
fn installed(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            fs::metadata(dir.join(program)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

fn draw_ext(ext: Ext) -> Result<String, SimError> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    Ok(match ext {
        Ext::Fixed(s) => s.to_owned(),
        Ext::Random9 => {
            let bytes: [u8; 9] = random_bytes()?;
            bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::BASE;
    use crate::keystream::CipherKind;

    const RING: Plan = Plan { method: Method::IoUring, ..BASE };

    /// The ring path honours the plan's other behaviours too: rename before
    /// the first write, footer, header-sparing span, XOR cipher.
    #[test]
    fn io_uring_composes_with_rename_before_footer_and_span() {
        let plan = Plan {
            span: Span::AfterHeader,
            cipher: CipherKind::XorByte,
            rename: Rename::Before(Ext::Fixed("first")),
            footer: true,
            ..RING
        };
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a.txt");
        let original: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&file, &original).unwrap();
        FileJob::new(plan).unwrap().apply(&file).unwrap();
        assert!(!file.exists());
        let new = fs::read(tmp.path().join("a.txt.first")).unwrap();
        assert_eq!(new.len(), original.len() + FOOTER_LEN);
        assert_eq!(new[..16], original[..16]);
        let key = new[original.len() - 1] ^ original[original.len() - 1];
        assert_ne!(key, 0);
        let header = original.iter().zip(&new).take_while(|(a, b)| a == b).count();
        assert!((16..=256).contains(&header), "{header}");
        assert!(original[header..].iter().zip(&new[header..]).all(|(a, b)| a ^ key == *b));
    }

    #[test]
    fn a_disguise_is_a_gzip_header_and_the_ciphertext_of_everything() {
        let plan = Plan { method: Method::Disguise, cipher: CipherKind::XorByte, ..BASE };
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a.docx");
        let original: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&file, &original).unwrap();
        FileJob::new(plan).unwrap().apply(&file).unwrap();
        let new = fs::read(&file).unwrap();
        assert_eq!(new.len(), GZIP_HEADER.len() + original.len());
        assert_eq!(&new[..GZIP_HEADER.len()], GZIP_HEADER);
        let body = &new[GZIP_HEADER.len()..];
        let key = body[0] ^ original[0];
        assert_ne!(key, 0);
        assert!(original.iter().zip(body).all(|(a, b)| a ^ key == *b));
    }

    #[test]
    fn io_uring_refuses_to_follow_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real.txt");
        fs::write(&real, b"keep me").unwrap();
        let link = tmp.path().join("link.txt");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = FileJob::new(RING).unwrap().apply(&link).unwrap_err();
        assert!(matches!(&err, SimError::Io { source, .. } if source.raw_os_error() == Some(libc::ELOOP)), "{err}");
        assert_eq!(fs::read(&real).unwrap(), b"keep me");
    }
}
