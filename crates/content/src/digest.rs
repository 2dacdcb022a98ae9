//! Similarity digests (TLSH) and their comparison.

use std::str::FromStr;

use mamori_event::Digest;
use tlsh2::{TlshDefault, TlshDefaultBuilder};

/// TLSH distance at and beyond which two contents count as unrelated.
const MAX_DISTANCE: i32 = 300;

/// The TLSH of the bytes, kept as its 72-character hex form ("T1…") so a
/// trace shows it the way other TLSH tools do. Empty when TLSH refuses the
/// input (under 50 bytes, or too little variety).
pub(crate) fn digest(regions: &[(u64, &[u8])]) -> Digest {
    let mut builder = TlshDefaultBuilder::new();
    for (_, bytes) in regions {
        builder.update(bytes);
    }
    builder.build().map(|t| Digest(t.hash().to_vec())).unwrap_or_default()
}

fn parse(d: &Digest) -> Option<TlshDefault> {
    TlshDefault::from_str(std::str::from_utf8(&d.0).ok()?).ok()
}

/// Similarity of two digests, 0..=100 (100 = same), `None` if either is
/// empty or malformed.
///
/// Mapping: `100 - min(distance, 300) / 3`, with `distance` the TLSH
/// distance including the length term. TLSH calls distances under ~50 near
/// duplicates (≥ 83 here) and sees unrelated or encrypted content around
/// 200–300+ (≤ 33, usually far lower).
pub fn similarity(a: &Digest, b: &Digest) -> Option<u8> {
    let distance = parse(a)?.diff(&parse(b)?, true).clamp(0, MAX_DISTANCE);
    Some((100 - distance / 3) as u8)
}
