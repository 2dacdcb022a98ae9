//! Cost of the facts of a 1 MiB file and of one similarity comparison.

use divan::{black_box, Bencher};
use mamori_content::{facts_of_bytes, similarity};

fn main() {
    divan::main();
}

/// Text-like content: words drawn by a small LCG, so TLSH has variety.
fn buffer(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 8] = ["alpha ", "beta ", "gamma ", "delta\n", "mamori ", "file ", "block ", "42 "];
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        out.extend_from_slice(WORDS[(state >> 61) as usize].as_bytes());
    }
    out.truncate(len);
    out
}

#[divan::bench]
fn facts_1mib(bencher: Bencher) {
    let buf = buffer(1 << 20, 1);
    bencher.bench(|| facts_of_bytes(black_box(&buf)));
}

#[divan::bench]
fn similarity_of_two_digests(bencher: Bencher) {
    let a = facts_of_bytes(&buffer(1 << 16, 1)).digest;
    let b = facts_of_bytes(&buffer(1 << 16, 2)).digest;
    bencher.bench(|| similarity(black_box(&a), black_box(&b)));
}
