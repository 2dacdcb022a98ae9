//! The operation names that this host's `vfs_full_audit` accepts.
//!
//! They change between Samba versions (4.14 renamed `rename`, `unlink`
//! and `open` to `renameat`, `unlinkat` and `openat`), and a name the
//! module does not know makes smbd refuse every connection to the share,
//! while `testparm` says nothing. The truth is the module's own table,
//! `vfs_op_names[]`: records of `{ int type; const char *name; }` with
//! types 0, 1, 2, ... in order. It is read from the installed module (a
//! 64-bit little-endian ELF shared object), where the pointers are
//! already the strings' addresses.

use std::fs;
use std::io::Read;
use std::path::Path;

/// The table's first entries in every Samba version since 4.0.
const FIRST: [&str; 2] = ["connect", "disconnect"];
/// More than any full_audit.so (about 64 KiB) will ever be.
const MAX_MODULE: u64 = 32 << 20;

/// The operation names of the full_audit module at `module`.
pub fn operations(module: &Path) -> Result<Vec<String>, String> {
    let mut bytes = Vec::new();
    fs::File::open(module)
        .and_then(|f| f.take(MAX_MODULE).read_to_end(&mut bytes))
        .map_err(|e| format!("{}: {e}", module.display()))?;
    table(&bytes).ok_or_else(|| format!("no operation table found in {}", module.display()))
}

/// Names in a `full_audit:success`/`failure` list that the module does not
/// know, as the module reads the list: `all`, `none` (which ends it) and
/// `!name` are its own words, and names are compared ignoring case.
pub fn unknown<'a>(list: &'a str, known: &[String]) -> Vec<&'a str> {
    let mut bad = Vec::new();
    for word in list.split([' ', '\t', ',', ';', '\n', '\r']).filter(|w| !w.is_empty()) {
        if word.eq_ignore_ascii_case("none") {
            break;
        }
        let name = word.strip_prefix('!').unwrap_or(word);
        if !word.eq_ignore_ascii_case("all") && !known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            bad.push(word);
        }
    }
    bad
}

/// The longest run of `{i, name}` records counting up from 0 whose first
/// names are [`FIRST`].
fn table(elf: &[u8]) -> Option<Vec<String>> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    // ELF64, little-endian.
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (phoff, phentsize, phnum) = (u64_at(0x20)? as usize, u16_at(0x36)? as usize, u16_at(0x38)? as usize);
    // (vaddr, file offset, size) of each loaded segment, to find a pointer's bytes.
    let loads: Vec<(u64, u64, u64)> = (0..phnum)
        .filter_map(|i| {
            let ph = phoff + i * phentsize;
            (u32_at(ph)? == 1).then_some((u64_at(ph + 0x10)?, u64_at(ph + 0x08)?, u64_at(ph + 0x20)?))
        })
        .collect();
    let name_at = |addr: u64| -> Option<String> {
        let &(vaddr, offset, size) = loads.iter().find(|(v, _, s)| (*v..v + s).contains(&addr))?;
        let start = (addr - vaddr + offset) as usize;
        let end = (offset + size) as usize;
        let bytes = elf.get(start..end.min(elf.len()))?;
        let name = &bytes[..bytes.iter().position(|&b| b == 0)?];
        let word = !name.is_empty() && name.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
        word.then(|| String::from_utf8_lossy(name).into_owned())
    };
    let mut best: Vec<String> = Vec::new();
    for start in (0..elf.len().saturating_sub(16)).step_by(8) {
        let mut run = Vec::new();
        while let Some(name) = (|| {
            let at = start + run.len() * 16;
            (u32_at(at)? as usize == run.len() && u32_at(at + 4)? == 0).then_some(())?;
            name_at(u64_at(at + 8)?)
        })() {
            run.push(name);
        }
        if run.len() > best.len() && run.iter().zip(FIRST).all(|(a, b)| a == b) && run.len() > FIRST.len() {
            best = run;
        }
    }
    (!best.is_empty()).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian's module, where samba-vfs-modules is installed.
    const MODULE: &str = "/usr/lib/x86_64-linux-gnu/samba/vfs/full_audit.so";

    #[test]
    fn the_installed_modules_table_is_read() {
        if !Path::new(MODULE).exists() {
            eprintln!("skipped: {MODULE} is not installed (samba-vfs-modules)");
            return;
        }
        let ops = operations(Path::new(MODULE)).unwrap();
        assert!(ops.len() > 50, "{ops:?}");
        assert_eq!(&ops[..2], ["connect", "disconnect"]);
        // Samba 4.17 (Debian 12): the *at forms only for these.
        for name in ["openat", "renameat", "unlinkat", "mkdirat", "pwrite", "fdopendir"] {
            assert!(ops.iter().any(|o| o == name), "{name} missing");
        }
        for name in ["rename", "unlink", "mkdir"] {
            assert!(!ops.iter().any(|o| o == name), "{name} listed");
        }
    }

    #[test]
    fn a_made_up_table_is_found_among_other_records() {
        // An ELF header with one PT_LOAD mapping vaddr 0x1000 to file offset 0.
        let mut elf = vec![0u8; 0x400];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        elf[0x40..0x44].copy_from_slice(&1u32.to_le_bytes());
        elf[0x50..0x58].copy_from_slice(&0x1000u64.to_le_bytes());
        elf[0x60..0x68].copy_from_slice(&0x400u64.to_le_bytes());
        let strings = b"EMERG\0connect\0disconnect\0openat\0";
        elf[0x300..0x300 + strings.len()].copy_from_slice(strings);
        // A syslog-like table first (EMERG), then the operations.
        let records: [(u32, u64); 4] = [(0, 0x1300), (0, 0x1306), (1, 0x130e), (2, 0x1319)];
        for (i, (n, p)) in records.iter().enumerate() {
            let at = 0x100 + i * 16 + if i > 0 { 16 } else { 0 };
            elf[at..at + 4].copy_from_slice(&n.to_le_bytes());
            elf[at + 8..at + 16].copy_from_slice(&p.to_le_bytes());
        }
        assert_eq!(table(&elf).unwrap(), ["connect", "disconnect", "openat"]);
        assert_eq!(table(b"not an elf"), None);
    }

    #[test]
    fn lists_are_read_as_the_module_reads_them() {
        let known: Vec<String> = ["openat", "renameat", "unlinkat"].map(String::from).into();
        assert_eq!(unknown("rename unlink openat", &known), ["rename", "unlink"]);
        assert_eq!(unknown("all !Renameat,OPENAT", &known), Vec::<&str>::new());
        assert_eq!(unknown("openat none rename", &known), Vec::<&str>::new());
    }
}
