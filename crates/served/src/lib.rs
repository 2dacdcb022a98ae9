//! Which remote client a server process serves.
//!
//! Samba forks one smbd process per client connection, so the process that
//! touches a file over SMB names one client: the address at the other end
//! of its connection and the user it runs as. This crate reads that from
//! `/proc` ([`client_of`], cheap enough for the sensor thread), and Samba's
//! own view of its sessions (user, machine, dialect, shares) from
//! `smbstatus --json` ([`samba_sessions`], a subprocess, for the agent when
//! it acts).

mod error;
mod procfs;
mod smbstatus;
mod sys;
mod tcp;

pub use error::ServedError;
pub use procfs::{client_of, client_of_exe, samba_config};
pub use smbstatus::{parse_smbstatus, samba_sessions};

/// What [`mamori_event::Client::server`] says for a Samba client.
pub const SAMBA: &str = "samba";
