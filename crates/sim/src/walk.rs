//! The victim list: a sorted, depth-first walk that never leaves the target.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::note::NOTE_NAME;
use crate::target::MARKER;

/// What one walk found. Hidden files are included, as real ransomware
/// includes them; only the marker and our own ransom notes are left out.
pub(crate) struct Tree {
    pub files: Vec<PathBuf>,
    /// Every directory, the root first, in the order the walk entered them.
    pub dirs: Vec<PathBuf>,
    /// Directories that could not be listed.
    pub errors: usize,
}

/// Symlinks are never followed and other filesystems never entered, so
/// nothing outside the target's own tree can end up on the list.
pub(crate) fn walk(root: &Path) -> Tree {
    let mut tree = Tree { files: Vec::new(), dirs: Vec::new(), errors: 0 };
    let dev = match fs::symlink_metadata(root) {
        Ok(meta) => meta.dev(),
        Err(_) => {
            tree.errors += 1;
            return tree;
        }
    };
    visit(root, dev, &mut tree);
    tree
}

fn visit(dir: &Path, dev: u64, tree: &mut Tree) {
    tree.dirs.push(dir.to_path_buf());
    let mut entries: Vec<_> = match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(Result::ok).collect(),
        Err(_) => {
            tree.errors += 1;
            return;
        }
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name == MARKER || name == NOTE_NAME {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(entry.path()) else {
            tree.errors += 1;
            continue;
        };
        if meta.is_dir() && meta.dev() == dev {
            visit(&entry.path(), dev, tree);
        } else if meta.file_type().is_file() {
            tree.files.push(entry.path());
        }
    }
}
