//! The simulator against real files in temporary directories.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mamori_sim::{
    check_target, child_main, families, make_corpus, mark_target, run, CorpusSpec, RunOptions, SimError, Snapshot,
    MARKER, NOTE_NAME,
};

const MIB: u64 = 1 << 20;

/// A small corpus with one 12 MiB image, so the intermittent family's
/// large-file path runs too.
fn corpus() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("target");
    make_corpus(&dir, &CorpusSpec { docs: 16, large: 1, large_size: 12 * MIB }).unwrap();
    (tmp, dir)
}

fn fast() -> RunOptions {
    RunOptions { delay: Some(Duration::ZERO), max_files: None }
}

type Files = BTreeMap<PathBuf, Vec<u8>>;

/// Regular files below `dir`, relative, without the marker and notes.
fn snapshot(dir: &Path) -> Files {
    fn visit(root: &Path, dir: &Path, out: &mut Files) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap();
            if path.is_dir() {
                visit(root, &path, out);
            } else if name != MARKER && name != NOTE_NAME {
                out.insert(path.strip_prefix(root).unwrap().to_path_buf(), fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(dir, dir, &mut out);
    out
}

/// For every original file, the file that now stands for it: itself, or the
/// one named `<original>.<ext>`.
fn successors<'a>(before: &'a Files, after: &'a Files) -> Vec<(&'a Path, &'a [u8], &'a Path, &'a [u8])> {
    before
        .iter()
        .map(|(path, old)| {
            let (new_path, new) = after
                .iter()
                .find(|(p, _)| {
                    *p == path
                        || (p.parent() == path.parent()
                            && p.to_string_lossy().strip_prefix(&*path.to_string_lossy()).is_some_and(|rest| {
                                rest.starts_with('.') && !rest[1..].contains('.') && rest.len() > 1
                            }))
                })
                .unwrap_or_else(|| panic!("{} has no successor", path.display()));
            (path.as_path(), old.as_slice(), new_path.as_path(), new.as_slice())
        })
        .collect()
}

/// Runs `family` on a fresh corpus; checks every file changed and the note
/// count; returns before/after for family-specific checks.
fn attack(family: &str) -> (Files, Files, usize) {
    let (_tmp, dir) = corpus();
    let before = snapshot(&dir);
    let report = run(family, &dir, &fast()).unwrap();
    let after = snapshot(&dir);
    assert_eq!(report.family, family);
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.files_encrypted, before.len(), "{report:?}");
    assert_eq!(after.len(), before.len(), "a file appeared or vanished");
    for (old_path, old, new_path, new) in successors(&before, &after) {
        assert_ne!(old, new, "{family}: {} unchanged (now {})", old_path.display(), new_path.display());
    }
    assert!(dir.join(MARKER).is_file(), "marker must survive");
    let notes = count_notes(&dir);
    assert_eq!(report.notes_written, notes);
    (before, after, notes)
}

fn count_notes(dir: &Path) -> usize {
    let here = usize::from(dir.join(NOTE_NAME).is_file());
    here + fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| count_notes(&p))
        .sum::<usize>()
}

fn count_dirs(dir: &Path) -> usize {
    1 + fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| count_dirs(&p))
        .sum::<usize>()
}

#[test]
fn families_are_many_and_unique() {
    let names: std::collections::BTreeSet<_> = families().iter().map(|f| f.name).collect();
    assert!(names.len() >= 12);
    assert_eq!(names.len(), families().len());
    assert!(families().iter().all(|f| !f.summary.is_empty()));
}

#[test]
fn overwrite_uses_one_random_nine_char_extension_and_a_footer() {
    let (before, after, notes) = attack("overwrite");
    assert_eq!(notes, 0);
    let mut exts = std::collections::BTreeSet::new();
    for (_, old, new_path, new) in successors(&before, &after) {
        let ext = new_path.extension().unwrap().to_string_lossy().into_owned();
        assert!(ext.len() == 9 && ext.chars().all(|c| c.is_ascii_alphanumeric()), "{ext}");
        exts.insert(ext);
        assert_eq!(new.len(), old.len() + 512);
    }
    assert_eq!(exts.len(), 1);
}

