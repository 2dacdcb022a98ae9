//! What keeping a small file costs the writer who waits for it: the copy
//! of a 32 KiB file that is about to be rewritten (on ext4 here, so bytes
//! rather than a reflink), from a new nameless file to its entry in the log.
//! Each sample copies a file of its own: the vault keeps one copy of an
//! unchanged file and would answer a second with "already held". Two
//! ways: as the agent makes it for a rewrite (from bytes read already), and
//! from the file.

use std::fs::File;
use std::io::Write;

use mamori_vault::{Content, Limits, Preserved, Vault};

const SIZE: usize = 32 << 10;

fn main() {
    divan::main();
}

/// A new 32 KiB file of random bytes, as `(open file, path, its bytes)`.
fn a_file(dir: &std::path::Path, n: u32, state: &mut u64) -> (File, String, Vec<u8>) {
    let path = dir.join(format!("f{n}"));
    let bytes: Vec<u8> = (0..SIZE)
        .map(|_| {
            *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (*state >> 56) as u8
        })
        .collect();
    File::create(&path).unwrap().write_all(&bytes).unwrap();
    (File::open(&path).unwrap(), path.to_str().unwrap().to_owned(), bytes)
}

fn vault(dir: &std::path::Path) -> Vault {
    let limits =
        Limits { budget_bytes: u64::MAX, user_budget_bytes: u64::MAX, free_floor_bytes: 0, retention_ns: u64::MAX };
    Vault::open(&dir.join("vault"), limits).unwrap()
}

/// The copy as the agent makes it for a rewrite: from the bytes (and their
/// hash) the sensor read for the file's facts, into a nameless file made
/// ahead of it (`Vault::prepare`, here between samples).
#[divan::bench(sample_count = 200, sample_size = 1)]
fn copy_of_a_32kib_file_read_already(bencher: divan::Bencher) {
    let tmp = tempfile::Builder::new().prefix("mamori-bench-").tempdir_in("/var/tmp").unwrap();
    let vault = std::cell::RefCell::new(vault(tmp.path()));
    let (mut n, mut state) = (0u32, 7u64);
    bencher
        .counter(divan::counter::BytesCount::new(SIZE))
        .with_inputs(|| {
            n += 1;
            vault.borrow_mut().prepare();
            let (file, path, bytes) = a_file(tmp.path(), n, &mut state);
            let hash = *blake3::hash(&bytes).as_bytes();
            (file, path, bytes, hash)
        })
        .bench_local_values(|(file, path, bytes, hash)| {
            let read = Content { bytes: &bytes, blake3: &hash };
            let kept = vault.borrow_mut().preserve_read(&file, read, &path, 1, None).unwrap();
            assert!(matches!(kept, Preserved::Stored(_)));
        });
}

/// The copy read from the file itself, into a nameless file made then.
#[divan::bench(sample_count = 200, sample_size = 1)]
fn copy_of_a_32kib_file(bencher: divan::Bencher) {
    // Under /var/tmp: a real disk, where /tmp may be memory.
    let tmp = tempfile::Builder::new().prefix("mamori-bench-").tempdir_in("/var/tmp").unwrap();
    let mut vault = vault(tmp.path());
    let (mut n, mut state) = (0u32, 7u64);
    bencher
        .counter(divan::counter::BytesCount::new(SIZE))
        .with_inputs(|| {
            n += 1;
            let (file, path, _) = a_file(tmp.path(), n, &mut state);
            (file, path)
        })
        .bench_local_values(|(file, path)| {
            assert!(matches!(vault.preserve(&file, &path, 1, None).unwrap(), Preserved::Stored(_)));
        });
}
