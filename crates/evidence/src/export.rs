//! Taking a bundle off the machine: a plain copy, or one `.tar.zst` file
//! whose single top folder is the bundle.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::probe::open_regular;
use crate::walk::walk;
use crate::EvidenceError;

const SUFFIX: &str = ".tar.zst";

pub(crate) fn is_archive(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(SUFFIX))
}

/// Copies the bundle at `dir` to `dest`, which must not exist: as an archive
/// when `dest` ends in `.tar.zst`, else as a directory (mode 0700, files
/// 0600). A bundle holding anything but regular files and folders is refused,
/// so no link is ever followed out of it.
pub fn export(dir: &Path, dest: &Path) -> Result<(), EvidenceError> {
    if fs::symlink_metadata(dest).is_ok() {
        return Err(EvidenceError::Exists(dest.to_owned()));
    }
    let listing = walk(dir)?;
    if let Some(other) = listing.others.first() {
        return Err(EvidenceError::NotRegular(dir.join(other)));
    }
    if is_archive(dest) {
        let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let top = name.strip_suffix(SUFFIX).filter(|t| !t.is_empty()).unwrap_or("bundle");
        archive(dir, top, &listing.dirs, &listing.files, dest)
    } else {
        DirBuilder::new().mode(0o700).create(dest).map_err(EvidenceError::io(dest))?;
        for d in &listing.dirs {
            let to = dest.join(d);
            DirBuilder::new().mode(0o700).create(&to).map_err(EvidenceError::io(&to))?;
        }
        for f in &listing.files {
            let (from, to) = (dir.join(f), dest.join(f));
            let mut src = open_regular(&from, false).map_err(EvidenceError::io(&from))?;
            let mut dst = crate::writer::create(&to)?;
            io::copy(&mut src, &mut dst).and_then(|_| dst.sync_all()).map_err(EvidenceError::io(&to))?;
        }
        Ok(())
    }
}

fn archive(dir: &Path, top: &str, dirs: &[String], files: &[String], dest: &Path) -> Result<(), EvidenceError> {
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dest)
        .map_err(EvidenceError::io(dest))?;
    let io_err = EvidenceError::io(dest);
    let result = (|| -> io::Result<File> {
        let mut tar = tar::Builder::new(zstd::Encoder::new(BufWriter::new(out), 3)?);
        tar.follow_symlinks(false);
        tar.append_dir(top, dir)?;
        for d in dirs {
            tar.append_dir(format!("{top}/{d}"), dir.join(d))?;
        }
        for f in files {
            tar.append_path_with_name(dir.join(f), format!("{top}/{f}"))?;
        }
        let file = tar.into_inner()?.finish()?.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(file)
    })();
    result.map(drop).map_err(io_err)
}

/// Unpacks an archive made by [`export`] below `into` and returns its single
/// top folder.
pub(crate) fn unpack(archive: &Path, into: &Path) -> Result<PathBuf, EvidenceError> {
    let file = File::open(archive).map_err(EvidenceError::io(archive))?;
    let decoder = zstd::Decoder::new(file).map_err(EvidenceError::io(archive))?;
    let mut tar = tar::Archive::new(decoder);
    // The tar crate refuses absolute and `..` paths and writing through links
    // it created; links themselves are unpacked and then reported by verify.
    tar.unpack(into).map_err(EvidenceError::io(archive))?;
    let mut tops = fs::read_dir(into)
        .map_err(EvidenceError::io(into))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(EvidenceError::io(into))?;
    match (tops.pop(), tops.is_empty()) {
        (Some(top), true) if top.file_type().is_ok_and(|t| t.is_dir()) => Ok(top.path()),
        _ => Err(EvidenceError::BadArchive(archive.to_owned())),
    }
}
