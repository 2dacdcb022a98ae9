//! Cost of the facts of a 1 MiB file, of a 32 KiB file (what a rewrite
//! of a small file costs twice: before, while its writer waits, and after),
//! of a new 64 KiB file, and of one similarity comparison.

use divan::{black_box, Bencher};
use mamori_content::{facts, facts_of_bytes, plan, similarity, Depth};

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
fn facts_32kib(bencher: Bencher) {
    let buf = buffer(32 << 10, 1);
    bencher.bench(|| facts_of_bytes(black_box(&buf)));
}

/// A new file of random bytes, weighed as the sensor weighs every new file
/// (light facts): the bulk of what a program writing many files costs.
#[divan::bench]
fn light_facts_of_a_new_64kib_file(bencher: Bencher) {
    let mut state = 7u64;
    let buf: Vec<u8> = (0..1 << 16)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect();
    let size = buf.len() as u64;
    let regions: Vec<(u64, &[u8])> =
        plan(size, Depth::Light).into_iter().map(|(off, len)| (off, &buf[off as usize..off as usize + len])).collect();
    bencher.bench(|| facts(size, black_box(&regions), Depth::Light));
}

#[divan::bench]
fn similarity_of_two_digests(bencher: Bencher) {
    let a = facts_of_bytes(&buffer(1 << 16, 1)).digest;
    let b = facts_of_bytes(&buffer(1 << 16, 2)).digest;
    bencher.bench(|| similarity(black_box(&a), black_box(&b)));
}
