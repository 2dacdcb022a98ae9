//! The vault on real files in temporary folders (as root: pins need CAP_DAC_READ_SEARCH).

mod common;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::{folders, s, stored, BIG};
use mamori_vault::{Kind, Limits, Preserved, SkipReason, Vault};

fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let (tmp, vault) = folders("vault-test-");
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    (tmp, data, vault)
}

#[test]
fn a_copy_brings_back_content_mode_times_and_xattrs() {
    let (_t, data, dir) = setup();
    let f = data.join("report.docx");
    std::fs::write(&f, b"original content of the report").unwrap();
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    // setfattr/getfattr come from Debian's `attr` package, which .ci/run installs.
    let status = std::process::Command::new("setfattr").args(["-n", "user.origin", "-v", "scanner"]).arg(&f).status();
    assert!(status.is_ok_and(|s| s.success()), "setfattr (package attr) is needed");
    let mtime_before = std::fs::metadata(&f).unwrap().modified().unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let e = stored(v.preserve(&File::open(&f).unwrap(), s(&f), 10, None).unwrap());
    assert_eq!(e.kind, Kind::Copy);
    assert_eq!(v.preserve(&File::open(&f).unwrap(), s(&f), 11, None).unwrap(), Preserved::AlreadyHeld);
    std::fs::write(&f, b"ENCRYPTED!!").unwrap();
    v.restore_to(&e, &f).unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"original content of the report");
    let m = std::fs::metadata(&f).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777, 0o640);
    assert_eq!(m.modified().unwrap(), mtime_before);
    let out = std::process::Command::new("getfattr").args(["-n", "user.origin", "--only-values"]).arg(&f).output();
    assert_eq!(out.unwrap().stdout, b"scanner");
}

#[test]
fn a_copy_is_written_from_the_bytes_read_already_unless_the_file_changed_size() {
    use mamori_vault::Content;
    let (_t, data, dir) = setup();
    let mut v = Vault::open(&dir, BIG).unwrap();
    // The bytes and hash the sensor read for the file's facts are what is
    // kept (here another content of the same size, to tell them apart from
    // a second read of the file), and restored bit for bit.
    let f = data.join("budget.ods");
    std::fs::write(&f, b"budget as the file holds it").unwrap();
    let read = b"budget as the sensor read it".to_vec();
    let read = &read[..std::fs::metadata(&f).unwrap().len() as usize];
    let hash = *blake3::hash(read).as_bytes();
    let e = stored(
        v.preserve_read(&File::open(&f).unwrap(), Content { bytes: read, blake3: &hash }, s(&f), 10, None).unwrap(),
    );
    assert_eq!(e.hash.as_deref(), Some(blake3::hash(read).to_hex().as_str()));
    assert_eq!(std::fs::read(v.object_path(&e)).unwrap(), read);
    std::fs::write(&f, b"ENCRYPTED").unwrap();
    v.restore_to(&e, &f).unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), read);

    // Bytes that are not all of the file as it is now: it is read afresh.
    let g = data.join("plan.odt");
    std::fs::write(&g, b"the plan, all of it").unwrap();
    let part = b"the plan";
    let hash = *blake3::hash(part).as_bytes();
    let e = stored(
        v.preserve_read(&File::open(&g).unwrap(), Content { bytes: part, blake3: &hash }, s(&g), 11, None).unwrap(),
    );
    assert_eq!(std::fs::read(v.object_path(&e)).unwrap(), b"the plan, all of it");
    assert_eq!(e.hash.as_deref(), Some(mamori_vault::content_hash(&g).unwrap().as_str()));
}

/// What is in a folder of the vault, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// The names that appear in `dir` (created or moved in) while `work` runs,
/// in order, as inotify reports them.
fn names_made_in(dir: &Path, work: impl FnOnce()) -> Vec<String> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain system calls; the new descriptor is owned by `events`.
    let mut events = unsafe { File::from_raw_fd(libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC)) };
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid descriptor and a NUL-terminated path.
    let wd = unsafe {
        libc::inotify_add_watch(
            std::os::fd::AsRawFd::as_raw_fd(&events),
            path.as_ptr(),
            libc::IN_CREATE | libc::IN_MOVED_TO,
        )
    };
    assert!(wd >= 0, "inotify_add_watch: {}", std::io::Error::last_os_error());
    work();
    let mut buf = vec![0u8; 64 * 1024];
    let n = events.read(&mut buf).unwrap_or(0);
    let (mut names, mut at) = (Vec::new(), 0);
    let head = std::mem::size_of::<libc::inotify_event>();
    while at + head <= n {
        // SAFETY: the kernel wrote whole events; read unaligned from the buffer.
        let ev: libc::inotify_event = unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
        let name = &buf[at + head..at + head + ev.len as usize];
        names.push(String::from_utf8_lossy(name.split(|&b| b == 0).next().unwrap()).into_owned());
        at += head + ev.len as usize;
    }
    names
}

