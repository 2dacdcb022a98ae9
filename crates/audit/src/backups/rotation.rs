//! Which part of each repository the next check reads, so that successive
//! runs read all of it (`restic check --read-data-subset=K/N`, K = 1…N in
//! turn). Kept in a small JSON file of mamori's own under its state folder.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{CheckText, Finding, Severity, Words};

pub const STATE: CheckText = CheckText {
    id: "backup.state",
    en: Words {
        title: "Could not record which part of the repository to check next",
        why: "Without it every run reads the same part, and damage elsewhere goes unnoticed until a restore.",
        fix: "Make sure mamori's state folder is writable by root and has free space ({target}).",
    },
    ja: Words {
        title: "次に検査する範囲を記録できませんでした",
        why: "記録できないと毎回同じ部分だけを読むことになり、ほかの部分の破損には復元するときまで気づけません。",
        fix: "mamori の状態フォルダーに root が書き込めて、空き容量があることを確かめてください（{target}）。",
    },
};

const FILE: &str = "backup-check.json";
/// Far more than any config's repositories need; a bigger file is not ours.
const MAX_FILE: u64 = 1 << 20;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// The next subset (1-based) for each repository, by its shown name.
    next: BTreeMap<String, u32>,
}

pub struct Rotation {
    path: PathBuf,
    saved: Saved,
}

impl Rotation {
    /// The rotation kept under `state`; a missing, unreadable or damaged
    /// file starts every repository at 1 (a check is only moved back).
    pub fn load(state: &Path) -> Rotation {
        let path = state.join(FILE);
        let saved = crate::read_private(&path, MAX_FILE)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Rotation { path, saved }
    }

    /// The subset of `of` to read now for `repository`, and moves on to the next.
    pub fn take(&mut self, repository: &str, of: u32) -> u32 {
        let of = of.max(1);
        let next = self.saved.next.entry(repository.to_owned()).or_insert(1);
        // A count lowered in the config since: start again.
        let now = if (1..=of).contains(next) { *next } else { 1 };
        *next = now % of + 1;
        now
    }

    /// Writes the file (whole, then renamed over the old one); a finding if it cannot.
    pub fn save(&self) -> Option<Finding> {
        let e = self.write().err()?;
        Some(Finding::new(&STATE, Severity::Low, self.path.display().to_string(), format!("cannot write it: {e}")))
    }

    fn write(&self) -> io::Result<()> {
        crate::save_private(&self.path, &serde_json::to_vec_pretty(&self.saved)?)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn subsets_go_round_and_survive_a_restart() {
        let state = tempfile::tempdir().unwrap();
        let mut r = Rotation::load(state.path());
        assert_eq!([r.take("a", 3), r.take("a", 3), r.take("b", 3)], [1, 2, 1]);
        assert!(r.save().is_none());
        let mut r = Rotation::load(state.path());
        assert_eq!([r.take("a", 3), r.take("a", 3), r.take("a", 2)], [3, 1, 2]);
        assert_eq!(r.take("a", 1), 1, "a count lowered below the next subset starts again");
    }

    #[test]
    fn a_damaged_file_starts_at_one() {
        let state = tempfile::tempdir().unwrap();
        fs::write(state.path().join(FILE), b"{\"next\": {\"a\": \"x\"").unwrap();
        let mut r = Rotation::load(state.path());
        assert_eq!(r.take("a", 5), 1);
        assert!(r.save().is_none());
        assert_eq!(Rotation::load(state.path()).take("a", 5), 2);
    }
}
