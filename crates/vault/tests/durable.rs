//! What the vault makes durable, and what it leaves alone. A file of its
//! own: it reads the machine's count of dirty pages, which the vault's
//! other tests running beside it would move.

mod common;

use std::fs::File;
use std::io::Write;
use std::time::Duration;

use common::{folders, s, stored, BIG};
use mamori_vault::Vault;

/// The page cache waiting to be written out, machine-wide, in KiB.
fn dirty_kib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = meminfo.lines().find(|l| l.starts_with("Dirty:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The vault makes its own copies durable, not everyone's data: a user's
/// file written just before, not yet on disk, stays in the page cache for
/// the kernel's writeback to take in its own time. A `syncfs` each second
/// wrote every program's data out too, and made a program that writes a
/// lot and changes some files several times slower.
#[test]
fn the_vaults_sync_leaves_other_files_dirty_data_alone() {
    const MIB: u64 = 1024;
    let (tmp, dir) = folders("vault-durable-");
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut user = File::create(data.join("user.bin")).unwrap();
    let chunk = vec![0x5au8; 1 << 20];
    for _ in 0..256 {
        user.write_all(&chunk).unwrap();
    }
    drop(user);
    let before = dirty_kib();
    assert!(before >= 200 * MIB, "256 MiB just written should be dirty, {before} KiB are (vm.dirty_* settings?)");

    let doc = data.join("minutes.txt");
    std::fs::write(&doc, "minutes of the meeting\n".repeat(100)).unwrap();
    let mut v = Vault::open(&dir, BIG).unwrap();
    let e = stored(v.preserve(&File::open(&doc).unwrap(), s(&doc), 1, None).unwrap());
    // Two of the vault's sync rounds (one a second), then its last one.
    std::thread::sleep(Duration::from_millis(2500));
    drop(v);
    let after = dirty_kib();
    assert!(after >= 200 * MIB, "the vault wrote the user's data out: {before} KiB dirty before, {after} KiB after");
    let v = Vault::open_read_only(&dir, BIG).unwrap();
    assert_eq!(std::fs::read(v.object_path(&e)).unwrap(), std::fs::read(&doc).unwrap());
}
