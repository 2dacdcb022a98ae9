//! Similarity digests (TLSH) and their comparison.

use std::str::FromStr;

use mamori_event::Digest;
use tlsh2::{TlshDefault, TlshDefaultBuilder};

/// TLSH distance at and beyond which two contents count as unrelated.
const MAX_DISTANCE: i32 = 300;

/// At most this much of the sampled bytes is digested, half from the start
/// and half from the end: TLSH is the most expensive fact by far (about half
/// the agent's time when files are written in bulk), and a format lost or
/// kept shows at a file's ends as well as anywhere.
const DIGEST_BUDGET: usize = 4 * 1024;

/// The TLSH of the bytes, kept as its 72-character hex form ("T1…") so a
/// trace shows it the way other TLSH tools do. Empty when TLSH refuses the
/// input (under 50 bytes, or too little variety).
pub(crate) fn digest(regions: &[(u64, &[u8])]) -> Digest {
    let mut builder = TlshDefaultBuilder::new();
    let total: usize = regions.iter().map(|(_, b)| b.len()).sum();
    let (head, tail_from) =
        if total <= DIGEST_BUDGET { (total, total) } else { (DIGEST_BUDGET / 2, total - DIGEST_BUDGET / 2) };
    let mut at = 0;
    for (_, bytes) in regions {
        let (start, end) = (at, at + bytes.len());
        at = end;
        // The parts of this region inside [0, head) and [tail_from, total).
        builder.update(&bytes[..head.clamp(start, end) - start]);
        builder.update(&bytes[tail_from.clamp(start, end) - start..]);
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
