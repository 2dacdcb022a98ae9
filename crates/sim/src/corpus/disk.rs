//! Virtual-disk-like images: an MBR, an ext4-like superblock, then mostly
//! empty space (left sparse, as raw images are) with scattered text, table
//! and compressed blocks where a filesystem would keep its data.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rand::RngExt;

use super::words::{self, Lang, Rng};
use super::zlib;

const BLOCK: u64 = 64 * 1024;
const PARTITION_START: u64 = 1 << 20;

/// Writes a `size`-byte image to `path`.
pub fn disk_image(path: &Path, size: u64, rng: &mut Rng) -> io::Result<()> {
    let file = File::create(path)?;
    file.set_len(size)?;
    if size >= 512 {
        file.write_all_at(&mbr(size), 0)?;
    }
    if size >= PARTITION_START + 2048 {
        file.write_all_at(&superblock(size), PARTITION_START + 1024)?;
    }
    let first = (2 * PARTITION_START).div_ceil(BLOCK);
    for block in first..size / BLOCK {
        let data = match rng.random_range(0..100) {
            0..6 => text_block(rng),
            6..10 => table_block(rng, block),
            10..13 => compressed_block(rng),
            _ => continue,
        };
        file.write_all_at(&data, block * BLOCK)?;
    }
    Ok(())
}

fn mbr(size: u64) -> [u8; 512] {
    let mut s = [0u8; 512];
    // A plausible boot-code prologue (cli; xor ax,ax; mov ss,ax; ...).
    s[..8].copy_from_slice(&[0xFA, 0x31, 0xC0, 0x8E, 0xD0, 0xBC, 0x00, 0x7C]);
    s[440..444].copy_from_slice(&0x6D61_6D6Fu32.to_le_bytes());
    let entry = &mut s[446..462];
    entry[0] = 0x80;
    entry[4] = 0x83;
    let start_lba = (PARTITION_START / 512) as u32;
    let sectors = (size / 512).saturating_sub(u64::from(start_lba)) as u32;
    entry[8..12].copy_from_slice(&start_lba.to_le_bytes());
    entry[12..16].copy_from_slice(&sectors.to_le_bytes());
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

fn superblock(size: u64) -> [u8; 1024] {
    let mut s = [0u8; 1024];
    let blocks = ((size - PARTITION_START) / 4096) as u32;
    s[0..4].copy_from_slice(&(blocks / 4).to_le_bytes()); // inodes
    s[4..8].copy_from_slice(&blocks.to_le_bytes());
    s[24..28].copy_from_slice(&2u32.to_le_bytes()); // log2(block size) - 10
    s[0x38..0x3A].copy_from_slice(&0xEF53u16.to_le_bytes());
    s[0x78..0x83].copy_from_slice(b"mamori-data");
    s
}

/// Log files and documents, ending partway through the block as files do.
fn text_block(rng: &mut Rng) -> Vec<u8> {
    let len = rng.random_range(4096..BLOCK as usize);
    let mut out = String::with_capacity(len + 256);
    if rng.random_bool(0.5) {
        while out.len() < len {
            out.push_str(&format!(
                "{}T{:02}:{:02}:{:02} srv01 sshd[{}]: Accepted publickey for {} from 10.0.{}.{} port {}\n",
                words::date(rng),
                rng.random_range(0..24),
                rng.random_range(0..60),
                rng.random_range(0..60),
                rng.random_range(300..40000),
                ["admin", "backup", "deploy", "tanaka"][rng.random_range(0..4)],
                rng.random_range(0..255),
                rng.random_range(1..255),
                rng.random_range(30000..60000),
            ));
        }
    } else {
        let lang = Lang::pick(rng);
        out = words::prose(rng, lang, len);
    }
    let mut bytes = out.into_bytes();
    bytes.truncate(len);
    bytes
}

/// Inode-table-like fixed records: low entropy, very regular.
fn table_block(rng: &mut Rng, block: u64) -> Vec<u8> {
    let mut out = vec![0u8; BLOCK as usize];
    for (i, rec) in out.chunks_exact_mut(256).enumerate() {
        let mode: u16 = if rng.random_bool(0.2) { 0o040755 } else { 0o100644 };
        rec[0..2].copy_from_slice(&mode.to_le_bytes());
        rec[2..4].copy_from_slice(&1000u16.to_le_bytes());
        rec[4..8].copy_from_slice(&rng.random_range(0..4_000_000u32).to_le_bytes());
        let mtime = 1_600_000_000u32 + rng.random_range(0..100_000_000);
        for t in 0..3 {
            rec[8 + 4 * t..12 + 4 * t].copy_from_slice(&mtime.to_le_bytes());
        }
        let first = (block * 16 + i as u64) as u32;
        for p in 0..12 {
            rec[40 + 4 * p..44 + 4 * p].copy_from_slice(&(first + p as u32).to_le_bytes());
        }
    }
    out
}

/// Compressed data (packed logs, archives): looks random.
fn compressed_block(rng: &mut Rng) -> Vec<u8> {
    let lang = Lang::pick(rng);
    let text = words::prose(rng, lang, 3 * BLOCK as usize);
    let mut packed = zlib(text.as_bytes());
    packed.truncate(BLOCK as usize);
    packed
}
