//! Snapshots of a folder's content, to count what an attack changed. Used by
//! the demo and the tests to measure "files touched before the stop".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::{SimError, MARKER};

/// Every regular file under a folder, by relative path, with a content hash.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    files: BTreeMap<PathBuf, [u8; 32]>,
}

/// What differs between two snapshots of one folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Files present in both, with different content.
    pub changed: usize,
    /// Files of the first snapshot that are gone (deleted or renamed away).
    pub missing: usize,
    /// Files of the second snapshot that were not in the first.
    pub added: usize,
}

impl Diff {
    /// Original files that no longer are what they were.
    pub fn touched(&self) -> usize {
        self.changed + self.missing
    }
}

impl Snapshot {
    pub fn take(dir: &Path) -> Result<Snapshot, SimError> {
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).map_err(SimError::io(&d))? {
                let entry = entry.map_err(SimError::io(&d))?;
                let path = entry.path();
                let kind = entry.file_type().map_err(SimError::io(&path))?;
                if kind.is_dir() {
                    stack.push(path);
                } else if kind.is_file() && entry.file_name() != MARKER {
                    let bytes = std::fs::read(&path).map_err(SimError::io(&path))?;
                    let rel = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
                    files.insert(rel, *blake3::hash(&bytes).as_bytes());
                }
            }
        }
        Ok(Snapshot { files })
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn diff(&self, later: &Snapshot) -> Diff {
        let mut d = Diff::default();
        for (path, hash) in &self.files {
            match later.files.get(path) {
                Some(h) if h == hash => {}
                Some(_) => d.changed += 1,
                None => d.missing += 1,
            }
        }
        d.added = later.files.keys().filter(|p| !self.files.contains_key(*p)).count();
        d
    }
}
