//! The vault's entry log (`entries.log`) is read back at every open, by the
//! agent and by `mamori restore`: no log text may make opening a vault panic.
#![no_main]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mamori_vault::{Limits, Vault};

const LIMITS: Limits =
    Limits { budget_bytes: 1 << 30, user_budget_bytes: 1 << 28, free_floor_bytes: 0, retention_ns: 3_600_000_000_000 };

/// Objects some log lines may name, so that their entries are indexed.
const OBJECTS: &[&str] = &["0", "1", "2", "1.inode", "2.inode", "18446744073709551615"];

fn vault_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("mamori-vault-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700)).unwrap();
        let dir = base.join("vault");
        Vault::open(&dir, LIMITS).expect("a fresh vault opens");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 << 10 {
        return;
    }
    let dir = vault_dir();
    std::fs::write(dir.join("entries.log"), data).unwrap();
    for name in OBJECTS {
        std::fs::write(dir.join("objects").join(name), b"x").unwrap();
    }
    if let Ok(v) = Vault::open_read_only(dir, LIMITS) {
        let _ = v.entries().len();
        let _ = v.usage();
    }
    // Last: it removes the objects no entry holds.
    if let Ok(v) = Vault::open(dir, LIMITS) {
        let _ = v.entries().len();
        let _ = v.usage();
    }
});
