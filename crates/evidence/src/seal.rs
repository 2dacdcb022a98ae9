//! The seal: an Ed25519 signature over the manifest's chain head.
//!
//! The chain alone makes an edit detectable but not impossible to hide: who
//! can write the bundle can also recompute every hash after changing a file.
//! The signature closes that: recomputing it needs the host's private key,
//! which lives outside the bundle (mode 0600, root's state directory). A
//! verifier that pins the public key (or its fingerprint, kept elsewhere)
//! also rejects a bundle re-signed under a fresh key by someone who replaced
//! `seal.json` wholesale.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::digest::{hex, sha256, unhex};
use crate::time::Stamp;
use crate::EvidenceError;

pub const SEAL: &str = "seal.json";

/// The host's signing key.
pub struct SealKey {
    key: SigningKey,
    path: PathBuf,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("SealKey").field("path", &self.path).field("public", &self.public_key()).finish()
    }
}

impl SealKey {
    /// Loads the 32-byte secret at `path`, or creates it (mode 0600) when
    /// there is none. The parent directory must exist. A key file that others
    /// could read is refused rather than used: its signatures would prove
    /// nothing.
    pub fn load_or_create(path: &Path) -> Result<SealKey, EvidenceError> {
        match Self::load(path) {
            Err(EvidenceError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let mut seed = [0u8; 32];
        fill_random(&mut seed).map_err(EvidenceError::io(path))?;
        let created =
            OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path);
        let mut file = match created {
            Ok(f) => f,
            // Another process created it between our two calls: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Self::load(path),
            Err(e) => return Err(EvidenceError::io(path)(e)),
        };
        file.write_all(&seed).and_then(|()| file.sync_all()).map_err(EvidenceError::io(path))?;
        Ok(SealKey { key: SigningKey::from_bytes(&seed), path: path.to_owned() })
    }

    fn load(path: &Path) -> Result<SealKey, EvidenceError> {
        let mut file =
            OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path).map_err(EvidenceError::io(path))?;
        let meta = file.metadata().map_err(EvidenceError::io(path))?;
        if !meta.file_type().is_file() || meta.mode() & 0o077 != 0 {
            return Err(EvidenceError::InsecureKey { path: path.to_owned(), mode: meta.mode() & 0o7777 });
        }
        let mut bytes = Vec::with_capacity(33);
        (&mut file).take(33).read_to_end(&mut bytes).map_err(EvidenceError::io(path))?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| EvidenceError::BadKey(path.to_owned()))?;
        Ok(SealKey { key: SigningKey::from_bytes(&seed), path: path.to_owned() })
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }
}

fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        } else {
            done += n as usize;
        }
    }
    Ok(())
}

/// A seal's public key, to pin in [`crate::verify`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl PublicKey {
    /// Parses the 64 hex digits `seal.json` shows as `public_key`.
    pub fn from_hex(text: &str) -> Result<PublicKey, EvidenceError> {
        let bytes = unhex::<32>(text.trim()).ok_or_else(|| EvidenceError::BadPublicKey(text.to_owned()))?;
        VerifyingKey::from_bytes(&bytes).map(PublicKey).map_err(|_| EvidenceError::BadPublicKey(text.to_owned()))
    }

    pub fn to_hex(&self) -> String {
        hex(self.0.as_bytes())
    }

    /// `sha256:` and the hex SHA-256 of the 32 key bytes: short enough to
    /// read out, and what an operator writes down to pin the key.
    pub fn fingerprint(&self) -> String {
        format!("sha256:{}", hex(&sha256(self.0.as_bytes())))
    }
}

/// The content of `seal.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    pub version: u32,
    /// The `hash` of the last manifest entry (the genesis value for none).
    pub head: String,
    pub entries: u64,
    /// SHA-256 of `manifest.jsonl` as written, so not even its spelling can change.
    pub manifest_sha256: String,
    pub sealed: Stamp,
    pub public_key: String,
    pub fingerprint: String,
    pub signature: String,
}

impl Seal {
    pub(crate) fn new(key: &SealKey, head: &[u8; 32], entries: u64, manifest: &[u8]) -> Seal {
        let public = key.public_key();
        let mut seal = Seal {
            version: 1,
            head: hex(head),
            entries,
            manifest_sha256: hex(&sha256(manifest)),
            sealed: Stamp::now(),
            public_key: public.to_hex(),
            fingerprint: public.fingerprint(),
            signature: String::new(),
        };
        seal.signature = hex(&key.sign(&seal.message()).to_bytes());
        seal
    }

    /// Everything the signature covers, in a fixed layout independent of JSON.
    fn message(&self) -> Vec<u8> {
        format!(
            "mamori-evidence seal v{}\nhead {}\nentries {}\nmanifest {}\nsealed {} {}\nkey {}\n",
            self.version,
            self.head,
            self.entries,
            self.manifest_sha256,
            self.sealed.unix_ns,
            self.sealed.utc,
            self.public_key
        )
        .into_bytes()
    }

    /// The exact bytes of `seal.json`.
    pub(crate) fn render(&self) -> String {
        serde_json::to_string_pretty(self).expect("a seal serialises") + "\n"
    }

    /// Checks the signature under the key the seal names; `None` if the key
    /// or the signature does not even parse.
    pub(crate) fn signature_valid(&self) -> Option<bool> {
        let key = PublicKey::from_hex(&self.public_key).ok()?;
        let sig = Signature::from_bytes(&unhex::<64>(&self.signature)?);
        Some(key.0.verify(&self.message(), &sig).is_ok())
    }

    pub(crate) fn write(&self, dir: &Path) -> Result<(), EvidenceError> {
        let path = dir.join(SEAL);
        let mut f = crate::writer::create(&path)?;
        f.write_all(self.render().as_bytes()).and_then(|()| f.sync_all()).map_err(EvidenceError::io(&path))
    }
}
