//! Restore throughput from copies on the local filesystem (ext4 here, so
//! byte copies, not reflinks): copy out, hash, verify, fsync, rename, for a
//! 256 MiB file. The page cache is dropped before each run (as root), so the
//! copy is read from the disk as it would be after an incident.
//! Throughput is printed by divan as bytes per second.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use mamori_vault::{Entry, Limits, Preserved, Vault};

const SIZE: usize = 256 << 20;

fn main() {
    divan::main();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    vault: Vault,
    entry: Entry,
    dest: PathBuf,
}

fn fixture() -> Fixture {
    // Under /var/tmp: a real disk, where /tmp may be memory.
    let tmp = tempfile::Builder::new().prefix("mamori-bench-").tempdir_in("/var/tmp").unwrap();
    let data = tmp.path().join("data.img");
    let mut f = File::create(&data).unwrap();
    let mut block = vec![0u8; 1 << 20];
    for i in 0..SIZE >> 20 {
        for (j, b) in block.iter_mut().enumerate() {
            *b = (i * 31 + j * 7 % 251) as u8;
        }
        f.write_all(&block).unwrap();
    }
    f.sync_all().unwrap();
    let limits =
        Limits { budget_bytes: u64::MAX, user_budget_bytes: u64::MAX, free_floor_bytes: 0, retention_ns: u64::MAX };
    let mut vault = Vault::open(&tmp.path().join("vault"), limits).unwrap();
    let Preserved::Stored(entry) =
        vault.preserve(&File::open(&data).unwrap(), data.to_str().unwrap(), 1, None).unwrap()
    else {
        panic!("not stored")
    };
    Fixture { dest: tmp.path().join("restored.img"), _tmp: tmp, vault, entry }
}

fn drop_caches(dir: &Path) {
    let _ = File::open(dir).and_then(|d| d.sync_all());
    // Needs root; without it the figure is from the page cache (and says so by being high).
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn restore_256_mib(bencher: divan::Bencher) {
    let fx = fixture();
    bencher
        .counter(divan::counter::BytesCount::new(SIZE))
        .with_inputs(|| drop_caches(fx.dest.parent().unwrap()))
        .bench_local_values(|()| fx.vault.restore_to(&fx.entry, &fx.dest).unwrap());
}
