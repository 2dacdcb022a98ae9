//! The vault against an ordinary user who controls the files it keeps (and,
//! where the item is about that, the places it looks). Runs as root; the
//! attacker's side runs as an ordinary user through `setpriv`.

mod common;

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{folders, s, stored, BIG};
use mamori_vault::{Kind, Limits, Preserved, SkipReason, Vault};

const MIB: u64 = 1 << 20;
const TIB: u64 = 1 << 40;

/// Runs `script` as the ordinary user; panics if it fails.
fn as_user(script: &str) {
    let out = mamori_testuser::ordinary().command("sh").args(["-c", script]).output().unwrap();
    assert!(out.status.success(), "as the test user: {script}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A root-owned folder the user can reach, with `data/` owned by the user.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (tmp, vault) = folders("vault-hostile-");
    let data = mamori_testuser::ordinary().folder(tmp.path(), "data");
    (tmp, data, vault)
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

/// A root-owned sticky folder anyone may add to, like /tmp.
fn shared(tmp: &Path) -> PathBuf {
    let shared = tmp.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, PermissionsExt::from_mode(0o1777)).unwrap();
    shared
}

fn refused(result: Result<Vault, mamori_vault::VaultError>) -> mamori_vault::UnsafeDir {
    match result {
        Err(mamori_vault::VaultError::Unsafe(why)) => why,
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("an unsafe vault directory was accepted"),
    }
}

// Issue 14, item 4: a vault directory someone else controls feeds root
// forged entries to restore, or takes root's writes elsewhere.
#[test]
fn a_vault_directory_made_by_a_user_is_refused() {
    let (tmp, _data, _dir) = setup();
    let shared = shared(tmp.path());
    let vault = shared.join(".mamori-vault");
    as_user(&format!("mkdir -m 700 {}", vault.display()));
    let why = refused(Vault::open(&vault, BIG));
    assert!(matches!(why, mamori_vault::UnsafeDir::NotRootOwned { .. }), "{why}");
    assert!(why.to_string().contains(".mamori-vault") && why.to_string().contains("chown root"), "{why}");
    refused(Vault::open_read_only(&vault, BIG));
    assert!(!vault.join("VAULT").exists() && !vault.join("objects").exists(), "nothing written into it");
}

#[test]
fn a_symlinked_vault_directory_is_refused() {
    let (tmp, _data, _dir) = setup();
    let real = tmp.path().join("real");
    Vault::open(&real, BIG).unwrap();
    let shared = shared(tmp.path());
    let vault = shared.join(".mamori-vault");
    as_user(&format!("ln -s {} {}", real.display(), vault.display()));
    assert!(matches!(refused(Vault::open(&vault, BIG)), mamori_vault::UnsafeDir::Symlink { .. }));
    assert!(matches!(refused(Vault::open_read_only(&vault, BIG)), mamori_vault::UnsafeDir::Symlink { .. }));
    // Even root's own link: the vault is only ever a real directory.
    let linked = tmp.path().join("linked");
    std::os::unix::fs::symlink(&real, &linked).unwrap();
    assert!(matches!(refused(Vault::open(&linked, BIG)), mamori_vault::UnsafeDir::Symlink { .. }));
}

#[test]
fn a_vault_writable_by_others_or_under_a_users_folder_is_refused() {
    let (tmp, data, _dir) = setup();
    let open = tmp.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, PermissionsExt::from_mode(0o777)).unwrap();
    assert!(matches!(refused(Vault::open(&open, BIG)), mamori_vault::UnsafeDir::Writable { .. }));
    // Root made this one, but the user owns the folder above: they can swap it.
    let under = data.join("vault");
    std::fs::create_dir(&under).unwrap();
    std::fs::set_permissions(&under, PermissionsExt::from_mode(0o700)).unwrap();
    match refused(Vault::open(&under, BIG)) {
        mamori_vault::UnsafeDir::UnsafeAncestor { path, .. } => assert_eq!(path, data),
        other => panic!("{other}"),
    }
    // A link on the way is followed and its target checked too.
    let via = tmp.path().join("via");
    std::os::unix::fs::symlink(&data, &via).unwrap();
    assert!(matches!(refused(Vault::open(&via.join("vault"), BIG)), mamori_vault::UnsafeDir::UnsafeAncestor { .. }));
    // A root tempdir under /tmp (sticky, root's) is fine, and so is a new vault in it.
    let ok = tempfile::tempdir().unwrap();
    Vault::open(&ok.path().join("vault"), BIG).unwrap();
    Vault::open_read_only(&ok.path().join("vault"), BIG).unwrap();
    mamori_vault::check_private_dir(ok.path()).unwrap();
}

