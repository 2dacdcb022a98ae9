//! The ciphers: real ChaCha20 keyed from the system random source, and the
//! one-byte XOR that weak lockers use.

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::ChaCha20;

use crate::error::SimError;

/// One run's secret. It lives only in memory: the simulator destroys data
/// exactly as a real attack would.
pub(crate) struct RunKey([u8; 32]);

impl RunKey {
    pub fn random() -> Result<Self, SimError> {
        Ok(RunKey(random_bytes()?))
    }

    /// A cipher for one file, under its own random nonce.
    pub fn file_cipher(&self, kind: CipherKind) -> Result<Keystream, SimError> {
        Ok(match kind {
            CipherKind::ChaCha20 => {
                let nonce: [u8; 12] = random_bytes()?;
                Keystream::ChaCha(ChaCha20::new(&self.0.into(), &nonce.into()))
            }
            // Never zero, so every byte really changes.
            CipherKind::XorByte => Keystream::Xor(self.0[0] % 255 + 1),
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum CipherKind {
    ChaCha20,
    /// Keeps the byte histogram, hence the entropy, of the original.
    XorByte,
}

pub(crate) enum Keystream {
    ChaCha(ChaCha20),
    Xor(u8),
}

impl Keystream {
    /// Encrypts `buf`, which holds the file's bytes starting at `offset`.
    /// Seeking keeps the result independent of the order ranges are done in.
    pub fn apply(&mut self, offset: u64, buf: &mut [u8]) {
        match self {
            Keystream::ChaCha(c) => {
                c.seek(offset);
                c.apply_keystream(buf);
            }
            Keystream::Xor(k) => buf.iter_mut().for_each(|b| *b ^= *k),
        }
    }
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], SimError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(SimError::Random)?;
    Ok(out)
}
