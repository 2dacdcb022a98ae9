//! Decoy files: placed in each protected folder, owned like the folder, so
//! ransomware that can write the folder's files can write them too, and
//! meets them early (the names sort first). Nobody else has a reason to
//! change them; reading them (backups, indexers) is harmless.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustix::fs::{Gid, Mode, OFlags, Uid};
use rustix::io::Errno;
use tracing::warn;

/// Places (or keeps) the decoys; returns the paths of the decoys in place.
///
/// A user who can write a protected folder can plant anything under a
/// decoy's name, and this runs as root: a path-based create would follow a
/// planted link and write (and chown to the user) whatever it points at. So
/// each decoy is created relative to the held folder, never through a link,
/// and owned and moded through its own descriptor. A name taken by
/// something that is not a regular file stays as it is and is no decoy.
pub fn place(folders: &[PathBuf], names: &[String]) -> Result<Vec<PathBuf>> {
    let mut placed = Vec::new();
    for folder in folders {
        let dir = rustix::fs::open(folder, OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .with_context(|| format!("cannot open the protected folder {}", folder.display()))?;
        let meta = folder.symlink_metadata().with_context(|| format!("cannot read {}", folder.display()))?;
        for name in names {
            let path = folder.join(name);
            if place_one(&dir, name, &meta)
                .with_context(|| format!("cannot place the decoy file {}", path.display()))?
            {
                placed.push(path);
            }
        }
    }
    Ok(placed)
}

/// Creates the decoy `name` in `dir` unless it exists; whether a regular
/// file now stands there.
fn place_one(dir: &rustix::fd::OwnedFd, name: &str, folder: &std::fs::Metadata) -> Result<bool> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600)) {
        Ok(fd) => {
            let mut file = std::fs::File::from(fd);
            file.write_all(&content(name))?;
            rustix::fs::fchown(&file, Some(Uid::from_raw(folder.uid())), Some(Gid::from_raw(folder.gid())))?;
            rustix::fs::fchmod(&file, Mode::from_raw_mode(0o664 & (folder.mode() | 0o444)))?;
            Ok(true)
        }
        Err(Errno::EXIST) => {
            let st = rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
            let regular = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
            if !regular {
                warn!(decoy = name, "a decoy's name is taken by something that is not a regular file: left as it is");
            }
            Ok(regular)
        }
        Err(e) => Err(e.into()),
    }
}

/// Puts decoys back while the agent runs: an attacker renames or deletes
/// them, and restore leaves them to the agent (they are not the user's).
/// Placing opens files in protected folders, which the sensor thread must
/// never do (the open would wait on that very thread): it runs on a thread
/// of its own, whose opens the sensor answers at once as mamori's own.
pub struct Keeper {
    folders: Vec<PathBuf>,
    names: Vec<String>,
    known: HashSet<PathBuf>,
    placing: Option<JoinHandle<Result<Vec<PathBuf>>>>,
    last: Instant,
}

/// Often enough that a restore's user finds the decoys back soon after,
/// rarely enough to cost nothing (a few `openat` that fail with EEXIST).
const KEEP_EVERY: Duration = Duration::from_secs(5);

impl Keeper {
    pub fn new(folders: Vec<PathBuf>, names: Vec<String>, placed: &[PathBuf]) -> Keeper {
        Keeper { folders, names, known: placed.iter().cloned().collect(), placing: None, last: Instant::now() }
    }

    /// Called on the agent's tick; returns the decoys newly in place, for
    /// the engine to watch.
    pub fn tick(&mut self) -> Vec<PathBuf> {
        if self.placing.as_ref().is_some_and(JoinHandle::is_finished) {
            let done = self.placing.take().expect("checked above").join();
            match done {
                Ok(Ok(placed)) => return placed.into_iter().filter(|p| self.known.insert(p.clone())).collect(),
                Ok(Err(e)) => warn!("cannot put the decoys back: {e:#}"),
                Err(_) => warn!("putting the decoys back failed"),
            }
        } else if self.placing.is_none() && self.last.elapsed() >= KEEP_EVERY {
            self.last = Instant::now();
            let (folders, names) = (self.folders.clone(), self.names.clone());
            self.placing = Some(std::thread::spawn(move || place(&folders, &names)));
        }
        Vec::new()
    }
}

/// Plausible content of the kind the name promises: a real PDF for `.pdf`,
/// text otherwise, so that a decoy rewritten into ciphertext also looks
/// like damage to the content indicators.
fn content(name: &str) -> Vec<u8> {
    let ext = Path::new(name).extension().and_then(|e| e.to_str()).unwrap_or("");
    let text = "Register 2024 / 台帳\n\
                Customer, Contract no., Amount (JPY), Renewal\n\
                Hokuto Trading, C-2024-0113, 1,200,000, 2025-03-31\n\
                Sakura Design, C-2024-0207, 480,000, 2025-06-30\n\
                Minato Logistics, C-2024-0321, 2,750,000, 2025-09-30\n";
    if ext != "pdf" {
        return text.repeat(8).into_bytes();
    }
    let stream = format!("BT /F1 10 Tf 40 800 Td ({}) Tj ET", text.lines().next().unwrap_or(""));
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, obj) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{obj}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for off in offsets {
        pdf.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    pdf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoys_are_placed_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec![".0-a.pdf".to_owned(), ".0-b.txt".to_owned()];
        let placed = place(&[dir.path().to_path_buf()], &names).unwrap();
        assert_eq!(placed.len(), 2);
        let pdf = std::fs::read(&placed[0]).unwrap();
        assert!(pdf.starts_with(b"%PDF-") && pdf.ends_with(b"%%EOF\n"));
        std::fs::write(&placed[1], b"changed").unwrap();
        place(&[dir.path().to_path_buf()], &names).unwrap();
        assert_eq!(std::fs::read(&placed[1]).unwrap(), b"changed", "an existing decoy is not rewritten");
    }

    /// A user who owns a protected folder plants a dangling link under a
    /// decoy's name, pointing at a file only root may create.
    #[test]
    fn a_planted_link_is_never_followed() {
        let user = mamori_testuser::ordinary();
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let folder = dir.path().join("share");
        std::fs::create_dir(&folder).unwrap();
        std::os::unix::fs::chown(&folder, Some(user.uid), Some(user.gid)).unwrap();
        let target = dir.path().join("root-only");
        let link = folder.join(".0-a.pdf");
        user.run("ln", &["-s", target.to_str().unwrap(), link.to_str().unwrap()]);
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());

        let placed = place(std::slice::from_ref(&folder), &[".0-a.pdf".to_owned(), ".0-b.txt".to_owned()]).unwrap();
        assert!(!target.exists(), "the link's target was created");
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink(), "the planted link was replaced");
        assert_eq!(placed, vec![folder.join(".0-b.txt")]);
        let decoy = folder.join(".0-b.txt").metadata().unwrap();
        assert_eq!((decoy.uid(), decoy.gid()), (user.uid, user.gid), "a decoy is owned like its folder");
    }
}
