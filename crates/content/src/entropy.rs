//! Shannon entropy over byte histograms.

/// Byte frequencies, so several regions can feed one entropy figure.
pub(crate) struct Histogram {
    counts: [u64; 256],
    total: u64,
}

impl Histogram {
    pub(crate) fn new() -> Self {
        Histogram { counts: [0; 256], total: 0 }
    }

    pub(crate) fn add(&mut self, bytes: &[u8]) {
        // Four tables: with one, runs of equal bytes make each increment wait
        // for the one before it (about twice as slow on random data too).
        // u32 counts cannot overflow within one 1 GiB piece.
        for piece in bytes.chunks(1 << 30) {
            let mut tables = [[0u32; 256]; 4];
            let quads = piece.chunks_exact(4);
            for &b in quads.remainder() {
                tables[0][b as usize] += 1;
            }
            for q in quads {
                tables[0][q[0] as usize] += 1;
                tables[1][q[1] as usize] += 1;
                tables[2][q[2] as usize] += 1;
                tables[3][q[3] as usize] += 1;
            }
            for (i, count) in self.counts.iter_mut().enumerate() {
                *count += tables.iter().map(|t| u64::from(t[i])).sum::<u64>();
            }
        }
        self.total += bytes.len() as u64;
    }

    /// Bits per symbol; 0 for no data.
    /// Counts `other`'s bytes too, as if they had been added here.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (count, more) in self.counts.iter_mut().zip(other.counts) {
            *count += more;
        }
        self.total += other.total;
    }

    pub(crate) fn entropy(&self) -> f32 {
        shannon(self.counts.iter().copied(), self.total)
    }
}

/// Shannon entropy of `counts` summing to `total`, in bits per symbol.
pub(crate) fn shannon(counts: impl Iterator<Item = u64>, total: u64) -> f32 {
    if total == 0 {
        return 0.0;
    }
    // H = log2(N) - sum(c * log2 c) / N: one table lookup per count, where
    // -p * log2(p) took a division and a logarithm each.
    let table = c_log2_c();
    let sum: f64 = counts
        .filter(|&c| c > 1)
        .map(|c| table.get(c as usize).copied().unwrap_or_else(|| c as f64 * (c as f64).log2()))
        .sum();
    let total = total as f64;
    (total.log2() - sum / total).max(0.0) as f32
}

/// `c * log2(c)` for every count a 4 KiB block can hold: blocks are the
/// commonest histogram, larger counts are computed.
fn c_log2_c() -> &'static [f64] {
    static TABLE: std::sync::LazyLock<Vec<f64>> = std::sync::LazyLock::new(|| {
        (0..=4096u32).map(|c| if c < 2 { 0.0 } else { c as f64 * (c as f64).log2() }).collect()
    });
    &TABLE
}

/// Shannon entropy of `bytes` in bits per byte (0..=8); 0 for no bytes.
pub fn entropy(bytes: &[u8]) -> f32 {
    let mut h = Histogram::new();
    h.add(bytes);
    h.entropy()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(entropy(b""), 0.0);
        assert_eq!(entropy(&[7; 1000]), 0.0);
        assert!((entropy(b"abababab") - 1.0).abs() < 1e-6);
        let all: Vec<u8> = (0..=255).collect();
        assert!((entropy(&all) - 8.0).abs() < 1e-5);
    }

    /// The table and the four-way count give the textbook formula's figure,
    /// for counts inside the table and past it, and for lengths not a
    /// multiple of four.
    #[test]
    fn agrees_with_the_textbook_formula() {
        let textbook = |bytes: &[u8]| {
            let mut counts = [0u64; 256];
            bytes.iter().for_each(|&b| counts[b as usize] += 1);
            let n = bytes.len() as f64;
            counts.iter().filter(|&&c| c > 0).map(|&c| -(c as f64 / n) * (c as f64 / n).log2()).sum::<f64>() as f32
        };
        let mut state = 1u64;
        let mut skewed = Vec::new();
        for len in [3usize, 4097, 10_000, 300_000] {
            skewed.clear();
            for _ in 0..len {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                // Mostly one value, so some counts pass the table's end.
                skewed.push(if state >> 62 == 0 { (state >> 40) as u8 } else { b'a' });
            }
            let (fast, slow) = (entropy(&skewed), textbook(&skewed));
            assert!((fast - slow).abs() < 1e-5, "{len} bytes: {fast} against {slow}");
        }
    }
}