/// A new vault in `dir` copies `file`, which holds `content`: its entry,
/// and the names that appeared in `objects/` meanwhile.
fn copied(dir: &Path, file: &Path, content: &[u8]) -> (Vault, mamori_vault::Entry, Vec<String>) {
    std::fs::write(file, content).unwrap();
    let mut v = Vault::open(dir, BIG).unwrap();
    let mut e = None;
    let made = names_made_in(&dir.join("objects"), || {
        e = Some(stored(v.preserve(&File::open(file).unwrap(), s(file), 10, None).unwrap()));
    });
    (v, e.unwrap(), made)
}

#[test]
fn a_copy_is_written_nameless_and_named_only_once_whole() {
    let (_t, data, dir) = setup();
    let f = data.join("ledger.xlsx");
    let (v, e, made) = copied(&dir, &f, b"the ledger as it was");
    // Written in staging/ without a name (nothing left there), then named
    // in objects/ once: no temp name ever appears there.
    assert_eq!(made, vec![e.object.clone()]);
    assert_eq!(names(&dir.join(mamori_vault::STAGING)), Vec::<String>::new());
    assert_eq!(std::fs::read(v.object_path(&e)).unwrap(), b"the ledger as it was");
    assert_eq!(e.hash.as_deref(), Some(mamori_vault::content_hash(&f).unwrap().as_str()));
    drop(v);

    // A staging folder that is not the vault's own (here: one others can
    // write) is not used: the copy takes a temp name in objects/ instead,
    // and is just as whole.
    let staging = dir.join(mamori_vault::STAGING);
    std::fs::set_permissions(&staging, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let g = data.join("minutes.docx");
    let (v, e2, made) = copied(&dir, &g, b"minutes of the meeting");
    assert_eq!(made, vec![format!(".tmp-{}", e2.id), e2.object.clone()]);
    assert_eq!(names(&dir.join("objects")), vec![e.object.clone(), e2.object.clone()]);
    std::fs::write(&g, b"ENCRYPTED").unwrap();
    v.restore_to(&e2, &g).unwrap();
    assert_eq!(std::fs::read(&g).unwrap(), b"minutes of the meeting");
}

#[test]
fn a_pin_keeps_a_deleted_file() {
    let (_t, data, dir) = setup();
    let f = data.join("photo.jpg");
    std::fs::write(&f, b"jpeg bytes").unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let e = stored(v.pin(&File::open(&f).unwrap(), s(&f), 10, None).unwrap());
    assert_eq!(v.pin(&File::open(&f).unwrap(), s(&f), 11, None).unwrap(), Preserved::AlreadyHeld);
    std::fs::remove_file(&f).unwrap();
    v.restore_to(&e, &f).unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"jpeg bytes");
}

