//! Writing a bundle: every file is created new (never through a symlink),
//! hashed as it is written, and entered in the manifest chain when complete.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::manifest::{self, Chain, MANIFEST};
use crate::seal::{Seal, SealKey};
use crate::EvidenceError;

pub(crate) fn create(path: &Path) -> Result<File, EvidenceError> {
    if let Some(parent) = path.parent() {
        DirBuilder::new().recursive(true).mode(0o700).create(parent).map_err(EvidenceError::io(parent))?;
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(EvidenceError::io(path))
}

/// Makes `out` an empty directory only root can enter.
pub(crate) fn prepare(out: &Path) -> Result<(), EvidenceError> {
    match fs::symlink_metadata(out) {
        Ok(m) if m.is_dir() => {
            if fs::read_dir(out).map_err(EvidenceError::io(out))?.next().is_some() {
                return Err(EvidenceError::NotEmpty(out.to_owned()));
            }
            fs::set_permissions(out, fs::Permissions::from_mode(0o700)).map_err(EvidenceError::io(out))
        }
        Ok(_) => Err(EvidenceError::NotEmpty(out.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new().recursive(true).mode(0o700).create(out).map_err(EvidenceError::io(out))
        }
        Err(e) => Err(EvidenceError::io(out)(e)),
    }
}

pub(crate) struct Writer {
    root: PathBuf,
    chain: Chain,
}

/// A bundle file being written; hand it back to [`Writer::finish`].
pub(crate) struct Stream {
    rel: String,
    path: PathBuf,
    file: File,
    hash: Sha256,
    size: u64,
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Writer {
    pub(crate) fn new(root: &Path) -> Writer {
        Writer { root: root.to_owned(), chain: Chain::new() }
    }

    pub(crate) fn open(&self, rel: &str) -> Result<Stream, EvidenceError> {
        let path = self.root.join(rel);
        let file = create(&path)?;
        Ok(Stream { rel: rel.to_owned(), path, file, hash: Sha256::new(), size: 0 })
    }

    pub(crate) fn finish(&mut self, s: Stream) -> Result<(), EvidenceError> {
        s.file.sync_all().map_err(EvidenceError::io(&s.path))?;
        self.chain.push(&s.rel, s.size, &s.hash.finalize().into());
        Ok(())
    }

    pub(crate) fn put(&mut self, rel: &str, bytes: &[u8]) -> Result<(), EvidenceError> {
        let mut s = self.open(rel)?;
        s.write_all(bytes).map_err(EvidenceError::io(&s.path))?;
        self.finish(s)
    }

    pub(crate) fn put_json(&mut self, rel: &str, value: &impl Serialize) -> Result<(), EvidenceError> {
        let mut text = serde_json::to_vec_pretty(value).expect("bundle records serialise");
        text.push(b'\n');
        self.put(rel, &text)
    }

    /// Writes the manifest and the seal; nothing may be added afterwards.
    pub(crate) fn seal(self, key: &SealKey) -> Result<(Vec<manifest::Entry>, Seal), EvidenceError> {
        let text = manifest::render(self.chain.entries());
        let path = self.root.join(MANIFEST);
        let mut f = create(&path)?;
        f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(EvidenceError::io(&path))?;
        let seal = Seal::new(key, &self.chain.head(), self.chain.entries().len() as u64, text.as_bytes());
        seal.write(&self.root)?;
        sync_tree(&self.root)?;
        Ok((self.chain.into_entries(), seal))
    }
}

/// Makes the directory entries durable too, so a crash right after an
/// incident leaves a whole bundle or a visibly incomplete one.
fn sync_tree(dir: &Path) -> Result<(), EvidenceError> {
    for e in fs::read_dir(dir).map_err(EvidenceError::io(dir))? {
        let e = e.map_err(EvidenceError::io(dir))?;
        if e.file_type().map_err(EvidenceError::io(e.path()))?.is_dir() {
            sync_tree(&e.path())?;
        }
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(EvidenceError::io(dir))
}
