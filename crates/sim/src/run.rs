//! One attack on a test target: list the victims, then let the family's
//! plan loose on them, counting what worked and what a defender denied.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::child;
use crate::error::SimError;
use crate::family::{self, Drive, Family, Notes, Rename};
use crate::note::{drop_note, note_text};
use crate::target::check_target;
use crate::transform::FileJob;
use crate::walk::walk;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Pause after each file, replacing the family's own pace.
    pub delay: Option<Duration>,
    /// Stop after this many files (counted in walk order, failures included).
    pub max_files: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub family: String,
    pub files_encrypted: usize,
    pub notes_written: usize,
    /// Files or folders the attack could not process (denied opens, vanished
    /// files, unreadable folders); the run carries on past each one.
    pub errors: usize,
}

/// Attacks the test target `dir` as `family` does.
///
/// Refuses anything [`check_target`] refuses. Files are taken in sorted
/// depth-first order; hidden files are attacked, the marker and ransom notes
/// are not. Killing or stopping the process at any point leaves every file
/// either untouched or processed, apart from the one in flight.
pub fn run(family: &str, dir: &Path, opts: &RunOptions) -> Result<RunReport, SimError> {
    let family = family::find(family).ok_or_else(|| SimError::UnknownFamily(family.to_owned()))?;
    let root = check_target(dir)?;
    let tree = walk(&root);
    let mut files = tree.files;
    if let Some(max) = opts.max_files {
        files.truncate(max);
    }
    let job = FileJob::new(family.plan)?;
    let mut errors = tree.errors;
    if let Rename::AllFirst(_) = family.plan.rename {
        files = files.iter().filter_map(|f| job.rename(f).inspect_err(|_| errors += 1).ok()).collect();
    }
    let attack = Attack {
        family,
        job,
        delay: opts.delay.or(family.plan.delay),
        note: note_text(family.name),
        noted: Mutex::new(HashSet::new()),
        encrypted: AtomicUsize::new(0),
        notes: AtomicUsize::new(0),
        errors: AtomicUsize::new(errors),
    };
    if family.plan.notes == Notes::First {
        tree.dirs.iter().for_each(|d| attack.note_once(d));
    }
    match family.plan.drive {
        Drive::Sequential | Drive::ProcessPerFile | Drive::SessionPerFile => files.iter().for_each(|f| attack.hit(f)),
        Drive::Threads(n) => {
            let next = AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..n {
                    s.spawn(|| {
                        while let Some(f) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                            attack.hit(f);
                        }
                    });
                }
            });
        }
    }
    Ok(RunReport {
        family: family.name.to_owned(),
        files_encrypted: attack.encrypted.into_inner(),
        notes_written: attack.notes.into_inner(),
        errors: attack.errors.into_inner(),
    })
}

struct Attack {
    family: &'static Family,
    job: FileJob,
    delay: Option<Duration>,
    note: String,
    noted: Mutex<HashSet<PathBuf>>,
    encrypted: AtomicUsize,
    notes: AtomicUsize,
    errors: AtomicUsize,
}

impl Attack {
    fn hit(&self, file: &Path) {
        if self.family.plan.notes == Notes::During {
            if let Some(dir) = file.parent() {
                self.note_once(dir);
            }
        }
        let done = match self.family.plan.drive {
            Drive::ProcessPerFile => child::spawn(self.family.name, file, false),
            Drive::SessionPerFile => child::spawn(self.family.name, file, true),
            Drive::Sequential | Drive::Threads(_) => self.job.apply(file),
        };
        let counter = if done.is_ok() { &self.encrypted } else { &self.errors };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(delay) = self.delay {
            std::thread::sleep(delay);
        }
    }

    fn note_once(&self, dir: &Path) {
        let first = self.noted.lock().unwrap_or_else(|e| e.into_inner()).insert(dir.to_path_buf());
        if first {
            let counter = if drop_note(dir, &self.note).is_ok() { &self.notes } else { &self.errors };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}
