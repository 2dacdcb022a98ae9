//! Ransomware family identification.
//!
//! From ransom notes (file name and text) and encrypted files (file name and
//! last bytes), [`Catalog::identify`] names the likely family, says how sure
//! it is and why, and points to a free decryptor when one is known. The
//! markers live in a data file (`families.toml`, built in; an updated copy can
//! be loaded with [`Catalog::load`]) derived from real notes. Weak signals
//! (the kinds of contact channel a family's notes use, how they label the
//! victim's id; [`note_channels`]) only add to what the wording found. What
//! matches no family, or matches two alike, is reported as unknown rather
//! than guessed; the evidence says how many kinds of marker agreed.
//!
//! [`looks_like_ransom_note`] tells a note from other files without naming a
//! family.

mod catalog;
mod error;
mod identify;
mod note;
mod sample;
mod signals;
mod text;

pub use catalog::{Catalog, Decryptor, Family, Kind, CATALOG_LIMIT};
pub use error::{IdentifyError, SampleError};
pub use identify::{Candidate, Confidence, Identification, Match};
pub use note::looks_like_ransom_note;
pub use sample::{Sample, NOTE_LIMIT, TAIL_LIMIT};
pub use signals::note_channels;
