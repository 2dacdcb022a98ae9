//! What the sensor read of files opened before, reused while they are
//! unchanged: backups, indexers and scanners open the same files again and
//! again, and each open waits while its path and content facts are read.
//!
//! A file is unchanged while its inode shows the same size, link count,
//! modification and change times: every write, link and rename of the file
//! itself moves its change time, which no program can set (and which the
//! kernel makes fine-grained once it has been read, so two changes within
//! one clock tick still differ). The path of a file with other names (hard
//! links) is not kept, as an open reports the name it was opened by; nor is
//! any path once something was renamed, as a directory above may have moved.
//! The sensor still asks the kernel for the path of an open about to change
//! the file: its before-image is filed under it, and the event of a rename
//! made a moment before may still be queued.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

use mamori_event::ContentFacts;

/// Files remembered; past it the memory starts over (about 10 MiB at most).
const KNOWN_MAX: usize = 32_768;

/// A path read at one event, kept for a later event of the same file.
pub(crate) struct Named {
    pub path: String,
    /// The sensor's count of renames when it was read.
    pub renames: u64,
}

impl Named {
    /// The path, unless something was renamed since it was read: a file or
    /// a directory above it may have moved.
    pub fn current(self, renames: u64) -> Option<String> {
        (self.renames == renames).then_some(self.path)
    }
}

#[derive(Default)]
pub(crate) struct Known {
    files: HashMap<(u64, u64), Entry>,
}

struct Entry {
    stamp: Stamp,
    /// `None` when the file had other names.
    name: Option<Named>,
    /// Light facts (those of an open to read).
    facts: Option<ContentFacts>,
    /// Its accesses were last left unwatched (see [`Recalled::quiet`]).
    quiet: bool,
}

