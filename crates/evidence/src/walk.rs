//! Listing a bundle directory without following symbolic links: a link in a
//! bundle could otherwise make the verifier hash (or the exporter copy) a
//! file that is not in the bundle at all.

use std::fs;
use std::path::Path;

use crate::EvidenceError;

#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Regular files, relative and `/`-separated, sorted.
    pub files: Vec<String>,
    /// Directories below the root, parents before children.
    pub dirs: Vec<String>,
    /// Anything else (symlinks, fifos, devices, sockets).
    pub others: Vec<String>,
}

pub(crate) fn walk(root: &Path) -> Result<Listing, EvidenceError> {
    let meta = fs::symlink_metadata(root).map_err(EvidenceError::io(root))?;
    if !meta.is_dir() {
        return Err(EvidenceError::NotRegular(root.to_owned()));
    }
    let mut out = Listing::default();
    visit(root, "", &mut out)?;
    out.files.sort();
    out.others.sort();
    Ok(out)
}

fn visit(dir: &Path, prefix: &str, out: &mut Listing) -> Result<(), EvidenceError> {
    for e in fs::read_dir(dir).map_err(EvidenceError::io(dir))? {
        let e = e.map_err(EvidenceError::io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let kind = e.file_type().map_err(EvidenceError::io(e.path()))?;
        if kind.is_dir() {
            out.dirs.push(rel.clone());
            visit(&e.path(), &rel, out)?;
        } else if kind.is_file() {
            out.files.push(rel);
        } else {
            out.others.push(rel);
        }
    }
    Ok(())
}