#[test]
fn new_then_delete_leaves_only_enc_files() {
    let (_, after, _) = attack("new-then-delete");
    assert!(after.keys().all(|p| p.extension().unwrap() == "enc"));
}

#[test]
fn rename_first_and_in_place_families_keep_sizes() {
    for family in ["rename-first", "slow", "mmap", "notes-during", "threads", "intermittent"] {
        let (before, after, _) = attack(family);
        for (path, old, _, new) in successors(&before, &after) {
            assert_eq!(old.len(), new.len(), "{family}: {}", path.display());
        }
    }
}

#[test]
fn wiper_leaves_only_zeros() {
    let (_, after, _) = attack("wiper");
    for (path, bytes) in &after {
        assert!(bytes.iter().all(|&b| b == 0), "{}", path.display());
    }
}

/// The archives are real: each opens with the archiver, and only with a password.
#[test]
fn archiver_leaves_password_protected_archives_of_each_file() {
    let (before, after, _) = attack("archiver");
    let mut exts = std::collections::BTreeSet::new();
    for (_, _, new_path, new) in successors(&before, &after) {
        let ext = new_path.extension().unwrap().to_string_lossy().into_owned();
        match ext.as_str() {
            "zip" => assert_eq!(new[6] & 1, 1, "{}: ZIP entry not encrypted", new_path.display()),
            "7z" => assert!(new.starts_with(b"7z\xbc\xaf\x27\x1c")),
            other => panic!("{other}"),
        }
        exts.insert(ext);
    }
    assert_eq!(exts.len(), 2, "7z and zip take turns");
}

#[test]
fn rename_all_first_renames_every_file_then_encrypts_it() {
    let (before, after, _) = attack("rename-all-first");
    for (path, old, new_path, new) in successors(&before, &after) {
        assert_eq!(new_path.extension().unwrap(), "locked", "{}", path.display());
        assert_eq!(old.len(), new.len());
    }
}

#[test]
fn intermittent_encrypts_one_mib_in_ten_of_large_files() {
    let (before, after, _) = attack("intermittent");
    let (_, old, _, new) = successors(&before, &after).into_iter().find(|(p, ..)| p.starts_with("vm")).unwrap();
    let mib = MIB as usize;
    assert_ne!(old[..mib], new[..mib]);
    assert_eq!(old[mib..10 * mib], new[mib..10 * mib]);
    assert_ne!(old[10 * mib..11 * mib], new[10 * mib..11 * mib]);
    assert_eq!(old[11 * mib..], new[11 * mib..]);
}

#[test]
fn header_keep_preserves_magic_numbers() {
    let (before, after, _) = attack("header-keep");
    for (path, old, _, new) in successors(&before, &after) {
        assert_eq!(old[..16], new[..16], "{}", path.display());
        assert_eq!(old.len(), new.len());
    }
}

#[test]
fn base64_writes_printable_ascii() {
    let (before, after, _) = attack("base64");
    for (_, old, _, new) in successors(&before, &after) {
        assert!(new.len() >= old.len() * 4 / 3);
        assert!(new.iter().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b)));
    }
}

#[test]
fn truncate_rewrites_with_footer() {
    let (before, after, _) = attack("truncate");
    for (_, old, _, new) in successors(&before, &after) {
        assert_eq!(new.len(), old.len() + 512);
    }
}

#[test]
fn partial_xor_keeps_the_byte_histogram_shape() {
    let (before, after, _) = attack("partial-xor");
    for (_, old, _, new) in successors(&before, &after) {
        let hist = |data: &[u8]| {
            let mut h = [0usize; 256];
            data.iter().for_each(|b| h[*b as usize] += 1);
            h.sort_unstable();
            h
        };
        assert_eq!(hist(old), hist(new));
    }
}