#[test]
fn reopening_rebuilds_the_index_and_survives_a_torn_line_and_orphans() {
    let (_t, data, dir) = setup();
    let f = data.join("a.txt");
    std::fs::write(&f, b"aaaa").unwrap();
    {
        let mut v = Vault::open(&dir, BIG).unwrap();
        stored(v.preserve(&File::open(&f).unwrap(), s(&f), 10, None).unwrap());
    }
    // A crash mid-append and an object whose line never got written.
    let mut log = std::fs::OpenOptions::new().append(true).open(dir.join("entries.log")).unwrap();
    std::io::Write::write_all(&mut log, b"{\"id\": 99, \"kind\": \"co").unwrap();
    std::fs::write(dir.join("objects/77"), b"orphan").unwrap();
    let v = Vault::open(&dir, BIG).unwrap();
    assert_eq!(v.entries_for_path(s(&f)).len(), 1);
    assert!(!dir.join("objects/77").exists(), "orphan removed");
    // A lost log leaves an empty but working vault, and the objects moved aside, not deleted.
    drop(v);
    std::fs::remove_file(dir.join("entries.log")).unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    assert!(v.entries_for_path(s(&f)).is_empty());
    let aside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("objects.unindexed-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(std::fs::read_dir(aside[0].path()).unwrap().count(), 1, "the copy is kept aside");
    stored(v.preserve(&File::open(&f).unwrap(), s(&f), 12, None).unwrap());
}

/// Copies are not fsynced while their opener waits: a crash can leave a
/// line whose object the kernel had not yet written back (an empty or short
/// file). Such an entry is dropped at the next open, never restored as the
/// file; and a vault closed normally has made its copies durable.
#[test]
fn a_copy_cut_short_by_a_crash_is_dropped_when_the_vault_reopens() {
    let (_t, data, dir) = setup();
    let (a, b) = (data.join("a.txt"), data.join("b.txt"));
    std::fs::write(&a, b"the whole of a").unwrap();
    std::fs::write(&b, b"the whole of b").unwrap();
    let (ea, eb) = {
        let mut v = Vault::open(&dir, BIG).unwrap();
        let ea = stored(v.preserve(&File::open(&a).unwrap(), s(&a), 10, None).unwrap());
        let eb = stored(v.preserve(&File::open(&b).unwrap(), s(&b), 11, None).unwrap());
        (ea, eb)
    };
    // What delayed allocation leaves of a copy not written back: its name, no data.
    std::fs::OpenOptions::new().write(true).open(dir.join("objects").join(&eb.object)).unwrap().set_len(0).unwrap();
    let v = Vault::open(&dir, BIG).unwrap();
    assert_eq!(v.entries_for_path(s(&a)), vec![&ea], "a whole copy stays");
    assert!(v.entries_for_path(s(&b)).is_empty(), "a copy cut short is dropped");
}

#[test]
fn read_only_open_changes_nothing() {
    let (_t, _data, dir) = setup();
    Vault::open(&dir, BIG).unwrap();
    std::fs::write(dir.join("objects/5"), b"being written by the agent").unwrap();
    Vault::open_read_only(&dir, BIG).unwrap();
    assert!(dir.join("objects/5").exists());
    assert!(Vault::open_read_only(_data.as_path(), BIG).is_err(), "not a vault");
}

#[test]
fn the_budget_and_the_floor_skip_copies_without_error() {
    let (_t, data, dir) = setup();
    let f = data.join("big.bin");
    std::fs::write(&f, vec![7u8; 10_000]).unwrap();
    let mut v = Vault::open(&dir, Limits { budget_bytes: 5_000, ..BIG }).unwrap();
    assert_eq!(v.preserve(&File::open(&f).unwrap(), s(&f), 1, None).unwrap(), Preserved::Skipped(SkipReason::Budget));
    let mut v = Vault::open(&dir, Limits { free_floor_bytes: u64::MAX / 2, ..BIG }).unwrap();
    assert_eq!(
        v.preserve(&File::open(&f).unwrap(), s(&f), 1, None).unwrap(),
        Preserved::Skipped(SkipReason::FreeSpaceFloor)
    );
    assert_eq!(v.usage().skipped_floor, 1);
}

/// Issue 14, item 20: one user rewriting a file again and again (each
/// rewrite a new modification time, so a new copy) spends only its own
/// share of the budget; another user's file is still copied.
#[test]
fn one_owner_over_its_share_leaves_room_for_the_others() {
    use std::os::unix::fs::{chown, MetadataExt};
    let (_t, data, dir) = setup();
    let (a_uid, b_uid) = (60_001, 60_002);
    let (fa, fb, fr) = (data.join("a.log"), data.join("b.doc"), data.join("a.img"));
    for (f, uid) in [(&fa, a_uid), (&fb, b_uid), (&fr, a_uid)] {
        std::fs::write(f, vec![b'x'; 10_000]).unwrap();
        chown(f, Some(uid), None).unwrap();
    }
    // Room for four copies in all, two per owner.
    let mut v = Vault::open(&dir, Limits { budget_bytes: 40_000, user_budget_bytes: 20_000, ..BIG }).unwrap();
    let mut kept = Vec::new();
    for round in 0..6u8 {
        std::fs::write(&fa, vec![round; 10_000]).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + u64::from(round));
        File::options().write(true).open(&fa).unwrap().set_modified(t).unwrap();
        kept.push(v.preserve(&File::open(&fa).unwrap(), s(&fa), u64::from(round), None).unwrap());
    }
    assert!(matches!(kept[..2], [Preserved::Stored(_), Preserved::Stored(_)]), "{kept:?}");
    assert!(kept[2..].iter().all(|p| *p == Preserved::Skipped(SkipReason::UserBudget)), "{kept:?}");
    // B's copy fits: A could not take the rest of the budget.
    let eb = stored(v.preserve(&File::open(&fb).unwrap(), s(&fb), 10, None).unwrap());
    assert_eq!(eb.meta.uid, b_uid);
    // A's file kept by range is charged to A too: nothing left of its share.
    let file = File::options().read(true).write(true).open(&fr).unwrap();
    stored(v.begin_ranges(&file, s(&fr), 11, None).unwrap());
    let inode = (file.metadata().unwrap().dev(), file.metadata().unwrap().ino());
    assert_eq!(v.keep_range(inode, 0, 4096, &mut || false).unwrap(), Some(Preserved::Skipped(SkipReason::UserBudget)));
    let users: std::collections::HashMap<u32, mamori_vault::UserUsage> = v.users().map(|(u, x)| (u, *x)).collect();
    assert_eq!(users[&a_uid].bytes, 20_000);
    assert_eq!(users[&a_uid].skipped_user_budget, 5);
    assert_eq!(users[&b_uid].bytes, 10_000);
    assert_eq!(users[&b_uid].skipped_user_budget + users[&b_uid].skipped_budget, 0);
    assert_eq!(v.usage().skipped_user_budget, 5);
    // The shares are rebuilt from the log: a restarted agent goes on charging A.
    drop(v);
    let mut v = Vault::open(&dir, Limits { budget_bytes: 40_000, user_budget_bytes: 20_000, ..BIG }).unwrap();
    std::fs::write(&fa, b"once more").unwrap();
    assert_eq!(
        v.preserve(&File::open(&fa).unwrap(), s(&fa), 20, None).unwrap(),
        Preserved::Skipped(SkipReason::UserBudget)
    );
}

