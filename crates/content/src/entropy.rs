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
        for &b in bytes {
            self.counts[b as usize] += 1;
        }
        self.total += bytes.len() as u64;
    }

    /// Bits per symbol; 0 for no data.
    pub(crate) fn entropy(&self) -> f32 {
        shannon(self.counts.iter().copied(), self.total)
    }
}

/// Shannon entropy of `counts` summing to `total`, in bits per symbol.
pub(crate) fn shannon(counts: impl Iterator<Item = u64>, total: u64) -> f32 {
    if total == 0 {
        return 0.0;
    }
    let total = total as f64;
    let h: f64 = counts
        .filter(|&c| c > 0)
        .map(|c| {
            let p = c as f64 / total;
            -p * p.log2()
        })
        .sum();
    h as f32
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
}