#[test]
fn notes_first_puts_a_note_in_every_folder() {
    let (_tmp, dir) = corpus();
    let report = run("notes-first", &dir, &fast()).unwrap();
    assert_eq!(report.notes_written, count_dirs(&dir));
    assert_eq!(count_notes(&dir), count_dirs(&dir));
    let note = fs::read_to_string(dir.join(NOTE_NAME)).unwrap();
    assert!(note.contains("notes-first"));
    // A second run takes the notes for its own and leaves them alone.
    let again = run("notes-first", &dir, &fast()).unwrap();
    assert_eq!(again.files_encrypted, report.files_encrypted);
}

#[test]
fn notes_during_notes_only_folders_with_files() {
    let (_, after, notes) = attack("notes-during");
    let folders: std::collections::BTreeSet<_> = after.keys().map(|p| p.parent().unwrap()).collect();
    assert_eq!(notes, folders.len());
}

#[test]
fn hidden_files_are_attacked() {
    let (_tmp, dir) = corpus();
    fs::write(dir.join(".secret"), b"hidden but precious").unwrap();
    run("slow", &dir, &fast()).unwrap();
    assert_ne!(fs::read(dir.join(".secret")).unwrap(), b"hidden but precious");
}

#[test]
fn max_files_stops_early() {
    let (_tmp, dir) = corpus();
    let before = snapshot(&dir);
    let report = run("overwrite", &dir, &RunOptions { delay: None, max_files: Some(3) }).unwrap();
    assert_eq!(report.files_encrypted, 3);
    let after = snapshot(&dir);
    let untouched = before.iter().filter(|(p, data)| after.get(*p) == Some(*data)).count();
    assert_eq!(untouched, before.len() - 3);
}

#[test]
fn a_denied_file_is_counted_and_the_run_goes_on() {
    let (_tmp, dir) = corpus();
    let victim = dir.join("locked.txt");
    fs::write(&victim, b"cannot touch this").unwrap();
    let total = snapshot(&dir).len();
    let _guard = Immutable::set(&victim);
    for family in ["truncate", "io-uring"] {
        let report = run(family, &dir, &fast()).unwrap();
        assert_eq!(report.errors, 1, "{family}: {report:?}");
        assert_eq!(report.files_encrypted, total - 1, "{family}");
    }
    assert_eq!(fs::read(&victim).unwrap(), b"cannot touch this");
}

/// Makes a file unwritable even for root (FS_IOC_SETFLAGS immutable); on
/// filesystems or users without that, falls back to mode 000.
struct Immutable(PathBuf, bool);

impl Immutable {
    fn set(path: &Path) -> Immutable {
        let ok = set_immutable(path, true);
        if !ok {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(0o000)).unwrap();
        }
        Immutable(path.to_path_buf(), ok)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        if self.1 {
            set_immutable(&self.0, false);
        }
    }
}

fn set_immutable(path: &Path, on: bool) -> bool {
    use std::os::fd::AsRawFd;
    const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
    const FS_IOC_SETFLAGS: libc::c_ulong = 0x4008_6602;
    const FS_IMMUTABLE_FL: libc::c_long = 0x10;
    let Ok(file) = fs::File::open(path) else { return false };
    let mut flags: libc::c_long = 0;
    // SAFETY: both ioctls read or write one c_long through a valid pointer.
    unsafe {
        if libc::ioctl(file.as_raw_fd(), FS_IOC_GETFLAGS, &mut flags) != 0 {
            return false;
        }
        flags = if on { flags | FS_IMMUTABLE_FL } else { flags & !FS_IMMUTABLE_FL };
        libc::ioctl(file.as_raw_fd(), FS_IOC_SETFLAGS, &flags) == 0
    }
}

