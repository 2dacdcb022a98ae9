//! Reading a sample plan from an open file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use mamori_event::ContentFacts;

use crate::facts::facts_and_hash;
use crate::plan::{plan, Depth};

/// Reads the [`plan`] for the file's current size with positioned reads (the
/// file offset is untouched, so a file shared with its opener is safe) and
/// computes its facts.
///
/// The size comes from `fstat`. If the file shrinks meanwhile, reading stops
/// at the first end of file met and the facts describe a file ending there.
pub fn read_facts(file: &File, depth: Depth) -> io::Result<ContentFacts> {
    read_facts_sized(file, file.metadata()?.len(), depth)
}

/// [`read_facts`] of a file whose size the caller has just read (a `statx`
/// fewer on the sensor's path).
pub fn read_facts_sized(file: &File, size: u64, depth: Depth) -> io::Result<ContentFacts> {
    read(file, size, depth, false).map(|(facts, _)| facts)
}

/// All of a file as one read found it, with its BLAKE3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whole {
    pub bytes: Vec<u8>,
    pub blake3: [u8; 32],
}

/// [`read_facts_sized`], and the bytes read when they are all of the file
/// (the plan reads files up to 1 MiB whole at [`Depth::Full`]) with their
/// hash: a copy of the file before it changes is then written from the very
/// bytes its facts describe, read and hashed once.
pub fn read_facts_whole(file: &File, size: u64, depth: Depth) -> io::Result<(ContentFacts, Option<Whole>)> {
    read(file, size, depth, true)
}

fn read(file: &File, size: u64, depth: Depth, keep: bool) -> io::Result<(ContentFacts, Option<Whole>)> {
    let regions = plan(size, depth);
    let mut buf = vec![0u8; regions.iter().map(|&(_, len)| len).sum()];
    // (offset, start in buf, bytes read) of each region read.
    let mut read = Vec::with_capacity(regions.len());
    let mut end = size;
    let mut at = 0;
    for &(offset, len) in &regions {
        let got = read_full_at(file, &mut buf[at..at + len], offset)?;
        read.push((offset, at, got));
        at += len;
        if got < len {
            end = offset + got as u64;
            break;
        }
    }
    let slices: Vec<(u64, &[u8])> = read
        .into_iter()
        .filter(|&(_, _, got)| got > 0)
        .map(|(offset, start, got)| (offset, &buf[start..start + got]))
        .collect();
    // All of it: one region from the start, and no end met before the size.
    let whole = keep && end == size && matches!(regions.as_slice(), [(0, len)] if *len as u64 == size);
    let (facts, hash) = facts_and_hash(end, &slices, depth, whole);
    let whole = hash.map(|hash| Whole { bytes: buf, blake3: *hash.as_bytes() });
    Ok((facts, whole))
}

/// Like `read_exact_at`, but returns how much was read before end of file.
fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
