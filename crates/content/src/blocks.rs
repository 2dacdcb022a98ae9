//! Per-block samples and comparing them: which regions of a file changed.

use blake3::hazmat::{left_subtree_len, merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode};
use mamori_event::BlockSample;

use crate::entropy::Histogram;
use crate::plan::BLOCK;

/// Most blocks kept from a sampled file (a full plan yields at most 288).
const MAX_SAMPLED_BLOCKS: usize = 320;
/// Most blocks kept from a file read whole.
const MAX_WHOLE_BLOCKS: usize = 256;

/// The blocks sampled from a file, and the BLAKE3 of all of it when it was
/// read whole.
pub(crate) struct Sampled {
    pub blocks: Vec<BlockSample>,
    pub whole_hash: Option<blake3::Hash>,
}

/// One sample per 4 KiB chunk of every region. Past the cap, every n-th
/// chunk is kept, so equal sizes keep equal offsets. Every byte is also
/// counted into `whole`: a kept chunk's histogram gives its entropy and
/// joins the whole file's, so no byte is counted twice.
///
/// A block's hash is its node in the BLAKE3 tree of the whole file (the
/// regions start on block boundaries, see [`crate::plan`]): a file read
/// whole keeps every block, and its BLAKE3 is then those nodes merged, not
/// a second pass over its bytes.
pub(crate) fn sample(
    size: u64,
    regions: &[(u64, &[u8])],
    sampled: bool,
    want_hash: bool,
    whole: &mut Histogram,
) -> Sampled {
    let cap = if sampled { MAX_SAMPLED_BLOCKS } else { MAX_WHOLE_BLOCKS };
    let count: usize = regions.iter().map(|(_, b)| b.len().div_ceil(BLOCK)).sum();
    let step = count.div_ceil(cap).max(1);
    let chunks = regions.iter().flat_map(|&(offset, bytes)| {
        bytes.chunks(BLOCK).enumerate().map(move |(i, chunk)| (offset + (i * BLOCK) as u64, chunk))
    });
    let mut blocks = Vec::with_capacity(count.div_ceil(step));
    let keep_nodes = want_hash && !sampled;
    let mut nodes = Vec::with_capacity(if keep_nodes { count } else { 0 });
    for (i, (offset, chunk)) in chunks.enumerate() {
        if i % step != 0 {
            whole.add(chunk);
            continue;
        }
        let mut own = Histogram::new();
        own.add(chunk);
        whole.merge(&own);
        let node = node(offset, chunk);
        blocks.push(BlockSample { offset, hash: first_u64(&node), entropy: own.entropy() });
        if keep_nodes {
            nodes.push(node);
        }
    }
    let whole_hash = match regions {
        // Every block of the file, in order, from its first byte.
        [(0, bytes)] if keep_nodes && step == 1 && bytes.len() as u64 == size => Some(root(bytes, &nodes)),
        _ => None,
    };
    Sampled { blocks, whole_hash }
}

/// The block's chaining value: BLAKE3 is keyless and specified byte for
/// byte, so block hashes agree across runs and machines. A block off the
/// grid (regions laid out otherwise than by the plan) is no node of the
/// file's tree: hashed as if first, so the same bytes there still compare equal.
fn node(offset: u64, chunk: &[u8]) -> ChainingValue {
    let mut hasher = blake3::Hasher::new();
    if offset.is_multiple_of(BLOCK as u64) {
        hasher.set_input_offset(offset);
    }
    hasher.update(chunk);
    hasher.finalize_non_root()
}

/// 64 bits are plenty to tell a change.
fn first_u64(node: &ChainingValue) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&node[..8]);
    u64::from_le_bytes(first)
}

/// BLAKE3 of `bytes` from the chaining values of its blocks. Below a
/// parent node the tree splits at [`left_subtree_len`], a power of two of
/// at least one block for anything longer than a block, so every block is
/// a node of it.
fn root(bytes: &[u8], nodes: &[ChainingValue]) -> blake3::Hash {
    let len = bytes.len() as u64;
    if len <= BLOCK as u64 {
        return blake3::hash(bytes);
    }
    let left = left_subtree_len(len);
    merge_subtrees_root(&merged(nodes, 0, left), &merged(nodes, left, len - left), Mode::Hash)
}

fn merged(nodes: &[ChainingValue], start: u64, len: u64) -> ChainingValue {
    if len <= BLOCK as u64 {
        return nodes[(start / BLOCK as u64) as usize];
    }
    let left = left_subtree_len(len);
    merge_subtrees_non_root(&merged(nodes, start, left), &merged(nodes, start + left, len - left), Mode::Hash)
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
        let blocks = sample(bytes.len() as u64, &[(0, &bytes)], false, true, &mut Histogram::new()).blocks;
        assert_eq!(blocks.len(), 151);
        assert!(blocks.iter().enumerate().all(|(i, b)| b.offset == (i * 2 * BLOCK) as u64));
    }

    #[test]
    fn partial_last_chunk_is_sampled() {
        let bytes = vec![1u8; BLOCK + 1];
        let blocks = sample(bytes.len() as u64, &[(0, &bytes)], false, true, &mut Histogram::new()).blocks;
        assert_eq!(blocks.iter().map(|b| b.offset).collect::<Vec<_>>(), vec![0, BLOCK as u64]);
        assert_ne!(blocks[0].hash, blocks[1].hash);
    }

    #[test]
    fn the_blocks_of_a_file_read_whole_give_its_blake3() {
        let mut state = 3u64;
        let bytes: Vec<u8> = (0..(1 << 20))
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (state >> 56) as u8
            })
            .collect();
        let edges = [1, 1023, 1024, 1025, 2048, 3073, 4095, 4096, 4097, 8192, 8193, 12293, 20480, 65536, 65537];
        for len in edges.into_iter().chain([(1 << 20) - 1, 1 << 20]).chain((1..=40).map(|k| k * 4096 + k * 97)) {
            let whole = &bytes[..len];
            let s = sample(len as u64, &[(0, whole)], false, true, &mut Histogram::new());
            assert_eq!(s.whole_hash, Some(blake3::hash(whole)), "{len} bytes");
        }
        // Sampled, or only part of the file: no hash of the whole.
        let part = &bytes[..8192];
        assert_eq!(sample(10_000, &[(0, part)], false, true, &mut Histogram::new()).whole_hash, None);
        assert_eq!(sample(8192, &[(0, part)], true, true, &mut Histogram::new()).whole_hash, None);
    }

    #[test]
    fn a_block_hashes_the_same_wherever_its_file_ends() {
        // The same block at the same offset, in files of different sizes:
        // compared before and after a change, it must read as unchanged.
        let bytes = vec![7u8; 5 * BLOCK];
        let short = sample(3 * BLOCK as u64, &[(0, &bytes[..3 * BLOCK])], false, true, &mut Histogram::new()).blocks;
        let long = sample(5 * BLOCK as u64, &[(0, &bytes)], false, true, &mut Histogram::new()).blocks;
        assert_eq!(short[..3], long[..3]);
        // The same bytes at another offset are another node.
        assert_ne!(long[1].hash, long[2].hash);
        // Off the block grid the bytes still compare equal to themselves.
        let odd = sample(9000, &[(100, &bytes[..BLOCK])], true, true, &mut Histogram::new()).blocks;
        assert_eq!(odd, sample(9000, &[(100, &bytes[..BLOCK])], true, true, &mut Histogram::new()).blocks);
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