#[derive(PartialEq)]
struct Stamp {
    size: u64,
    nlink: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &Metadata) -> Option<Stamp> {
        meta.is_file().then(|| Stamp {
            size: meta.len(),
            nlink: meta.nlink(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

/// What is known of an unchanged file, from one lookup.
pub(crate) struct Recalled {
    /// The path it was last opened by, unless it has other names or
    /// something was renamed since.
    pub path: Option<String>,
    /// The light facts last read of it.
    pub facts: Option<ContentFacts>,
    /// Its accesses are unwatched already by the ignore mark an earlier
    /// open left: a backup's second pass then costs one system call fewer a
    /// file. The ignore mark is evictable: an inode dropped from memory and
    /// read again comes back without it, and its first access event sets it
    /// again, so a stale answer costs an event, never a write unseen (a
    /// file whose writes are watched is never noted quiet).
    pub quiet: bool,
}

impl Known {
    fn unchanged(&self, meta: &Metadata) -> Option<&Entry> {
        let entry = self.files.get(&(meta.dev(), meta.ino()))?;
        (Some(&entry.stamp) == Stamp::of(meta).as_ref()).then_some(entry)
    }

    /// What is known of the file, if it is unchanged since (`renames`: the
    /// sensor's count of renames now).
    pub fn recall(&self, meta: &Metadata, renames: u64) -> Option<Recalled> {
        let entry = self.unchanged(meta)?;
        let path = entry.name.as_ref().filter(|n| n.renames == renames).map(|n| n.path.clone());
        Some(Recalled { path, facts: entry.facts.clone(), quiet: entry.quiet })
    }

    /// Notes whether the file, unchanged, now has its accesses unwatched
    /// (see [`Recalled::quiet`]).
    pub fn set_quiet(&mut self, meta: &Metadata, quiet: bool) {
        let stamp = Stamp::of(meta);
        if let Some(entry) = self.files.get_mut(&(meta.dev(), meta.ino())).filter(|e| Some(&e.stamp) == stamp.as_ref())
        {
            entry.quiet = quiet;
        }
    }

    /// Remembers what an open to read found, as of `meta`; `path` only if
    /// it is the file's one name.
    pub fn note(&mut self, meta: &Metadata, path: Option<&str>, renames: u64, facts: Option<&ContentFacts>) {
        let Some(stamp) = Stamp::of(meta) else { return };
        if self.files.len() >= KNOWN_MAX {
            self.files.clear();
        }
        let name = path.map(|path| Named { path: path.to_owned(), renames });
        let entry = Entry { stamp, name, facts: facts.cloned(), quiet: false };
        self.files.insert((meta.dev(), meta.ino()), entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    fn facts(path: &Path) -> ContentFacts {
        mamori_content::read_facts(&std::fs::File::open(path).unwrap(), mamori_content::Depth::Light).unwrap()
    }

    /// `dir/a.txt` ("hello"), noted as `/x/a.txt` at rename count `renames`.
    fn noted(dir: &Path, renames: u64) -> (PathBuf, Known) {
        let p = dir.join("a.txt");
        std::fs::write(&p, b"hello").unwrap();
        let mut known = Known::default();
        known.note(&std::fs::metadata(&p).unwrap(), Some("/x/a.txt"), renames, Some(&facts(&p)));
        (p, known)
    }

    #[test]
    fn forgets_a_file_once_it_changes_or_the_tree_moves() {
        let dir = tempfile::tempdir().unwrap();
        let (p, known) = noted(dir.path(), 3);
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(known.recall(&meta, 3).and_then(|r| r.path).as_deref(), Some("/x/a.txt"));
        assert_eq!(known.recall(&meta, 0).and_then(|r| r.facts).map(|f| f.size), Some(5));
        // A rename elsewhere: the path may be stale, the content is not.
        assert_eq!(known.recall(&meta, 4).and_then(|r| r.path), None);
        assert!(known.recall(&meta, 0).and_then(|r| r.facts).is_some());

        // Appending changes size, mtime and ctime.
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"!").unwrap();
        let after = std::fs::metadata(&p).unwrap();
        assert_eq!(known.recall(&after, 3).and_then(|r| r.path), None);
        assert!(known.recall(&after, 0).and_then(|r| r.facts).is_none());
    }

    #[test]
    fn a_rewrite_of_the_same_size_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (p, known) = noted(dir.path(), 0);
        // Right away, within the same clock tick: the read of the times
        // above makes the kernel stamp the next change finer.
        std::fs::write(&p, b"HELLO").unwrap();
        assert!(known.recall(&std::fs::metadata(&p).unwrap(), 0).is_none());
    }

    #[test]
    fn a_new_name_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (p, mut known) = noted(dir.path(), 0);
        std::fs::hard_link(&p, dir.path().join("b.txt")).unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(known.recall(&meta, 0).and_then(|r| r.path), None, "b.txt would be reported as a.txt");
        assert!(known.recall(&meta, 0).and_then(|r| r.facts).is_none());
        // Noted with its two names: its content is known, its name is not.
        known.note(&meta, None, 0, Some(&facts(&p)));
        assert_eq!(known.recall(&meta, 0).and_then(|r| r.path), None);
        assert!(known.recall(&meta, 0).and_then(|r| r.facts).is_some());
    }

    #[test]
    fn quiet_lasts_while_the_file_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let (p, mut known) = noted(dir.path(), 0);
        let meta = std::fs::metadata(&p).unwrap();
        assert!(!known.recall(&meta, 0).unwrap().quiet, "a file just noted has no mark yet");
        known.set_quiet(&meta, true);
        assert!(known.recall(&meta, 0).unwrap().quiet);
        known.set_quiet(&meta, false);
        assert!(!known.recall(&meta, 0).unwrap().quiet, "a writer's watch lifts it");
        known.set_quiet(&meta, true);
        std::fs::write(&p, b"HELLO").unwrap();
        let after = std::fs::metadata(&p).unwrap();
        // Changed: neither recalled nor marked quiet by a stale entry.
        known.set_quiet(&after, true);
        assert!(known.recall(&after, 0).is_none());
        known.note(&after, Some("/x/a.txt"), 0, None);
        assert!(!known.recall(&after, 0).unwrap().quiet, "noted afresh, its mark is unknown");
    }
}