#[test]
fn a_full_filesystem_skips_the_copy_and_leaves_the_original() {
    let (tmp, _data, _dir) = setup();
    let mnt = tmp.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(&mnt).status();
    assert!(ok.unwrap().success(), "mount a small tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&mnt);
    let f = mnt.join("doc.bin");
    std::fs::write(&f, vec![1u8; 700 * 1024]).unwrap();
    let mut v = Vault::open(&mnt.join("vault"), BIG).unwrap();
    assert_eq!(
        v.preserve(&File::open(&f).unwrap(), s(&f), 1, None).unwrap(),
        Preserved::Skipped(SkipReason::FreeSpaceFloor)
    );
    assert_eq!(std::fs::read(&f).unwrap(), vec![1u8; 700 * 1024]);
    assert_eq!(std::fs::read_dir(mnt.join("vault/objects")).unwrap().count(), 0, "no partial object left");
}

#[test]
fn expiry_releases_old_entries_but_keeps_what_an_incident_needs() {
    let (_t, data, dir) = setup();
    let (a, b) = (data.join("a.txt"), data.join("b.txt"));
    std::fs::write(&a, b"aaa").unwrap();
    std::fs::write(&b, b"bbb").unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let ea = stored(v.preserve(&File::open(&a).unwrap(), s(&a), 10, None).unwrap());
    stored(v.preserve(&File::open(&b).unwrap(), s(&b), 10, None).unwrap());
    let keep_b = |e: &mamori_vault::Entry| e.meta.path.ends_with("b.txt");
    assert_eq!(v.expire(1_000_000, &keep_b).unwrap(), 3);
    assert!(v.entries_for_path(s(&a)).is_empty());
    assert!(!v.object_path(&ea).exists());
    assert_eq!(v.entries_for_path(s(&b)).len(), 1);
    let v = Vault::open(&dir, BIG).unwrap();
    assert_eq!(v.entries_for_path(s(&b)).len(), 1, "the rewritten log holds what was kept");
}

#[test]
fn a_tampered_copy_is_refused_on_restore() {
    let (_t, data, dir) = setup();
    let f = data.join("x.txt");
    std::fs::write(&f, b"good").unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let e = stored(v.preserve(&File::open(&f).unwrap(), s(&f), 1, None).unwrap());
    std::fs::write(v.object_path(&e), b"evil").unwrap();
    assert!(matches!(v.restore_to(&e, &f), Err(mamori_vault::VaultError::HashMismatch { .. })));
    assert_eq!(std::fs::read(&f).unwrap(), b"good", "the original is untouched");
}

/// Unmounts (and detaches a loop device) when the test ends, pass or fail.
struct Unmount(std::path::PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-d").arg(&self.0).status();
    }
}

fn mount(args: &[&str], what: &Path, at: &Path) -> Unmount {
    std::fs::create_dir_all(at).unwrap();
    let ok = std::process::Command::new("mount").args(args).arg(what).arg(at).status().unwrap();
    assert!(ok.success(), "mount {args:?} {}", what.display());
    Unmount(at.to_path_buf())
}

// Regression: the agent's index keeps pins as inode summaries only, and its
// orphan sweep once took their objects for orphans and unlinked them.
#[test]
fn pins_survive_reopening_the_vault() {
    let (_t, data, dir) = setup();
    let f = data.join("ledger.xlsx");
    std::fs::write(&f, b"rows").unwrap();
    let e = stored(Vault::open(&dir, BIG).unwrap().pin(&File::open(&f).unwrap(), s(&f), 10, None).unwrap());
    assert_eq!(e.hash.as_deref(), Some(blake3::hash(b"rows").to_hex().as_str()), "small pins are hashed");
    let mut v = Vault::open(&dir, BIG).unwrap();
    assert!(v.object_path(&e).exists(), "the pin's link is still there");
    assert_eq!(v.pin(&File::open(&f).unwrap(), s(&f), 11, None).unwrap(), Preserved::AlreadyHeld);
    std::fs::remove_file(&f).unwrap();
    let ro = Vault::open_read_only(&dir, BIG).unwrap();
    assert_eq!(ro.entries_for_path(s(&f)), vec![&e]);
    ro.restore_to(&e, &f).unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"rows");
}

