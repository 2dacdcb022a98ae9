//! Content facts: what a file holds, computed from a few sampled regions of
//! its bytes so the detection engine never has to touch the disk.
//!
//! The flow is [`plan`] (which regions to read) → [`read_facts`] (pread them)
//! → [`facts`] (pure). The comparison helpers ([`similarity`],
//! [`region_change`]) are pure and cheap, for the engine's hot path.
//!
//! Invariant: the same bytes give the same facts on every run and machine,
//! and [`facts_of_bytes`] of a buffer equals [`read_facts`] with
//! [`Depth::Full`] of a file holding that buffer.

mod blocks;
mod digest;
mod encoded;
mod entropy;
mod facts;
mod kind;
mod plan;
mod read;
mod sealed;
mod text;

pub use blocks::{region_change, RegionChange};
pub use digest::similarity;
pub use entropy::entropy;
pub use facts::{facts, facts_of_bytes};
pub use plan::{plan, Depth};
pub use read::{read_facts, read_facts_sized, read_facts_whole, Whole};

pub use mamori_event::{BlockSample, ContentFacts, Digest, FileKind, Format};
