//! The manifest: one JSON line per bundle file, each line chained to the one
//! before it.
//!
//! `hash = SHA-256(prev ‖ seq ‖ len(path) ‖ path ‖ size ‖ sha256)`, with `prev`
//! and `sha256` as their 32 raw bytes and the integers as 8-byte big-endian, so
//! no two different entries hash the same input. The first `prev` is
//! [`genesis`]. Changing any file changes its `sha256`; changing, dropping,
//! inserting or reordering a line breaks the chain from there on; so the last
//! `hash` (the head, which the seal signs) stands for the whole bundle.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::digest::{hex, sha256, unhex};

pub const MANIFEST: &str = "manifest.jsonl";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    /// Relative to the bundle directory, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub prev: String,
    pub hash: String,
}

/// The fixed `prev` of the first entry.
pub fn genesis() -> [u8; 32] {
    sha256(b"mamori-evidence manifest v1")
}

pub(crate) fn link(prev: &[u8; 32], seq: u64, path: &str, size: u64, sha: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update((path.len() as u64).to_be_bytes());
    h.update(path.as_bytes());
    h.update(size.to_be_bytes());
    h.update(sha);
    h.finalize().into()
}

/// Builds the chain as files are written.
pub(crate) struct Chain {
    entries: Vec<Entry>,
    head: [u8; 32],
}

impl Chain {
    pub(crate) fn new() -> Chain {
        Chain { entries: Vec::new(), head: genesis() }
    }

    pub(crate) fn push(&mut self, path: &str, size: u64, sha: &[u8; 32]) {
        let seq = self.entries.len() as u64;
        let hash = link(&self.head, seq, path, size, sha);
        self.entries.push(Entry {
            seq,
            path: path.to_owned(),
            size,
            sha256: hex(sha),
            prev: hex(&self.head),
            hash: hex(&hash),
        });
        self.head = hash;
    }

    pub(crate) fn head(&self) -> [u8; 32] {
        self.head
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn into_entries(self) -> Vec<Entry> {
        self.entries
    }
}

/// The exact text of a manifest: any other spelling of the same entries is a
/// change, so the file has one valid form.
pub(crate) fn render(entries: &[Entry]) -> String {
    entries.iter().map(|e| serde_json::to_string(e).expect("an entry serialises") + "\n").collect()
}

/// Why an entry does not follow from the one before it, if it does not.
pub(crate) fn check_link(e: &Entry, seq: u64, prev: &[u8; 32]) -> Result<[u8; 32], &'static str> {
    if e.seq != seq {
        return Err("sequence number out of order");
    }
    if unhex::<32>(&e.prev) != Some(*prev) {
        return Err("prev does not match the previous hash");
    }
    let sha = unhex::<32>(&e.sha256).ok_or("sha256 is not 64 lowercase hex digits")?;
    let hash = link(prev, e.seq, &e.path, e.size, &sha);
    if unhex::<32>(&e.hash) != Some(hash) {
        return Err("hash does not match the entry");
    }
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_links_and_detects_reordering() {
        let mut c = Chain::new();
        c.push("a", 1, &sha256(b"a"));
        c.push("b", 1, &sha256(b"b"));
        let e = c.entries().to_vec();
        let h0 = check_link(&e[0], 0, &genesis()).unwrap();
        assert_eq!(check_link(&e[1], 1, &h0).unwrap(), c.head());
        assert!(check_link(&e[1], 0, &genesis()).is_err());
        let mut forged = e[1].clone();
        forged.size = 2;
        assert_eq!(check_link(&forged, 1, &h0), Err("hash does not match the entry"));
    }
}