#[test]
fn a_forged_log_line_cannot_reach_outside_the_vault() {
    let (_t, data, dir) = setup();
    let f = data.join("a.txt");
    std::fs::write(&f, b"aaaa").unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let real = stored(v.preserve(&File::open(&f).unwrap(), s(&f), 10, None).unwrap());
    drop(v);
    let secret = dir.join("secret");
    std::fs::write(&secret, b"root only").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", dir.join("objects/999")).unwrap();
    let mut text = String::new();
    let mut forged = Vec::new();
    for (id, object) in [(900, "../secret"), (901, "/etc/shadow"), (999, "999")] {
        let path = data.join(format!("stolen-{id}"));
        let e = mamori_vault::Entry {
            id,
            object: object.into(),
            meta: mamori_vault::Meta { path: s(&path).into(), ..real.meta.clone() },
            hash: None,
            ..real.clone()
        };
        text.push_str(&serde_json::to_string(&e).unwrap());
        text.push('\n');
        forged.push((e, path));
    }
    let mut log = OpenOptions::new().append(true).open(dir.join("entries.log")).unwrap();
    std::io::Write::write_all(&mut log, text.as_bytes()).unwrap();
    for writable in [false, true] {
        let v = if writable { Vault::open(&dir, BIG) } else { Vault::open_read_only(&dir, BIG) }.unwrap();
        assert_eq!(v.entries().len(), 1, "only the real entry is indexed: {:?}", v.entries());
        for (e, path) in &forged {
            assert!(v.entries_for_path(s(path)).is_empty());
            assert!(v.restore_to(e, path).is_err(), "restored {} from {}", path.display(), e.object);
            assert!(!path.exists());
        }
    }
    assert_eq!(std::fs::read(&secret).unwrap(), b"root only");
}

fn read_dir_fd(dir: &Path) -> File {
    File::open(dir).unwrap()
}

/// The user's `data/report.txt`, kept by the vault; `outside` is a file of
/// root's the user would like root to overwrite.
fn kept_report(tmp: &Path, data: &Path, dir: &Path) -> (Vault, mamori_vault::Entry, PathBuf, PathBuf) {
    let f = data.join("report.txt");
    as_user(&format!("printf 'the report' > {f}; chmod 640 {f}", f = f.display()));
    let mut v = Vault::open(dir, BIG).unwrap();
    let e = stored(v.preserve(&File::open(&f).unwrap(), s(&f), 1, None).unwrap());
    let outside = tmp.join("outside");
    std::fs::write(&outside, b"root's own file").unwrap();
    (v, e, f, outside)
}

// Issue 14, item 3: root restoring into a folder the user controls.
#[test]
fn restore_at_replaces_a_link_at_the_name_and_leaves_its_target_alone() {
    let (tmp, data, dir) = setup();
    let (v, e, f, outside) = kept_report(tmp.path(), &data, &dir);
    as_user(&format!("rm {f}; ln -s {} {f}", outside.display(), f = f.display()));
    let written = v.restore_at(&e, read_dir_fd(&data).as_fd(), "report.txt".as_ref()).unwrap();
    assert_eq!(Some(written), e.hash);
    assert_eq!(std::fs::read(&outside).unwrap(), b"root's own file");
    let m = std::fs::symlink_metadata(&f).unwrap();
    assert!(m.is_file(), "the link was replaced by the file");
    assert_eq!((m.uid(), m.mode() & 0o7777), (mamori_testuser::ordinary().uid, 0o640));
    assert_eq!(std::fs::read(&f).unwrap(), b"the report");
    let names: Vec<_> = std::fs::read_dir(&data).unwrap().map(|d| d.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("report.txt")], "no temp file left");
    // A name is one component: nothing can climb out of the directory given.
    assert!(v.restore_at(&e, read_dir_fd(&data).as_fd(), "../outside".as_ref()).is_err());
    assert_eq!(std::fs::read(&outside).unwrap(), b"root's own file");
}

#[test]
fn a_directory_swapped_for_a_link_takes_no_restore_elsewhere() {
    let (tmp, data, dir) = setup();
    let sub = data.join("sub");
    as_user(&format!("mkdir {}", sub.display()));
    let (v, e, f, _) = kept_report(tmp.path(), &sub, &dir);
    let elsewhere = tmp.path().join("etc");
    std::fs::create_dir(&elsewhere).unwrap();
    // The caller resolved the directory before the user swapped it.
    let held = read_dir_fd(&sub);
    as_user(&format!("mv {sub} {sub}.old; ln -s {} {sub}", elsewhere.display(), sub = sub.display()));
    assert!(v.restore_to(&e, &f).is_err(), "restore_to follows no link to the directory");
    v.restore_at(&e, held.as_fd(), "report.txt".as_ref()).unwrap();
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing written through the link");
    assert_eq!(std::fs::read(data.join("sub.old/report.txt")).unwrap(), b"the report");
}

#[test]
fn content_hash_at_refuses_a_fifo_or_a_link_at_once() {
    let (tmp, data, _dir) = setup();
    let outside = tmp.path().join("outside");
    std::fs::write(&outside, b"root's own file").unwrap();
    as_user(&format!(
        "mkfifo {d}/pipe; ln -s {} {d}/link; printf plain > {d}/plain",
        outside.display(),
        d = data.display()
    ));
    let (tx, rx) = std::sync::mpsc::channel();
    let at = data.clone();
    std::thread::spawn(move || {
        let dir = read_dir_fd(&at);
        let hash = |name: &str| mamori_vault::content_hash_at(dir.as_fd(), name.as_ref());
        tx.send((hash("pipe"), hash("link"), hash("plain"))).unwrap();
    });
    let (pipe, link, plain) = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("content_hash_at hung");
    assert!(matches!(pipe, Err(mamori_vault::VaultError::NotRegular { .. })), "{pipe:?}");
    assert!(matches!(link, Err(mamori_vault::VaultError::NotRegular { .. })), "{link:?}");
    assert_eq!(plain.unwrap(), blake3::hash(b"plain").to_hex().as_str());
}
