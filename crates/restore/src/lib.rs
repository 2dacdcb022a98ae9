//! Undoing an incident: which copy goes back where ([`plan`]), and putting
//! it there under a protected folder without following anyone's links
//! ([`beneath`]).
//!
//! The planner is pure (an incident and the vaults' entries in, a plan
//! out), so every rule about what comes back is tested without root, a
//! vault or a disk. The binary (`mamori restore`) only wires the two and
//! reports.

pub mod beneath;
pub mod plan;

pub use beneath::{BeneathError, Root};
pub use plan::{plan, Candidate, Plan};