#[test]
fn reopening_gives_the_same_index_and_drops_entries_without_objects() {
    let (_t, data, dir) = setup();
    let paths: Vec<_> = (0..5).map(|i| data.join(format!("f{i}"))).collect();
    let mut v = Vault::open(&dir, BIG).unwrap();
    for (i, p) in paths.iter().enumerate() {
        std::fs::write(p, vec![i as u8; 100 * i]).unwrap();
        stored(v.preserve(&File::open(p).unwrap(), s(p), i as u64, None).unwrap());
    }
    // A second version of f1.
    std::fs::write(&paths[1], b"changed").unwrap();
    stored(v.preserve(&File::open(&paths[1]).unwrap(), s(&paths[1]), 9, None).unwrap());
    let before: Vec<Vec<mamori_vault::Entry>> =
        paths.iter().map(|p| v.entries_for_path(s(p)).into_iter().cloned().collect()).collect();
    let usage = v.usage();
    drop(v);
    let v = Vault::open(&dir, BIG).unwrap();
    let after: Vec<Vec<mamori_vault::Entry>> =
        paths.iter().map(|p| v.entries_for_path(s(p)).into_iter().cloned().collect()).collect();
    assert_eq!(before, after);
    assert_eq!(after[1].len(), 2, "both versions, oldest first");
    assert!(after[1][0].taken_ns < after[1][1].taken_ns);
    assert_eq!(v.usage(), usage);
    let gone = &before[3][0];
    std::fs::remove_file(v.object_path(gone)).unwrap();
    drop(v);
    let v = Vault::open(&dir, BIG).unwrap();
    assert!(v.entries_for_path(s(&paths[3])).is_empty());
    assert_eq!(v.entries_for_path(s(&paths[4])).len(), 1);
}

#[test]
fn a_line_from_before_the_object_field_still_loads() {
    let (_t, data, dir) = setup();
    let f = data.join("old.txt");
    std::fs::write(&f, b"old").unwrap();
    let e = stored(Vault::open(&dir, BIG).unwrap().preserve(&File::open(&f).unwrap(), s(&f), 1, None).unwrap());
    let log = dir.join("entries.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let old = text.replace(&format!(",\"object\":\"{}\"", e.object), "");
    assert_ne!(old, text);
    std::fs::write(&log, old).unwrap();
    let v = Vault::open(&dir, BIG).unwrap();
    assert_eq!(v.entries_for_path(s(&f)), vec![&e]);
}

#[test]
fn preserving_leaves_the_callers_file_position_alone() {
    use std::io::{Read, Seek, SeekFrom};
    let (_t, data, dir) = setup();
    let f = data.join("pos.txt");
    std::fs::write(&f, b"0123456789").unwrap();
    let mut file = File::open(&f).unwrap();
    file.seek(SeekFrom::Start(4)).unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let e = stored(v.preserve(&file, s(&f), 1, None).unwrap());
    stored(v.pin(&file, s(&f), 1, None).unwrap());
    assert_eq!(std::fs::read(v.object_path(&e)).unwrap(), b"0123456789");
    let mut rest = String::new();
    file.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "456789");
}

// A file that grows between the free-space check and the copy (here one
// whose size says 0 but reads as megabytes) runs the vault out of space
// mid-copy: the partial copy goes, the result is a skip, not an error.
#[test]
fn running_out_of_space_mid_copy_leaves_no_partial_object() {
    let (tmp, _data, _dir) = setup();
    let mnt = tmp.path().join("tiny");
    let _guard = mount(&["-t", "tmpfs", "-o", "size=256k"], Path::new("tmpfs"), &mnt);
    let src = Path::new("/proc/kallsyms");
    let mut v = Vault::open(&mnt.join("vault"), BIG).unwrap();
    assert_eq!(
        v.preserve(&File::open(src).unwrap(), s(src), 1, None).unwrap(),
        Preserved::Skipped(SkipReason::FreeSpaceFloor)
    );
    assert_eq!(v.usage().skipped_floor, 1);
    assert_eq!(std::fs::read_dir(mnt.join("vault/objects")).unwrap().count(), 0, "no partial object left");
    drop(v);
    assert!(Vault::open(&mnt.join("vault"), BIG).unwrap().usage().entries == 0);
}

// A vault whose filesystem has no inode left cannot even make the copy's
// file: a skip for want of space, as when its bytes do not fit, not an error.
#[test]
fn a_vault_out_of_inodes_skips_the_copy() {
    let (tmp, data, _dir) = setup();
    let mnt = tmp.path().join("few-inodes");
    let _guard = mount(&["-t", "tmpfs", "-o", "size=4m,nr_inodes=8"], Path::new("tmpfs"), &mnt);
    let mut v = Vault::open(&mnt.join("vault"), BIG).unwrap();
    let f = data.join("doc.txt");
    std::fs::write(&f, b"a document").unwrap();
    let mut results = Vec::new();
    for now in 0..8 {
        // Opened anew each time: a file already copied is not copied again.
        std::fs::write(&f, format!("a document, version {now}")).unwrap();
        let copy = File::open(&f).unwrap();
        std::fs::remove_file(&f).unwrap();
        std::fs::write(&f, b"a document").unwrap();
        results.push(v.preserve(&copy, s(&f), now, None).unwrap());
    }
    assert!(matches!(results[0], Preserved::Stored(_)), "{results:?}");
    assert_eq!(results.last(), Some(&Preserved::Skipped(SkipReason::FreeSpaceFloor)), "{results:?}");
    assert!(v.usage().skipped_floor > 0);
}