#[test]
fn refuses_an_unmarked_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("plain");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("precious.txt"), b"keep me").unwrap();
    assert!(matches!(run("overwrite", &dir, &fast()), Err(SimError::NotMarked { .. })));
    assert_eq!(fs::read(dir.join("precious.txt")).unwrap(), b"keep me");
    assert!(matches!(make_corpus(&dir, &CorpusSpec::default()), Err(SimError::NotEmpty { .. })));
    assert!(!dir.join(MARKER).exists());
}

#[test]
fn refuses_system_directories() {
    for dir in ["/", "/etc", "/usr", "/var", "/boot", "/root", "/tmp", "/usr/share"] {
        let err = run("overwrite", Path::new(dir), &fast()).unwrap_err();
        assert!(matches!(err, SimError::Protected { .. } | SimError::TooShallow { .. }), "{dir}: {err}");
    }
    assert!(matches!(check_target(Path::new("/etc")), Err(SimError::Protected { .. })));
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_dir()) {
        assert!(matches!(check_target(&home), Err(SimError::Protected { .. })));
    }
}

#[test]
fn marking_never_creates_anything_in_system_trees() {
    let dir = Path::new("/etc/mamori-sim-test-must-not-exist");
    assert!(matches!(mark_target(dir), Err(SimError::Protected { .. })));
    assert!(!dir.exists());
    let tmp = tempfile::tempdir().unwrap();
    let sneaky = tmp.path().join("missing/../../../../../../etc/mamori-sim-test-must-not-exist");
    assert!(mark_target(&sneaky).is_err());
    assert!(!dir.exists());
}

#[test]
fn refuses_a_symlink_to_a_marked_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    mark_target(&real).unwrap();
    fs::write(real.join("a.txt"), b"data").unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert!(matches!(run("overwrite", &link, &fast()), Err(SimError::Symlink { .. })));
    assert_eq!(fs::read(real.join("a.txt")).unwrap(), b"data");
    assert_eq!(check_target(&real).unwrap(), fs::canonicalize(&real).unwrap());
}

#[test]
fn never_follows_symlinks_out_of_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("precious.txt"), b"keep me").unwrap();
    let target = tmp.path().join("target");
    mark_target(&target).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("dir-link")).unwrap();
    std::os::unix::fs::symlink(outside.join("precious.txt"), target.join("file-link")).unwrap();
    // The target holds only symlinks, so process-per-file spawns no child here.
    for family in families() {
        let report = run(family.name, &target, &fast()).unwrap();
        assert_eq!(report.files_encrypted, 0);
    }
    assert_eq!(fs::read(outside.join("precious.txt")).unwrap(), b"keep me");
}

#[test]
fn unknown_family_is_an_error() {
    let (_tmp, dir) = corpus();
    assert!(matches!(run("nope", &dir, &fast()), Err(SimError::UnknownFamily(_))));
}

#[test]
fn child_main_encrypts_inside_a_target_and_refuses_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    mark_target(&target).unwrap();
    fs::create_dir_all(target.join("sub")).unwrap();
    let file = target.join("sub/a.txt");
    fs::write(&file, b"plain text plain text").unwrap();
    let args = |f: &Path| vec!["process-per-file".to_owned(), f.to_string_lossy().into_owned()];
    child_main(&args(&file)).unwrap();
    assert!(!file.exists());
    assert_ne!(fs::read(target.join("sub/a.txt.pwned")).unwrap(), b"plain text plain text");

    let plain = tmp.path().join("plain");
    fs::create_dir(&plain).unwrap();
    fs::write(plain.join("b.txt"), b"keep").unwrap();
    assert!(matches!(child_main(&args(&plain.join("b.txt"))), Err(SimError::NotMarked { .. })));
    assert_eq!(fs::read(plain.join("b.txt")).unwrap(), b"keep");
    assert!(matches!(child_main(&["process-per-file".to_owned()]), Err(SimError::ChildArgs(_))));
}

