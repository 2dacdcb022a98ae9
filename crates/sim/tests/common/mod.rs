//! Helpers shared by the simulator's test binaries.

use std::fs;
use std::path::{Path, PathBuf};

use mamori_sim::MARKER;

/// Every regular file under `dir` except the target marker, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.file_name().unwrap() != MARKER {
            out.push(path);
        }
    }
    out.sort();
    out
}
