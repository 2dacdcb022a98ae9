//! mamori's built-in ransomware simulator and the test corpus it attacks.
//!
//! The simulator writes real ChaCha20 ciphertext with a random key that is
//! never kept, so everything it touches is lost unless a defence saved it.
//! That is why every entry point first proves the directory is a test
//! target: it must hold a [`MARKER`] file, must not be a symlink, and must
//! not be a system or home directory (see [`check_target`]).
//!
//! - [`make_corpus`] fills a fresh directory with realistic documents,
//!   pictures and disk images, deterministically.
//! - [`run`] attacks a target the way one of the [`families`] does.
//! - [`Snapshot`] hashes a folder's files so a caller can count what an
//!   attack touched.
//! - [`child_main`] is the per-file worker of the `process-per-file` family;
//!   the binary that embeds this crate must route [`CHILD_ARG`] to it.

mod child;
mod corpus;
mod error;
mod family;
mod keystream;
mod note;
mod run;
mod snapshot;
mod target;
mod transform;
mod uring;
mod walk;

pub use child::{child_main, CHILD_ARG};
pub use corpus::{make_corpus, CorpusSpec, CorpusSummary};
pub use error::SimError;
pub use family::{families, Family};
pub use note::NOTE_NAME;
pub use run::{run, RunOptions, RunReport};
pub use snapshot::{Diff, Snapshot};
pub use target::{check_target, mark_target, MARKER};