#[test]
fn snapshot_diff_counts_what_an_attack_touched() {
    let (_tmp, dir) = corpus();
    let before = Snapshot::take(&dir).unwrap();
    let report = run("new-then-delete", &dir, &RunOptions { delay: None, max_files: Some(4) }).unwrap();
    let diff = before.diff(&Snapshot::take(&dir).unwrap());
    assert_eq!(report.files_encrypted, 4);
    assert_eq!((diff.changed, diff.missing, diff.added, diff.touched()), (0, 4, 4, 4));
    run("slow", &dir, &fast()).unwrap();
    let diff = before.diff(&Snapshot::take(&dir).unwrap());
    assert_eq!((diff.changed, diff.missing, diff.touched()), (before.len() - 4, 4, before.len()), "{diff:?}");
}

#[test]
fn io_uring_encrypts_every_file_intermittently_and_renames_it() {
    let (before, after, notes) = attack("io-uring");
    assert_eq!(notes, 0);
    for (path, old, new_path, new) in successors(&before, &after) {
        assert_eq!(new_path.extension().unwrap(), "uring", "{}", path.display());
        assert_eq!(old.len(), new.len(), "{}", path.display());
    }
    let (_, old, _, new) = successors(&before, &after).into_iter().find(|(p, ..)| p.starts_with("vm")).unwrap();
    let mib = MIB as usize;
    assert_ne!(old[..mib], new[..mib]);
    assert_eq!(old[mib..10 * mib], new[mib..10 * mib]);
    assert_ne!(old[10 * mib..11 * mib], new[10 * mib..11 * mib]);
}

#[test]
fn io_uring_snapshot_diff_counts_every_file() {
    let (_tmp, dir) = corpus();
    let before = Snapshot::take(&dir).unwrap();
    let report = run("io-uring", &dir, &fast()).unwrap();
    let diff = before.diff(&Snapshot::take(&dir).unwrap());
    assert_eq!((report.files_encrypted, report.errors), (before.len(), 0), "{report:?}");
    assert_eq!((diff.changed, diff.missing, diff.added), (0, before.len(), before.len()), "{diff:?}");
}

/// This thread's counters from `/proc/thread-self/io`: other tests running in
/// parallel threads cannot move them.
fn thread_io() -> BTreeMap<String, u64> {
    fs::read_to_string("/proc/thread-self/io")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.trim().parse().unwrap()))
        .collect()
}

/// Runs `family` sequentially (on this thread) over a fresh small corpus and
/// returns the file count, their total size and this thread's I/O counters' growth.
fn thread_io_during(family: &str) -> (u64, u64, BTreeMap<String, u64>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("target");
    make_corpus(&dir, &CorpusSpec { docs: 16, large: 0, large_size: 0 }).unwrap();
    let files = snapshot(&dir);
    let bytes = files.values().map(|d| d.len() as u64).sum();
    let start = thread_io();
    let report = run(family, &dir, &fast()).unwrap();
    let end = thread_io();
    assert_eq!((report.files_encrypted, report.errors), (files.len(), 0), "{report:?}");
    let delta = end.iter().map(|(k, v)| (k.clone(), v - start[k])).collect();
    (files.len() as u64, bytes, delta)
}

/// The kernel counts read and write system calls (`syscr`/`syscw`) and the
/// bytes they move (`rchar`/`wchar`) per thread; io_uring's reads and writes
/// bypass those paths. The `overwrite` family is the control that shows the
/// counters do see this thread's system-call writes.
#[test]
fn io_uring_moves_the_bytes_without_read_or_write_system_calls() {
    let (files, bytes, syscalls) = thread_io_during("overwrite");
    assert!(syscalls["syscw"] >= files && syscalls["wchar"] >= bytes, "control saw no writes: {syscalls:?}");
    assert!(syscalls["syscr"] >= files && syscalls["rchar"] >= bytes, "control saw no reads: {syscalls:?}");

    let (files, bytes, ring) = thread_io_during("io-uring");
    assert!(ring["syscw"] < files && ring["wchar"] < bytes, "io-uring wrote by system call: {ring:?}");
    assert!(ring["syscr"] < files && ring["rchar"] < bytes, "io-uring read by system call: {ring:?}");
}
