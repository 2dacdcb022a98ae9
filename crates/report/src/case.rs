//! Everything a report is made from, as plain serde data the binary fills in.

use mamori_event::Event;
use mamori_store::{FileOp, Incident};
use serde::{Deserialize, Serialize};

/// One incident with what is known around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub incident: Incident,
    /// The actor's events in time order, including the `Proc` events that
    /// introduce its processes.
    pub timeline: Vec<Event>,
    pub host: Host,
    pub files: Vec<FileOutcome>,
    /// `None` when the family is unknown: the report then says so and never guesses.
    pub family: Option<Family>,
    /// When no family is named: those the notes and files point to without
    /// enough to name one, never presented as the answer.
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    pub notes: Vec<NoteFound>,
    /// SHA-256 (hex) of the actor's executable.
    pub exe_sha256: Option<String>,
    /// Remote addresses the actor's processes talked to (`ip` or `ip:port`).
    pub remote_addrs: Vec<String>,
    /// How the host was isolated, when it was.
    pub isolation: Option<String>,
    pub evidence: Option<EvidenceRef>,
    /// IANA time zone for the times a person reads (e.g. `Asia/Tokyo`);
    /// `None` shows UTC. Machine exports are always UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub hostname: String,
    pub kernel: String,
    pub os: String,
}

impl Host {
    /// The machine this runs on, for a case whose bundle does not record
    /// its host (or has none yet).
    pub fn this_machine() -> Host {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|k| k.trim().to_owned());
        Host { hostname: hostname(), kernel: kernel.unwrap_or_default(), os: os_name() }
    }
}

/// This machine's name, as the kernel has it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
}

fn os_name() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "Linux".to_owned())
}

/// One file the actor touched and whether it was put back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOutcome {
    pub path: String,
    pub op: FileOp,
    /// The new name, for a rename.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `None` when no restore was attempted or asked about.
    pub restored: Option<Restored>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restored {
    Restored,
    AlreadyIntact,
    Failed(String),
    NotYet,
}

/// A ransomware family named from notes, extensions or trailers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    pub name: String,
    /// "high", "medium" or "low", as the identifier says.
    pub confidence: String,
    /// Human-readable lines saying what matched (English, as the
    /// identifier wrote them): shown when `matched` is empty.
    pub evidence: Vec<String>,
    /// What matched, for the report to say in its own language.
    #[serde(default)]
    pub matched: Vec<Matched>,
    /// A free decryptor known to work for the family.
    pub decryptor: Option<Decryptor>,
}

/// One marker of the family found in a note or an encrypted file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matched {
    /// The identifier's kind: `name`, `phrase`, `contact`, `note_name`,
    /// `extension`, `trailer`, `channel` or `id_shape`.
    pub kind: String,
    pub text: String,
    /// The note or file that showed it.
    pub sample: String,
}

/// A family that matched something without being named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub family: String,
    /// The weight of its markers that matched (a family is named from 3).
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decryptor {
    pub name: String,
    pub url: String,
}

/// A ransom note found on disk, with the start of its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteFound {
    pub path: String,
    pub excerpt: String,
}

/// Where the sealed evidence bundle is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRef {
    pub dir: String,
    pub chain_head: String,
    pub key_fingerprint: String,
}