/// A before-image on XFS or btrfs is a reflink: it shares the file's blocks.
#[test]
fn a_copy_on_a_reflink_filesystem_shares_blocks() {
    let tools = [("mkfs.xfs", &["-q", "-f", "-m", "reflink=1"][..]), ("mkfs.btrfs", &["-q", "-f"][..])];
    let Some((mkfs, args)) = tools.iter().find(|(t, _)| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        println!("note: neither mkfs.xfs (xfsprogs) nor mkfs.btrfs (btrfs-progs) is installed; reflink test skipped");
        return;
    };
    let (tmp, _data, _dir) = setup();
    let image = tmp.path().join("fs.img");
    File::create(&image).unwrap().set_len(512 << 20).unwrap();
    let ok = std::process::Command::new(mkfs).args(*args).arg(&image).status().unwrap();
    assert!(ok.success(), "{mkfs} failed");
    let mnt = tmp.path().join("mnt");
    let _guard = mount(&["-o", "loop"], &image, &mnt);
    let f = mnt.join("disk.img");
    let content: Vec<u8> = (0..64u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&f, &content).unwrap();
    File::open(&f).unwrap().sync_all().unwrap();
    let free = || {
        let c = std::ffi::CString::new(mnt.as_os_str().as_encoded_bytes()).unwrap();
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
        st.f_bfree * st.f_frsize
    };
    let mut v = Vault::open(&mnt.join("vault"), BIG).unwrap();
    let before = free();
    let e = stored(v.preserve(&File::open(&f).unwrap(), s(&f), 1, None).unwrap());
    let used = before.saturating_sub(free());
    assert!(used < 16 << 20, "a 64 MiB copy used {used} bytes");
    std::fs::write(&f, b"encrypted").unwrap();
    v.restore_to(&e, &f).unwrap();
    assert!(std::fs::read(&f).unwrap() == content);

    // Large files ask for a reflink only: here they get one, on ext4 they do not.
    let kept = v.preserve_reflink(&File::open(&f).unwrap(), s(&f), 2, None).unwrap();
    assert!(matches!(kept, Some(Preserved::Stored(_)) | Some(Preserved::AlreadyHeld)), "{kept:?}");

    // A file read whole for its facts is cloned as well, not written from
    // those bytes, and recorded with their hash, which its restore checks.
    let g = mnt.join("sheet.ods");
    let sheet = &content[..1 << 20];
    std::fs::write(&g, sheet).unwrap();
    File::open(&g).unwrap().sync_all().unwrap();
    let hash = *blake3::hash(sheet).as_bytes();
    let before = free();
    let read = mamori_vault::Content { bytes: sheet, blake3: &hash };
    let e = stored(v.preserve_read(&File::open(&g).unwrap(), read, s(&g), 3, None).unwrap());
    let used = before.saturating_sub(free());
    assert!(used < 512 << 10, "a 1 MiB copy used {used} bytes");
    std::fs::write(&g, b"encrypted").unwrap();
    v.restore_to(&e, &g).unwrap();
    assert!(std::fs::read(&g).unwrap() == sheet);
    let (_t, data, dir) = setup();
    let on_ext4 = data.join("big.img");
    std::fs::write(&on_ext4, &content[..1 << 20]).unwrap();
    let mut plain = Vault::open(&dir, BIG).unwrap();
    assert_eq!(plain.preserve_reflink(&File::open(&on_ext4).unwrap(), s(&on_ext4), 1, None).unwrap(), None);
    assert_eq!(std::fs::read_dir(dir.join("objects")).unwrap().count(), 0, "no partial object left");
}

#[test]
fn a_pin_changed_in_place_after_it_was_taken_still_restores() {
    let (_t, data, dir) = setup();
    let f = data.join("notes.txt");
    std::fs::write(&f, b"v1").unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let e = stored(v.pin(&File::open(&f).unwrap(), s(&f), 1, None).unwrap());
    // The owner's later edit, in place (same inode), then a delete.
    std::fs::OpenOptions::new().write(true).open(&f).unwrap().write_all_at(b"v2", 0).unwrap();
    std::fs::remove_file(&f).unwrap();
    let written = v.restore_to(&e, &f).unwrap();
    assert_eq!(std::fs::read(&f).unwrap(), b"v2");
    assert_eq!(written, blake3::hash(b"v2").to_hex().as_str());
}

