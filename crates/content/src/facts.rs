//! Assembling [`ContentFacts`] from sampled regions.

use mamori_event::{ContentFacts, Digest};

use crate::encoded::encoded_random;
use crate::entropy::Histogram;
use crate::plan::{plan, Depth};
use crate::{blocks, digest, kind, sealed};

/// Files up to this size, read whole, get a `small_hash` (ransom notes are
/// small and identical across folders).
const SMALL_HASH_LIMIT: u64 = 64 * 1024;
/// The head prefix judged for `encoded_random`, the same as the text check.
const HEAD_SAMPLE: usize = 8192;

/// Facts from the bytes read at `regions` (sorted `(offset, bytes)`, as laid
/// out by [`plan`] for `depth`) of a file of `size` bytes.
///
/// [`Depth::Light`] facts carry no similarity digest and no block samples:
/// they describe new files and files opened to read, and both are only ever
/// compared between a file's facts before a write and after it. The digest
/// was the largest cost of weighing a new file; the blocks' hashes and
/// entropies, a sixth of the agent's time on a first read of many files.
pub fn facts(size: u64, regions: &[(u64, &[u8])], depth: Depth) -> ContentFacts {
    facts_and_hash(size, regions, depth, false).0
}

/// [`facts`], and with `whole` the BLAKE3 of the file when `regions` are
/// all of it (at [`Depth::Full`], from the blocks' hashes, not another pass).
pub(crate) fn facts_and_hash(
    size: u64,
    regions: &[(u64, &[u8])],
    depth: Depth,
    whole: bool,
) -> (ContentFacts, Option<blake3::Hash>) {
    let covered: u64 = regions.iter().map(|(_, b)| b.len() as u64).sum();
    let sampled = covered < size;
    let head: &[u8] = regions.first().filter(|(off, _)| *off == 0).map_or(&[], |(_, b)| b);
    let tail = regions.last().filter(|(off, b)| off + b.len() as u64 == size).map(|(_, b)| *b);

    // The hash of all of it: asked for, or the small files' own.
    let hashed = !sampled && (whole || size <= SMALL_HASH_LIMIT);
    let mut histogram = Histogram::new();
    let (blocks, whole_hash) = if depth == Depth::Light {
        for (_, bytes) in regions {
            histogram.add(bytes);
        }
        (Vec::new(), None)
    } else {
        let s = blocks::sample(size, regions, sampled, hashed, &mut histogram);
        (s.blocks, s.whole_hash)
    };
    // Light facts have no blocks to merge: hashed in a pass of its own.
    let whole_hash = hashed.then(|| {
        whole_hash.unwrap_or_else(|| {
            let mut hasher = blake3::Hasher::new();
            for (_, bytes) in regions {
                hasher.update(bytes);
            }
            hasher.finalize()
        })
    });
    let small_hash = whole_hash.filter(|_| size <= SMALL_HASH_LIMIT).map(|hash| {
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash.as_bytes()[..16]);
        first
    });

    let facts = ContentFacts {
        size,
        kind: kind::classify(size, head, tail),
        entropy: histogram.entropy(),
        // A password-protected archive is ciphertext in a known format's
        // coat, as base64 of random bytes is ciphertext in text's.
        encoded_random: encoded_random(&head[..head.len().min(HEAD_SAMPLE)])
            || sealed::encrypted_archive(size, head, tail),
        sampled,
        digest: if size == 0 || depth == Depth::Light { Digest::default() } else { digest::digest(regions) },
        blocks,
        small_hash,
    };
    (facts, whole_hash.filter(|_| whole))
}

/// Facts of an in-memory file, sampled as [`crate::read_facts`] with
/// [`Depth::Full`] would sample it from disk, so both give equal facts.
pub fn facts_of_bytes(bytes: &[u8]) -> ContentFacts {
    let size = bytes.len() as u64;
    let regions: Vec<(u64, &[u8])> =
        plan(size, Depth::Full).into_iter().map(|(off, len)| (off, &bytes[off as usize..off as usize + len])).collect();
    facts(size, &regions, Depth::Full)
}
