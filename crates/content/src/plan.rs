//! Which regions of a file to read.

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Files up to this size are read whole at [`Depth::Full`].
const WHOLE_LIMIT: u64 = MIB;
const FULL_HEAD: u64 = 64 * KIB;
const FULL_TAIL: u64 = 64 * KIB;
const LIGHT_HEAD: u64 = 8 * KIB;
const LIGHT_TAIL: u64 = 4 * KIB;
const MIN_STRIDE: u64 = 256 * KIB;
/// Size of one sampled block, and of the chunks hashed into `blocks`.
pub(crate) const BLOCK: usize = 4096;

/// How much of a file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Depth {
    /// Head 8 KiB and tail 4 KiB, and no similarity digest: enough for type
    /// and text checks, cheap enough for read-only opens and new files.
    Light,
    /// Small files whole; large ones head, tail and spread blocks.
    Full,
}

/// Regions to read for a file of `size` bytes, as `(offset, len)`, sorted and
/// non-overlapping.
///
/// [`Depth::Full`]: files up to 1 MiB whole; larger ones head 64 KiB, tail
/// 64 KiB (from the 4 KiB boundary before), and 4 KiB blocks at `k * stride` (k ≥ 1) with
/// `stride = max(256 KiB, (size / 256).next_power_of_two())`. The stride is a
/// power of two so files of similar size sample the same offsets, which lets
/// before and after facts be compared block by block; it keeps the block
/// count between 128 and 256 for files past 32 MiB.
///
/// [`Depth::Light`]: head 8 KiB and tail 4 KiB, or the whole file if smaller.
pub fn plan(size: u64, depth: Depth) -> Vec<(u64, usize)> {
    let (head, tail, whole) = match depth {
        Depth::Full => (FULL_HEAD, FULL_TAIL, WHOLE_LIMIT),
        Depth::Light => (LIGHT_HEAD, LIGHT_TAIL, LIGHT_HEAD + LIGHT_TAIL),
    };
    if size == 0 {
        return Vec::new();
    }
    if size <= whole {
        return vec![(0, size as usize)];
    }
    // Full: the tail starts on a block boundary, as every sampled block
    // does (their hashes are nodes of the file's BLAKE3 tree).
    let tail_start = match depth {
        Depth::Full => (size - tail) / BLOCK as u64 * BLOCK as u64,
        Depth::Light => size - tail,
    };
    let mut regions = vec![(0, head as usize)];
    if depth == Depth::Full {
        let stride = MIN_STRIDE.max((size / 256).next_power_of_two());
        let block = BLOCK as u64;
        regions.extend((1..).map(|k| k * stride).take_while(|&off| off + block <= tail_start).map(|off| (off, BLOCK)));
    }
    regions.push((tail_start, (size - tail_start) as usize));
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_well_formed(size: u64, regions: &[(u64, usize)]) {
        for w in regions.windows(2) {
            assert!(w[0].0 + w[0].1 as u64 <= w[1].0, "{size}: {w:?} overlap or unsorted");
        }
        if let Some(&(off, len)) = regions.last() {
            assert_eq!(off + len as u64, size, "{size}: tail must end at the file's end");
        }
    }

    #[test]
    fn small_files_are_read_whole() {
        assert!(plan(0, Depth::Full).is_empty());
        assert!(plan(0, Depth::Light).is_empty());
        assert_eq!(plan(10, Depth::Full), vec![(0, 10)]);
        assert_eq!(plan(MIB, Depth::Full), vec![(0, MIB as usize)]);
        assert_eq!(plan(12 * KIB, Depth::Light), vec![(0, 12 * 1024)]);
    }

    #[test]
    fn light_is_head_and_tail() {
        let size = 12 * KIB + 1;
        assert_eq!(plan(size, Depth::Light), vec![(0, 8192), (size - 4096, 4096)]);
        assert_eq!(plan(5 * MIB, Depth::Light).len(), 2);
    }

    #[test]
    fn full_spreads_blocks_by_a_power_of_two_stride() {
        let size = 32 * MIB;
        let p = plan(size, Depth::Full);
        assert_well_formed(size, &p);
        assert_eq!(p[0], (0, 65536));
        assert_eq!(*p.last().unwrap(), (size - 65536, 65536));
        let blocks = &p[1..p.len() - 1];
        assert_eq!(blocks.len(), 127);
        assert!(blocks.iter().enumerate().all(|(i, &(off, len))| off == (i as u64 + 1) * 256 * KIB && len == 4096));
        // A slightly different size samples the same offsets.
        assert_eq!(plan(size + 12345, Depth::Full)[1..128], p[1..128]);
    }

    #[test]
    fn full_block_count_stays_bounded() {
        for size in [MIB + 1, 5 * MIB, 33 * MIB, 1 << 30, (1 << 40) + 7, u64::MAX / 2] {
            let p = plan(size, Depth::Full);
            assert_well_formed(size, &p);
            assert!(p.len() - 2 <= 256, "{size}: {} blocks", p.len() - 2);
        }
        assert!(plan(1 << 30, Depth::Full).len() - 2 >= 127);
    }
}
