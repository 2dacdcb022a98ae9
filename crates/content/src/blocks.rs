//! Per-block samples and comparing them: which regions of a file changed.

use mamori_event::BlockSample;

use crate::entropy::Histogram;
use crate::plan::BLOCK;

/// Most blocks kept from a sampled file (a full plan yields at most 288).
const MAX_SAMPLED_BLOCKS: usize = 320;
/// Most blocks kept from a file read whole.
const MAX_WHOLE_BLOCKS: usize = 256;

/// One sample per 4 KiB chunk of every region. Past the cap, every n-th
/// chunk is kept, so equal sizes keep equal offsets. Every byte is also
/// counted into `whole`: a kept chunk's histogram gives its entropy and
/// joins the whole file's, so no byte is counted twice.
pub(crate) fn sample(regions: &[(u64, &[u8])], sampled: bool, whole: &mut Histogram) -> Vec<BlockSample> {
    let cap = if sampled { MAX_SAMPLED_BLOCKS } else { MAX_WHOLE_BLOCKS };
    let count: usize = regions.iter().map(|(_, b)| b.len().div_ceil(BLOCK)).sum();
    let step = count.div_ceil(cap).max(1);
    let chunks = regions.iter().flat_map(|&(offset, bytes)| {
        bytes.chunks(BLOCK).enumerate().map(move |(i, chunk)| (offset + (i * BLOCK) as u64, chunk))
    });
    let mut blocks = Vec::with_capacity(count.div_ceil(step));
    for (i, (offset, chunk)) in chunks.enumerate() {
        if i % step != 0 {
            whole.add(chunk);
            continue;
        }
        let mut own = Histogram::new();
        own.add(chunk);
        whole.merge(&own);
        blocks.push(BlockSample { offset, hash: hash(chunk), entropy: own.entropy() });
    }
    blocks
}

/// BLAKE3 is keyless and specified byte for byte, so block hashes agree
/// across runs and machines; 64 bits are plenty to tell a change.
fn hash(chunk: &[u8]) -> u64 {
    let digest = blake3::hash(chunk);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// How the blocks sampled at the same offsets differ between two versions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegionChange {
    /// Blocks present at the same offset on both sides.
    pub compared: usize,
    /// Of those, how many have a different hash.
    pub changed: usize,
    /// Mean entropy of the changed blocks before the change (0 if none).
    pub entropy_before: f32,
    /// Mean entropy of the changed blocks after the change (0 if none).
    pub entropy_after: f32,
}

/// Compares block samples at equal offsets; both sides must be sorted by
/// offset, as [`crate::facts`] produces them. Offsets found on one side only
/// are ignored.
pub fn region_change(before: &[BlockSample], after: &[BlockSample]) -> RegionChange {
    let (mut compared, mut changed) = (0, 0);
    let (mut sum_before, mut sum_after) = (0.0f64, 0.0f64);
    let (mut i, mut j) = (0, 0);
    while i < before.len() && j < after.len() {
        let (b, a) = (&before[i], &after[j]);
        match b.offset.cmp(&a.offset) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                compared += 1;
                if b.hash != a.hash {
                    changed += 1;
                    sum_before += f64::from(b.entropy);
                    sum_after += f64::from(a.entropy);
                }
                i += 1;
                j += 1;
            }
        }
    }
    let mean = |sum: f64| {
        if changed == 0 {
            0.0
        } else {
            (sum / changed as f64) as f32
        }
    };
    RegionChange { compared, changed, entropy_before: mean(sum_before), entropy_after: mean(sum_after) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_files_past_the_cap_keep_every_nth_chunk() {
        let bytes = vec![1u8; 300 * BLOCK + 10];
        let blocks = sample(&[(0, &bytes)], false, &mut Histogram::new());
        assert_eq!(blocks.len(), 151);
        assert!(blocks.iter().enumerate().all(|(i, b)| b.offset == (i * 2 * BLOCK) as u64));
    }

    #[test]
    fn partial_last_chunk_is_sampled() {
        let bytes = vec![1u8; BLOCK + 1];
        let blocks = sample(&[(0, &bytes)], false, &mut Histogram::new());
        assert_eq!(blocks.iter().map(|b| b.offset).collect::<Vec<_>>(), vec![0, BLOCK as u64]);
        assert_ne!(blocks[0].hash, blocks[1].hash);
    }

    #[test]
    fn region_change_skips_unmatched_offsets() {
        let s = |offset, hash, entropy| BlockSample { offset, hash, entropy };
        let before = [s(0, 1, 1.0), s(10, 2, 2.0), s(20, 3, 3.0)];
        let after = [s(0, 1, 1.0), s(15, 9, 8.0), s(20, 4, 7.0)];
        let c = region_change(&before, &after);
        assert_eq!((c.compared, c.changed), (2, 1));
        assert_eq!((c.entropy_before, c.entropy_after), (3.0, 7.0));
        assert_eq!(region_change(&before, &before).entropy_after, 0.0);
    }
}
