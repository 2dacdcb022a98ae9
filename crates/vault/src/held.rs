//! Files held open instead of pinned on disk: the before-image of a file
//! opened only to read.
//!
//! A read cannot change a file; what can lose it is a later delete, or a
//! rename over its name. An open descriptor keeps the inode and its blocks
//! alive through both (the kernel frees an unlinked inode only when its last
//! descriptor closes), so holding the descriptor the open's event handed us
//! keeps the content reachable at the cost of a `dup` and some kernel memory,
//! with nothing written to disk. When its name goes, the vault copies it
//! from the held descriptor (`Vault::keep_unlinked`, called by
//! `Vaults::gone` in the agent); while it is held and unchanged, nothing
//! else is needed.
//!
//! Bounded by count and by age: what must be let go is handed back to the
//! caller, which pins it on disk or forgets it (see `Vaults::let_go` in the
//! agent).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;

use mamori_event::ProcKey;

use crate::path_key;

/// One file held open.
#[derive(Debug)]
pub struct HeldFile {
    pub file: File,
    /// The name it was last opened or renamed by.
    pub path: String,
    /// Who opened it last.
    pub by: Option<ProcKey>,
    /// When it was first held.
    pub since_ns: u64,
    seq: u64,
}

/// The set of held files, by inode and by name.
#[derive(Debug)]
pub struct Held {
    files: HashMap<(u64, u64), HeldFile>,
    by_path: HashMap<u64, (u64, u64)>,
    /// Oldest first; an entry whose `seq` no longer matches was dropped or renewed.
    order: VecDeque<((u64, u64), u64)>,
    next_seq: u64,
    max_files: usize,
    max_age_ns: u64,
    /// Nothing in `order` ahead of what was looked at last expires before
    /// this: asked after every event, the answer is mostly "not yet".
    next_expiry_ns: u64,
}

