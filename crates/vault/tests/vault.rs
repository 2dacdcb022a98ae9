//! The vault on real files in temporary folders (as root: pins need CAP_DAC_READ_SEARCH).

use std::fs::File;
use std::path::Path;

use mamori_vault::{Kind, Limits, Preserved, SkipReason, Vault};

const BIG: Limits = Limits { budget_bytes: 1 << 30, free_floor_bytes: 0, retention_ns: 1_000 };

fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::Builder::new().prefix("vault-test-").tempdir_in("/var/tmp").unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let vault = tmp.path().join("vault");
    (tmp, data, vault)
}

fn stored(p: Preserved) -> mamori_vault::Entry {
    match p {
        Preserved::Stored(e) => e,
        other => panic!("expected a stored entry, got {other:?}"),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
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
    let e = stored(v.preserve(&File::open(&f).unwrap(), s(&f), 10).unwrap());
    assert_eq!(e.kind, Kind::Copy);
    assert_eq!(v.preserve(&File::open(&f).unwrap(), s(&f), 11).unwrap(), Preserved::AlreadyHeld);
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
fn a_pin_keeps_a_deleted_file() {
    let (_t, data, dir) = setup();
    let f = data.join("photo.jpg");
    std::fs::write(&f, b"jpeg bytes").unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let e = stored(v.pin(&File::open(&f).unwrap(), s(&f), 10).unwrap());
    assert_eq!(v.pin(&File::open(&f).unwrap(), s(&f), 11).unwrap(), Preserved::AlreadyHeld);
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
        stored(v.preserve(&File::open(&f).unwrap(), s(&f), 10).unwrap());
    }
    // A crash mid-append and an object whose line never got written.
    let mut log = std::fs::OpenOptions::new().append(true).open(dir.join("entries.log")).unwrap();
    std::io::Write::write_all(&mut log, b"{\"id\": 99, \"kind\": \"co").unwrap();
    std::fs::write(dir.join("objects/77"), b"orphan").unwrap();
    let v = Vault::open(&dir, BIG).unwrap();
    assert_eq!(v.entries_for_path(s(&f)).len(), 1);
    assert!(!dir.join("objects/77").exists(), "orphan removed");
    // A lost log leaves an empty but working vault.
    drop(v);
    std::fs::remove_file(dir.join("entries.log")).unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    assert!(v.entries_for_path(s(&f)).is_empty());
    stored(v.preserve(&File::open(&f).unwrap(), s(&f), 12).unwrap());
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
    assert_eq!(v.preserve(&File::open(&f).unwrap(), s(&f), 1).unwrap(), Preserved::Skipped(SkipReason::Budget));
    let mut v = Vault::open(&dir, Limits { free_floor_bytes: u64::MAX / 2, ..BIG }).unwrap();
    assert_eq!(v.preserve(&File::open(&f).unwrap(), s(&f), 1).unwrap(), Preserved::Skipped(SkipReason::FreeSpaceFloor));
    assert_eq!(v.usage().skipped_floor, 1);
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
    assert_eq!(v.preserve(&File::open(&f).unwrap(), s(&f), 1).unwrap(), Preserved::Skipped(SkipReason::FreeSpaceFloor));
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
    let ea = stored(v.preserve(&File::open(&a).unwrap(), s(&a), 10).unwrap());
    stored(v.preserve(&File::open(&b).unwrap(), s(&b), 10).unwrap());
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
    let e = stored(v.preserve(&File::open(&f).unwrap(), s(&f), 1).unwrap());
    std::fs::write(v.object_path(&e), b"evil").unwrap();
    assert!(matches!(v.restore_to(&e, &f), Err(mamori_vault::VaultError::HashMismatch { .. })));
    assert_eq!(std::fs::read(&f).unwrap(), b"good", "the original is untouched");
}
