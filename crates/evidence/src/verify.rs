//! Checking a bundle: every file against the manifest, the manifest against
//! its own chain, the chain head against the signed seal, and nothing extra.
//! Findings are collected, not returned at the first one, so a report can
//! say everything that is wrong and name each file.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::digest::{hex, sha256, sha256_reader, unhex};
use crate::manifest::{self, Entry, MANIFEST};
use crate::names::check_path;
use crate::probe::open_regular;
use crate::seal::{PublicKey, Seal, SEAL};
use crate::walk::walk;
use crate::EvidenceError;

/// Manifests and seals are small; a huge one is a forgery, not a bundle.
const META_CAP: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Named in the manifest (or always required) but not there.
    Missing(String),
    /// Content, size or spelling differs from what was sealed.
    Changed(String),
    NotInManifest(String),
    /// A symlink, fifo or device where a bundle only has files and folders.
    NotRegular(String),
    /// A manifest line that does not follow from the line before it.
    ChainBroken {
        seq: u64,
        why: &'static str,
    },
    /// A manifest line that names a path outside the bundle or twice.
    BadPath {
        line: usize,
        path: String,
        why: &'static str,
    },
    /// The manifest's last hash or length is not what the seal signed.
    HeadMismatch,
    SignatureInvalid,
    /// Signed, but not by the key the caller pinned.
    UnpinnedKey {
        fingerprint: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing(p) => write!(f, "missing: {p}"),
            Problem::Changed(p) => write!(f, "changed: {p}"),
            Problem::NotInManifest(p) => write!(f, "not in manifest: {p}"),
            Problem::NotRegular(p) => write!(f, "not a regular file: {p}"),
            Problem::ChainBroken { seq, why } => write!(f, "chain broken at seq {seq} of {MANIFEST}: {why}"),
            Problem::BadPath { line, path, why } => write!(f, "bad path in {MANIFEST} line {line}: {path:?} ({why})"),
            Problem::HeadMismatch => write!(f, "chain head of {MANIFEST} differs from {SEAL}"),
            Problem::SignatureInvalid => write!(f, "signature invalid: {SEAL}"),
            Problem::UnpinnedKey { fingerprint } => write!(f, "{SEAL} is signed by an unexpected key {fingerprint}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub problems: Vec<Problem>,
    /// Manifest entries that were read.
    pub entries: usize,
    /// The signer's fingerprint as the seal states it, if the seal was read.
    pub fingerprint: Option<String>,
}

impl Verification {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies a bundle directory, or a `.tar.zst` made by [`crate::export`]
/// (unpacked into a temporary directory first). With `pinned`, a seal by any
/// other key is a problem even when its signature is valid.
pub fn verify(path: &Path, pinned: Option<&PublicKey>) -> Result<Verification, EvidenceError> {
    if crate::export::is_archive(path) {
        let tmp = tempfile::tempdir().map_err(EvidenceError::io(std::env::temp_dir()))?;
        let root = crate::export::unpack(path, tmp.path())?;
        return verify_dir(&root, pinned);
    }
    verify_dir(path, pinned)
}

fn verify_dir(root: &Path, pinned: Option<&PublicKey>) -> Result<Verification, EvidenceError> {
    let listing = walk(root)?;
    let mut problems: Vec<Problem> = listing.others.iter().cloned().map(Problem::NotRegular).collect();
    let present: BTreeSet<&str> = listing.files.iter().map(String::as_str).collect();

    let seal = if present.contains(SEAL) {
        read_seal(root, &mut problems)?
    } else {
        problems.push(Problem::Missing(SEAL.to_owned()));
        None
    };
    if let (Some(seal), Some(pin)) = (&seal, pinned) {
        if seal.public_key != pin.to_hex() {
            problems.push(Problem::UnpinnedKey { fingerprint: seal.fingerprint.clone() });
        }
    }

    let entries = if present.contains(MANIFEST) {
        let bytes = read_small(root, MANIFEST)?;
        if seal.as_ref().is_some_and(|s| s.manifest_sha256 != hex(&sha256(&bytes))) {
            problems.push(Problem::Changed(MANIFEST.to_owned()));
        }
        parse_manifest(&bytes, seal.as_ref(), &mut problems)
    } else {
        problems.push(Problem::Missing(MANIFEST.to_owned()));
        Vec::new()
    };

    let mut listed = BTreeSet::new();
    for (i, e) in entries.iter().enumerate() {
        let why = check_path(&e.path)
            .err()
            .or_else(|| (e.path == MANIFEST || e.path == SEAL).then_some("names the manifest or the seal"));
        let why = why.or_else(|| (!listed.insert(e.path.as_str())).then_some("listed twice"));
        if let Some(why) = why {
            problems.push(Problem::BadPath { line: i + 1, path: e.path.clone(), why });
            continue;
        }
        if !present.contains(e.path.as_str()) {
            problems.push(Problem::Missing(e.path.clone()));
            continue;
        }
        let path = root.join(&e.path);
        let (h, n) = open_regular(&path, false).and_then(sha256_reader).map_err(EvidenceError::io(&path))?;
        if n != e.size || hex(&h) != e.sha256 {
            problems.push(Problem::Changed(e.path.clone()));
        }
    }
    for f in &listing.files {
        if f != MANIFEST && f != SEAL && !listed.contains(f.as_str()) {
            problems.push(Problem::NotInManifest(f.clone()));
        }
    }
    Ok(Verification { problems, entries: entries.len(), fingerprint: seal.map(|s| s.fingerprint) })
}

fn read_small(root: &Path, name: &str) -> Result<Vec<u8>, EvidenceError> {
    let path = root.join(name);
    let mut bytes = Vec::new();
    open_regular(&path, false)
        .and_then(|f| f.take(META_CAP).read_to_end(&mut bytes))
        .map_err(EvidenceError::io(&path))?;
    Ok(bytes)
}

/// The seal if it parses; any deviation from the exact text the sealer
/// writes, a fingerprint that is not the key's, or a bad signature is a
/// problem. A seal that does not parse is returned as `None`.
fn read_seal(root: &Path, problems: &mut Vec<Problem>) -> Result<Option<Seal>, EvidenceError> {
    let bytes = read_small(root, SEAL)?;
    let Ok(seal) = serde_json::from_slice::<Seal>(&bytes) else {
        problems.push(Problem::Changed(SEAL.to_owned()));
        return Ok(None);
    };
    let key_matches = PublicKey::from_hex(&seal.public_key).is_ok_and(|k| k.fingerprint() == seal.fingerprint);
    if seal.render().as_bytes() != bytes || !key_matches {
        problems.push(Problem::Changed(SEAL.to_owned()));
    }
    if seal.signature_valid() != Some(true) {
        problems.push(Problem::SignatureInvalid);
    }
    Ok(Some(seal))
}

/// Parses and chains the manifest lines; reports the first break only, since
/// every later line then fails too.
fn parse_manifest(bytes: &[u8], seal: Option<&Seal>, problems: &mut Vec<Problem>) -> Vec<Entry> {
    let text = String::from_utf8_lossy(bytes);
    let mut entries = Vec::new();
    let mut prev = Some(manifest::genesis());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let parsed = serde_json::from_str::<Entry>(line.trim_end_matches('\n'));
        let Ok(e) = parsed else {
            if prev.take().is_some() {
                problems.push(Problem::ChainBroken { seq: i as u64, why: "line is not a manifest entry" });
            }
            continue;
        };
        if let Some(p) = prev {
            prev = match manifest::check_link(&e, i as u64, &p) {
                Ok(h) => Some(h),
                Err(why) => {
                    problems.push(Problem::ChainBroken { seq: i as u64, why });
                    None
                }
            };
        }
        entries.push(e);
    }
    if let (Some(seal), Some(head)) = (seal, prev) {
        if unhex::<32>(&seal.head) != Some(head) || seal.entries != entries.len() as u64 {
            problems.push(Problem::HeadMismatch);
        }
    }
    // Same entries in another spelling (spaces, key order) would pass every
    // check above; the exact text is part of what was sealed.
    if manifest::render(&entries).as_bytes() != bytes
        && !problems.iter().any(|p| *p == Problem::Changed(MANIFEST.into()))
    {
        problems.push(Problem::Changed(MANIFEST.to_owned()));
    }
    entries
}
