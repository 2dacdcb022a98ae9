//! The vault against an ordinary user who controls the files it keeps (and,
//! where the item is about that, the places it looks). Runs as root; the
//! attacker's side runs as an ordinary user through `setpriv`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use mamori_vault::{Kind, Limits, Preserved, SkipReason, Vault};

const BIG: Limits = Limits { budget_bytes: 1 << 30, free_floor_bytes: 0, retention_ns: 1_000 };
const MIB: u64 = 1 << 20;
const TIB: u64 = 1 << 40;
const USER: &str = "mamori-vault-t";

/// An ordinary user (uid, gid), made once.
fn user() -> (u32, u32) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Another test binary may be adding it at the same time: only the lookup counts.
        let _ = Command::new("useradd")
            .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER])
            .output();
    });
    let id = |flag| {
        let out = Command::new("id").args([flag, USER]).output().expect("id");
        assert!(out.status.success(), "user {USER} could not be made");
        String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

/// Runs `script` as the ordinary user; panics if it fails.
fn as_user(script: &str) {
    let (uid, gid) = user();
    let out = Command::new("setpriv")
        .args([&format!("--reuid={uid}"), &format!("--regid={gid}"), "--clear-groups", "sh", "-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "as {USER}: {script}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A root-owned folder the user can reach, with `data/` owned by the user.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::Builder::new().prefix("vault-hostile-").tempdir_in("/var/tmp").unwrap();
    std::fs::set_permissions(tmp.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let (uid, gid) = user();
    std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
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

fn pattern(len: u64, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// The user's sparse file of `size` bytes with data at `islands`; opened by
/// root to write, as the agent holds it when it begins keeping by range.
fn sparse_file(data: &Path, size: u64, islands: &[(u64, u64)]) -> (PathBuf, File) {
    let f = data.join("disk.img");
    as_user(&format!("truncate -s {size} {}", f.display()));
    let file = OpenOptions::new().read(true).write(true).open(&f).unwrap();
    for (i, &(at, len)) in islands.iter().enumerate() {
        file.write_all_at(&pattern(len, i as u8), at).unwrap();
    }
    file.sync_all().unwrap();
    (f, file)
}

fn inode(file: &File) -> (u64, u64) {
    let m = file.metadata().unwrap();
    (m.dev(), m.ino())
}

// Issue 14, item 2: `truncate -s 0` of a sparse terabyte kept by range made
// the agent allocate a terabyte and abort.
#[test]
fn truncating_a_sparse_terabyte_kept_by_range_keeps_only_its_data() {
    let (_t, data, dir) = setup();
    let islands = [(0, 3 * MIB), (TIB / 2, 64 << 10), (TIB - 8192, 8192)];
    let (f, file) = sparse_file(&data, TIB, &islands);
    let mut v = Vault::open(&dir, BIG).unwrap();
    let e = stored(v.begin_ranges(&file, s(&f), 1, None).unwrap());
    assert_eq!(e.kind, Kind::Ranges);
    // The truncate's pre-content event: everything from 0 to the end is at risk.
    assert_eq!(v.keep_range(inode(&file), 0, 0, &mut || false).unwrap(), Some(Preserved::AlreadyHeld));
    let data_bytes: u64 = islands.iter().map(|i| i.1).sum();
    assert_eq!(v.usage().bytes, data_bytes, "only the data is charged, not the holes");
    let log_len = std::fs::metadata(v.object_path(&e)).unwrap().len();
    assert!(log_len < data_bytes + 64 * 1024, "the kept ranges take {log_len} bytes");
    as_user(&format!("truncate -s 0 {}", f.display()));
    // A later write where a hole was is not kept again: the hole is kept already.
    assert_eq!(v.keep_range(inode(&file), TIB / 4, 4, &mut || false).unwrap(), Some(Preserved::AlreadyHeld));
    assert_eq!(v.usage().bytes, data_bytes);
}

#[test]
fn a_range_over_the_budget_is_refused_and_reported() {
    let (_t, data, dir) = setup();
    let (f, file) = sparse_file(&data, TIB, &[(0, 3 * MIB), (TIB - 4 * MIB, 4 * MIB)]);
    let mut v = Vault::open(&dir, Limits { budget_bytes: 2 * MIB, ..BIG }).unwrap();
    stored(v.begin_ranges(&file, s(&f), 1, None).unwrap());
    assert_eq!(v.keep_range(inode(&file), 0, 0, &mut || false).unwrap(), Some(Preserved::Skipped(SkipReason::Budget)));
    assert_eq!(v.usage().skipped_budget, 1);
    assert!(v.usage().bytes <= 2 * MIB, "kept {} bytes over a budget of 2 MiB", v.usage().bytes);
    // What fits is still kept: a small write at the start is held already.
    assert_eq!(v.keep_range(inode(&file), 0, 4096, &mut || false).unwrap(), Some(Preserved::AlreadyHeld));
}

#[test]
fn a_restore_of_a_sparse_file_kept_by_range_brings_back_its_holes_as_zeros() {
    let (_t, data, dir) = setup();
    let size = 256 * MIB;
    let islands = [(0, 2 * MIB + 4096), (100 * MIB, 4096), (size - 3000, 3000)];
    let (f, file) = sparse_file(&data, size, &islands);
    let mut v = Vault::open(&dir, BIG).unwrap();
    let e = stored(v.begin_ranges(&file, s(&f), 1, None).unwrap());
    assert_eq!(v.keep_range(inode(&file), 0, 0, &mut || false).unwrap(), Some(Preserved::AlreadyHeld));
    // Whole blocks are kept: the last island's block from its start.
    assert_eq!(v.usage().bytes, 2 * MIB + 3 * 4096);
    // The attacker empties the file and writes where a hole was.
    as_user(&format!(
        "truncate -s 0 {f}; printf EVIL | dd of={f} bs=1 seek={} conv=notrunc status=none",
        50 * MIB,
        f = f.display()
    ));
    assert_eq!(v.keep_range(inode(&file), 50 * MIB, 4, &mut || false).unwrap(), Some(Preserved::AlreadyHeld));
    drop(file);
    let out = data.join("restored.img");
    v.restore_to(&e, &out).unwrap();
    let got = File::open(&out).unwrap();
    let m = got.metadata().unwrap();
    assert_eq!(m.len(), size);
    for (i, &(at, len)) in islands.iter().enumerate() {
        let mut buf = vec![0; len as usize];
        got.read_exact_at(&mut buf, at).unwrap();
        assert!(buf == pattern(len, i as u8), "island {i} at {at} differs");
    }
    let mut hole = vec![1u8; MIB as usize];
    got.read_exact_at(&mut hole, 50 * MIB).unwrap();
    assert!(hole.iter().all(|&b| b == 0), "the hole the attacker wrote into reads as zeros again");
    assert!(m.blocks() * 512 < 32 * MIB, "the restored file stays sparse ({} bytes allocated)", m.blocks() * 512);
}
