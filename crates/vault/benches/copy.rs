//! What keeping a small file costs the writer who waits for it: the copy
//! of a 32 KiB file that is about to be rewritten (on ext4 here, so bytes
//! rather than a reflink), from a new nameless file to its entry in the log.
//! Each sample copies a file of its own: the vault keeps one copy of an
//! unchanged file and would answer a second with "already held".

use std::fs::File;
use std::io::Write;

use mamori_vault::{Limits, Preserved, Vault};

const SIZE: usize = 32 << 10;

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 200, sample_size = 1)]
fn copy_of_a_32kib_file(bencher: divan::Bencher) {
    // Under /var/tmp: a real disk, where /tmp may be memory.
    let tmp = tempfile::Builder::new().prefix("mamori-bench-").tempdir_in("/var/tmp").unwrap();
    let limits =
        Limits { budget_bytes: u64::MAX, user_budget_bytes: u64::MAX, free_floor_bytes: 0, retention_ns: u64::MAX };
    let mut vault = Vault::open(&tmp.path().join("vault"), limits).unwrap();
    let mut n = 0u32;
    let mut state = 7u64;
    bencher
        .counter(divan::counter::BytesCount::new(SIZE))
        .with_inputs(|| {
            n += 1;
            let path = tmp.path().join(format!("f{n}"));
            let bytes: Vec<u8> = (0..SIZE)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (state >> 56) as u8
                })
                .collect();
            File::create(&path).unwrap().write_all(&bytes).unwrap();
            (File::open(&path).unwrap(), path.to_str().unwrap().to_owned())
        })
        .bench_local_values(|(file, path)| {
            assert!(matches!(vault.preserve(&file, &path, 1, None).unwrap(), Preserved::Stored(_)));
        });
}
