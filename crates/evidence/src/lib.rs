//! Evidence bundles: what an incident leaves behind for the people who
//! investigate it.
//!
//! At an incident the agent stops the actor's processes (SIGSTOP) and calls
//! [`collect`], which writes one directory:
//!
//! | file | what |
//! |---|---|
//! | caller's files | e.g. `incident.json`, `timeline.jsonl`, `notes/…` ([`CollectSpec::extra`]) |
//! | `processes.json` | the actor's process tree ([`ProcessRecord`]) |
//! | `open-files.json` | every descriptor ([`OpenFile`]) |
//! | `network.json` | its sockets and the host's listeners ([`Network`]) |
//! | `maps/PID.txt` | `/proc/PID/maps` |
//! | `memory/PID-START.bin` | writable private memory, only with [`CollectSpec::memory_cap`] |
//! | `host.json` | machine, boot, logins ([`Host`]) |
//! | `collection.json` | what was asked, what was read, what could not be ([`Collection`]) |
//! | `manifest.jsonl` | one hash-chained line per file above ([`Entry`]) |
//! | `seal.json` | the chain head signed with the host's Ed25519 key ([`Seal`]) |
//!
//! Why both a chain and a signature: the chain makes any edit, deletion,
//! insertion or reordering of files visible at the first entry it touches;
//! the signature makes the chain impossible to recompute after such an edit
//! without the host's private key, kept outside the bundle ([`SealKey`]). [`verify`]
//! checks all of it without following links out of the bundle; [`export`]
//! copies it or packs it as `.tar.zst`, which `verify` also accepts.
//!
//! Collection never fails because a process misbehaves: what cannot be read
//! is a [`Note`] in `collection.json`. It fails only when the bundle itself
//! cannot be written.

mod digest;
mod error;
mod export;
mod files;
mod host;
mod manifest;
mod memory;
mod names;
mod network;
mod probe;
mod procs;
mod seal;
mod time;
mod utmp;
mod verify;
mod walk;
mod writer;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::EvidenceError;
pub use export::export;
pub use files::OpenFile;
pub use host::{Host, Kernel};
pub use manifest::{genesis, Entry};
pub use memory::MemoryImage;
pub use network::{Connection, Network, Socket};
pub use probe::Note;
pub use procs::ProcessRecord;
pub use seal::{PublicKey, Seal, SealKey};
pub use time::Stamp;
pub use utmp::Login;
pub use verify::{verify, Problem, Verification};

/// A fork bomb must not turn into an endless collection while its
/// processes are stopped; the requested pids come first and are always kept.
const PROCESS_CAP: usize = 1024;

/// What to collect.
#[derive(Debug, Clone, Default)]
pub struct CollectSpec {
    /// The actor's processes; their descendants are collected too.
    pub pids: Vec<u32>,
    /// Copy writable private memory, at most this many bytes in all.
    /// `None` (the default) copies none: images can hold users' secrets.
    pub memory_cap: Option<u64>,
    /// Caller-supplied files: a relative path (`incident.json`,
    /// `notes/analyst.txt`) and its bytes.
    pub extra: Vec<(String, Vec<u8>)>,
}

/// `collection.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    pub tool: String,
    pub requested: Vec<u32>,
    /// The requested pids and their descendants.
    pub pids: Vec<u32>,
    pub memory_cap: Option<u64>,
    /// Every region considered for copying, with what was kept or skipped.
    pub memory: Vec<MemoryImage>,
    pub started: Stamp,
    pub finished: Stamp,
    pub notes: Vec<Note>,
}

/// A written, sealed bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
    pub seal: Seal,
    /// What could not be read (also in `collection.json`).
    pub notes: Vec<Note>,
}

/// Writes a sealed bundle of `spec` into `out`, which must not exist or be
/// empty; it is made mode 0700 and its files 0600.
pub fn collect(out: &Path, spec: &CollectSpec, key: &SealKey) -> Result<Bundle, EvidenceError> {
    names::check_extras(spec.extra.iter().map(|(n, _)| n.as_str()))
        .map_err(|(name, why)| EvidenceError::BadName { name, why })?;
    writer::prepare(out)?;
    let started = Stamp::now();
    let mut w = writer::Writer::new(out);
    let mut notes = probe::Notes::default();
    for (name, bytes) in &spec.extra {
        w.put(name, bytes)?;
    }

    let mut pids = procs::tree(&spec.pids);
    if pids.len() > PROCESS_CAP {
        notes.add(None, "process tree", format!("{} processes, the first {PROCESS_CAP} kept", pids.len()));
        pids.truncate(PROCESS_CAP);
    }
    let processes: Vec<ProcessRecord> = pids.iter().map(|&p| procs::collect(p, &mut notes)).collect();
    w.put_json("processes.json", &processes)?;
    let fds: Vec<OpenFile> = pids.iter().flat_map(|&p| files::collect(p, &mut notes)).collect();
    w.put_json("open-files.json", &fds)?;
    w.put_json("network.json", &network::collect(&fds, &mut notes))?;

    let mut budget = spec.memory_cap.unwrap_or(0);
    let mut images = Vec::new();
    for &pid in &pids {
        let regions = memory::write_maps(&mut w, pid, &mut notes)?;
        if spec.memory_cap.is_some() {
            images.extend(memory::dump(&mut w, pid, &regions, &mut budget, &mut notes)?);
        }
    }
    w.put_json("host.json", &host::collect(&mut notes))?;

    let collection = Collection {
        tool: concat!("mamori-evidence ", env!("CARGO_PKG_VERSION")).to_owned(),
        requested: spec.pids.clone(),
        pids,
        memory_cap: spec.memory_cap,
        memory: images,
        started,
        finished: Stamp::now(),
        notes: notes.0,
    };
    w.put_json("collection.json", &collection)?;
    let (entries, seal) = w.seal(key)?;
    Ok(Bundle { dir: out.to_owned(), entries, seal, notes: collection.notes })
}