/// Found by fuzzing `entries.log`: a line with id u64::MAX naming an existing
/// object made every open panic on the next id (`id + 1` overflowed).
#[test]
fn a_log_line_with_an_id_at_the_top_of_the_range_is_dropped() {
    let (_t, data, dir) = setup();
    drop(Vault::open(&dir, BIG).unwrap());
    std::fs::write(dir.join("objects/1"), b"x").unwrap();
    for id in [u64::MAX, u64::MAX - 1, 1 << 63] {
        let line = format!(
            "{{\"id\":{id},\"kind\":\"copy\",\"meta\":{{\"path\":\"/a\",\"dev\":1,\"ino\":2,\"size\":1,\"mode\":0,\
             \"uid\":0,\"gid\":0,\"atime_ns\":0,\"mtime_ns\":0}},\"hash\":null,\"object\":\"1\",\"taken_ns\":1}}\n"
        );
        std::fs::write(dir.join("entries.log"), line).unwrap();
        assert!(Vault::open_read_only(&dir, BIG).unwrap().entries().is_empty());
        let mut v = Vault::open(&dir, BIG).unwrap();
        assert!(v.entries().is_empty());
        // And the ids after it go on from the start, not past the top.
        let f = data.join("a.txt");
        std::fs::write(&f, b"aaaa").unwrap();
        let e = stored(v.preserve(&File::open(&f).unwrap(), s(&f), 10, None).unwrap());
        assert!(e.id < 1 << 62);
        std::fs::write(dir.join("objects/1"), b"x").unwrap();
    }
}

/// Bytes that are not all alike, so a restore of the wrong ones shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// `data` mounted a second time at `tmp/door`: what a process in another
/// mount namespace (smbd under `ip netns exec`, a service with
/// `PrivateTmp=`) opens a file through, the vault's filesystem on a
/// different vfsmount.
fn second_mount(tmp: &Path, data: &Path) -> (Unmount, std::path::PathBuf) {
    let door = tmp.join("door");
    (mount(&["--bind"], data, &door), door)
}

// Regression: smbd in its own mount namespace read a file and deleted it
// (delete-on-close); `linkat` from its descriptor into the vault failed with
// EXDEV, the pin was skipped as NotSameFilesystem though the share and the
// vault were on one filesystem, and the file was lost.
#[test]
fn a_pin_through_another_mount_of_the_vaults_filesystem_is_kept() {
    let (tmp, data, dir) = setup();
    let (_guard, door) = second_mount(tmp.path(), &data);
    let content = pattern(300 << 10);
    let f = data.join("minutes.docx");
    std::fs::write(&f, &content).unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let e = stored(v.pin(&File::open(door.join("minutes.docx")).unwrap(), s(&f), 1, None).unwrap());
    assert_eq!(e.kind, Kind::Pin);
    std::fs::remove_file(door.join("minutes.docx")).unwrap();
    v.restore_to(&e, &f).unwrap();
    assert!(std::fs::read(&f).unwrap() == content, "the pin restores bit for bit");
}

#[test]
fn a_range_keep_through_another_mount_of_the_vaults_filesystem_is_kept() {
    let (tmp, data, dir) = setup();
    let (_guard, door) = second_mount(tmp.path(), &data);
    let content = pattern(300 << 10);
    let f = data.join("disk.img");
    std::fs::write(&f, &content).unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let file = std::fs::OpenOptions::new().read(true).write(true).open(door.join("disk.img")).unwrap();
    // No reflink on ext4, through this mount or any: the agent keeps it by range.
    assert_eq!(v.preserve_reflink(&file, s(&f), 1, None).unwrap(), None);
    let e = stored(v.begin_ranges(&file, s(&f), 1, None).unwrap());
    assert_eq!(e.kind, Kind::Ranges);
    let inode = (e.meta.dev, e.meta.ino);
    assert_eq!(v.keep_range(inode, 4096 + 3, 9, &mut || false).unwrap(), Some(Preserved::AlreadyHeld));
    file.write_all_at(b"ENCRYPTED", 4096 + 3).unwrap();
    drop(file);
    std::fs::remove_file(door.join("disk.img")).unwrap();
    v.restore_to(&e, &f).unwrap();
    assert!(std::fs::read(&f).unwrap() == content, "the kept blocks over the pinned inode restore bit for bit");
}

// A whole copy reads the opener's descriptor, which works through any mount:
// this passed before the fix too, and must go on passing.
#[test]
fn a_copy_through_another_mount_of_the_vaults_filesystem_is_kept() {
    let (tmp, data, dir) = setup();
    let (_guard, door) = second_mount(tmp.path(), &data);
    let content = pattern(70 << 10);
    let f = data.join("budget.xlsx");
    std::fs::write(&f, &content).unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let e = stored(v.preserve(&File::open(door.join("budget.xlsx")).unwrap(), s(&f), 1, None).unwrap());
    std::fs::write(&f, b"encrypted").unwrap();
    v.restore_to(&e, &f).unwrap();
    assert!(std::fs::read(&f).unwrap() == content);
}