impl Held {
    pub fn new(max_files: usize, max_age_ns: u64) -> Held {
        Held {
            files: HashMap::new(),
            by_path: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
            max_files,
            max_age_ns,
            next_expiry_ns: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Holds `file` (inode `inode`, opened as `path` by `by`), unless it is
    /// held already (its name and opener are then brought up to date).
    /// Returns what the count bound makes it let go, oldest first.
    pub fn hold(
        &mut self,
        file: &File,
        inode: (u64, u64),
        path: &str,
        by: Option<ProcKey>,
        now_ns: u64,
    ) -> io::Result<Vec<HeldFile>> {
        if let Some(h) = self.files.get_mut(&inode) {
            h.by = by;
            if h.path != path {
                let old = path_key(&h.path);
                h.path = path.to_owned();
                self.unname(old, inode);
                self.by_path.insert(path_key(path), inode);
            }
            return Ok(Vec::new());
        }
        if self.max_files == 0 {
            return Ok(Vec::new());
        }
        let file = file.try_clone()?;
        let seq = self.next_seq;
        self.next_seq += 1;
        // Another inode held under this name was replaced meanwhile (its
        // rename was not seen): it stays held by inode, found no more by name.
        self.by_path.insert(path_key(path), inode);
        self.files.insert(inode, HeldFile { file, path: path.to_owned(), by, since_ns: now_ns, seq });
        self.order.push_back((inode, seq));
        let mut out = Vec::new();
        while self.files.len() > self.max_files {
            match self.pop_oldest() {
                Some(h) => out.push(h),
                None => break,
            }
        }
        Ok(out)
    }

    /// Lets go of every file held longer than the age bound.
    pub fn expired(&mut self, now_ns: u64) -> Vec<HeldFile> {
        let mut out = Vec::new();
        if now_ns < self.next_expiry_ns {
            return out;
        }
        // Files held from now on expire no sooner than this.
        self.next_expiry_ns = now_ns.saturating_add(self.max_age_ns);
        while let Some(&(inode, seq)) = self.order.front() {
            match self.files.get(&inode) {
                Some(h) if h.seq == seq => {
                    if now_ns.saturating_sub(h.since_ns) < self.max_age_ns {
                        self.next_expiry_ns = h.since_ns.saturating_add(self.max_age_ns);
                        break;
                    }
                    out.extend(self.pop_oldest());
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
        out
    }

    /// Lets go of the file last known by `path`, if one is held (with its
    /// inode): its name was deleted or replaced.
    pub fn take(&mut self, path: &str) -> Option<((u64, u64), HeldFile)> {
        let key = path_key(path);
        let inode = *self.by_path.get(&key)?;
        if self.files.get(&inode).is_none_or(|h| h.path != path) {
            return None;
        }
        self.by_path.remove(&key);
        Some((inode, self.files.remove(&inode)?))
    }

    /// Puts back a file [`Held::take`] gave: its name went, but it had another.
    pub fn put_back(&mut self, inode: (u64, u64), h: HeldFile) {
        self.by_path.insert(path_key(&h.path), inode);
        self.order.push_back((inode, h.seq));
        self.files.insert(inode, h);
    }

    /// A file or folder was renamed: what is held under `from` is now under `to`.
    pub fn renamed(&mut self, from: &str, to: &str, dir: bool) {
        if !dir {
            if let Some(inode) = self.by_path.remove(&path_key(from)) {
                if let Some(h) = self.files.get_mut(&inode) {
                    h.path = to.to_owned();
                }
                self.by_path.insert(path_key(to), inode);
            }
            return;
        }
        // A folder moved: every name under it moved with it. Rare enough
        // (and bounded by the held count) to walk the set.
        let prefix = format!("{from}/");
        let mut moved = Vec::new();
        for (inode, h) in &mut self.files {
            if let Some(rest) = h.path.strip_prefix(&prefix) {
                let old = path_key(&h.path);
                h.path = format!("{to}/{rest}");
                moved.push((old, path_key(&h.path), *inode));
            }
        }
        for (old, new, inode) in moved {
            self.unname(old, inode);
            self.by_path.insert(new, inode);
        }
    }

    /// Forgets the name `key` if it still names `inode` (another file may
    /// have taken it since).
    fn unname(&mut self, key: u64, inode: (u64, u64)) {
        if self.by_path.get(&key) == Some(&inode) {
            self.by_path.remove(&key);
        }
    }

    fn pop_oldest(&mut self) -> Option<HeldFile> {
        while let Some((inode, seq)) = self.order.pop_front() {
            if self.files.get(&inode).is_some_and(|h| h.seq == seq) {
                let h = self.files.remove(&inode)?;
                self.unname(path_key(&h.path), inode);
                return Some(h);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    /// The paths of files let go, in order.
    fn paths(files: &[HeldFile]) -> Vec<&str> {
        files.iter().map(|h| h.path.as_str()).collect()
    }

    fn file(dir: &std::path::Path, name: &str) -> (File, (u64, u64)) {
        let p = dir.join(name);
        std::fs::File::create(&p).unwrap().write_all(b"content").unwrap();
        let f = File::open(&p).unwrap();
        let m = f.metadata().unwrap();
        (f, (m.dev(), m.ino()))
    }

    #[test]
    fn the_count_bound_lets_the_oldest_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut held = Held::new(2, u64::MAX);
        let mut gone = Vec::new();
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            let (f, ino) = file(dir.path(), name);
            gone.extend(held.hold(&f, ino, name, None, i as u64).unwrap());
        }
        assert_eq!(held.len(), 2);
        assert_eq!(paths(&gone), ["a"]);
        assert!(held.take("a").is_none());
        assert!(held.take("b").is_some());
    }

    #[test]
    fn the_age_bound_lets_old_files_go_and_a_rename_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut held = Held::new(10, 100);
        let (a, ia) = file(dir.path(), "a");
        let (b, ib) = file(dir.path(), "b");
        held.hold(&a, ia, "/d/a", None, 0).unwrap();
        held.hold(&b, ib, "/d/b", None, 50).unwrap();
        held.renamed("/d", "/e", true);
        held.renamed("/e/b", "/e/c", false);
        let old = held.expired(120);
        assert_eq!(paths(&old), ["/e/a"]);
        assert!(held.take("/e/b").is_none());
        let (inode, c) = held.take("/e/c").unwrap();
        assert_eq!(inode, ib);
        assert_eq!(c.file.metadata().unwrap().nlink(), 1);
        std::fs::remove_file(dir.path().join("b")).unwrap();
        assert_eq!(c.file.metadata().unwrap().nlink(), 0, "the held descriptor sees its last name go");
        assert_eq!(
            std::fs::read_to_string(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&c.file))).unwrap(),
            "content"
        );
    }

    #[test]
    fn each_file_expires_on_time_however_often_it_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        let mut held = Held::new(10, 100);
        let (a, ia) = file(dir.path(), "a");
        let (b, ib) = file(dir.path(), "b");
        let (c, ic) = file(dir.path(), "c");
        assert!(held.expired(0).is_empty(), "nothing held");
        held.hold(&a, ia, "/d/a", None, 10).unwrap();
        held.hold(&b, ib, "/d/b", None, 50).unwrap();
        assert!(held.expired(109).is_empty());
        assert_eq!(paths(&held.expired(110)), ["/d/a"]);
        assert!(held.expired(149).is_empty());
        // Held after the last look: its expiry is later than any looked at.
        held.hold(&c, ic, "/d/c", None, 140).unwrap();
        assert_eq!(paths(&held.expired(150)), ["/d/b"]);
        // The first held file taken away: the next one still expires on time.
        assert!(held.take("/d/c").is_some());
        held.hold(&a, ia, "/d/a", None, 200).unwrap();
        assert!(held.expired(299).is_empty());
        assert_eq!(paths(&held.expired(300)), ["/d/a"]);
        assert_eq!(held.len(), 0);
    }
}
