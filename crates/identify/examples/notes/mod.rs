//! What the derivation examples share: reading the note collection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mamori_identify::Sample;

/// The notes' texts by family folder.
pub fn read_notes(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for family in std::fs::read_dir(dir).expect("NOTES_DIR").flatten().filter(|e| e.path().is_dir()) {
        let id = family.file_name().to_string_lossy().into_owned();
        for path in files(&family.path()) {
            if let Ok(Sample::Note { text, .. }) = Sample::from_path(&path) {
                out.entry(id.clone()).or_default().push(text);
            }
        }
    }
    out
}

/// Every file under `dir`, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The text with markup dropped (each tag leaves a space).
pub fn strip_tags(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_tag = false;
    for c in line.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}