/// A file on another filesystem than the vault's cannot be pinned there,
/// whatever mount it is opened through: that skip stays.
#[test]
fn a_file_on_another_filesystem_is_still_not_pinned() {
    let (tmp, _data, dir) = setup();
    let other = tmp.path().join("other");
    let _guard = mount(&["-t", "tmpfs", "-o", "size=4m"], Path::new("tmpfs"), &other);
    let f = other.join("notes.txt");
    std::fs::write(&f, pattern(5000)).unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let skipped = Preserved::Skipped(SkipReason::NotSameFilesystem);
    assert_eq!(v.pin(&File::open(&f).unwrap(), s(&f), 1, None).unwrap(), skipped);
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&f).unwrap();
    assert_eq!(v.begin_ranges(&file, s(&f), 1, None).unwrap(), skipped);
    assert_eq!(v.preserve_reflink(&file, s(&f), 1, None).unwrap(), None);
    assert_eq!(std::fs::read_dir(dir.join("objects")).unwrap().count(), 0, "nothing left behind");
    assert_eq!(v.usage().entries, 0);
}

/// The agent answers fanotify permission events on the thread that calls
/// the vault: if keeping a file opened it the ordinary way, that open would
/// wait for an answer from the thread making it. Here a listener answers
/// instead, and counts.
#[test]
fn keeping_a_file_through_another_mount_asks_no_permission() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (tmp, data, dir) = setup();
    let (_guard, door) = second_mount(tmp.path(), &data);
    let (f, g) = (data.join("read.docx"), data.join("written.img"));
    std::fs::write(&f, pattern(9000)).unwrap();
    std::fs::write(&g, pattern(9000)).unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let read = File::open(door.join("read.docx")).unwrap();
    let written = std::fs::OpenOptions::new().read(true).write(true).open(door.join("written.img")).unwrap();

    // SAFETY: a plain syscall.
    let fan = unsafe { libc::fanotify_init(libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK, 0) };
    assert!(fan >= 0, "fanotify_init: {}", std::io::Error::last_os_error());
    // SAFETY: a new descriptor that nothing else owns.
    let fan = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fan) };
    // The files themselves, and their directory for its children as the agent marks it.
    let marks = [(&f, 0), (&g, 0), (&data, libc::FAN_EVENT_ON_CHILD)];
    for (p, on_child) in marks {
        let c = std::ffi::CString::new(s(p)).unwrap();
        let fan_fd = std::os::fd::AsRawFd::as_raw_fd(&fan);
        // SAFETY: a valid group descriptor and NUL-terminated path.
        let r = unsafe {
            libc::fanotify_mark(fan_fd, libc::FAN_MARK_ADD, libc::FAN_OPEN_PERM | on_child, libc::AT_FDCWD, c.as_ptr())
        };
        assert_eq!(r, 0, "fanotify_mark: {}", std::io::Error::last_os_error());
    }
    let asked = |work: &mut (dyn FnMut() + Send)| -> usize {
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                work();
                done.store(true, Ordering::SeqCst);
            });
            answer_all(&fan, &done)
        })
    };

    let mut results = Vec::new();
    let n = asked(&mut || {
        results.push(v.pin(&read, s(&f), 1, None).unwrap());
        results.push(v.begin_ranges(&written, s(&g), 1, None).unwrap());
    });
    assert_eq!(n, 0, "keeping asked fanotify for permission: {results:?}");
    assert!(results.iter().all(|r| matches!(r, Preserved::Stored(_))), "{results:?}");
    // The marks do catch an ordinary open, through the vault's own mount too.
    assert_eq!(asked(&mut || drop(File::open(&f).unwrap())), 1);
}

/// Allows every permission event on `fan` until `done` and none is left; returns how many came.
fn answer_all(fan: &std::os::fd::OwnedFd, done: &std::sync::atomic::AtomicBool) -> usize {
    use std::os::fd::AsRawFd;
    let mut count = 0;
    let mut buf = [0u64; 512];
    loop {
        let finished = done.load(std::sync::atomic::Ordering::SeqCst);
        let mut pfd = libc::pollfd { fd: fan.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, 50) };
        if ready <= 0 {
            if finished {
                return count;
            }
            continue;
        }
        // SAFETY: the buffer is as large as we say (u64s keep the records aligned).
        let n = unsafe { libc::read(fan.as_raw_fd(), buf.as_mut_ptr().cast(), std::mem::size_of_val(&buf)) };
        let mut off = 0usize;
        while n > 0 && off + std::mem::size_of::<libc::fanotify_event_metadata>() <= n as usize {
            // SAFETY: a whole record the kernel wrote at an 8-byte-aligned offset.
            let meta = unsafe { &*buf.as_ptr().cast::<u8>().add(off).cast::<libc::fanotify_event_metadata>() };
            if meta.fd >= 0 {
                let answer = libc::fanotify_response { fd: meta.fd, response: libc::FAN_ALLOW };
                // SAFETY: the response struct and the event's descriptor, closed once answered.
                unsafe {
                    libc::write(fan.as_raw_fd(), std::ptr::addr_of!(answer).cast(), std::mem::size_of_val(&answer));
                    libc::close(meta.fd);
                }
                count += 1;
            }
            off += meta.event_len as usize;
        }
    }
}
