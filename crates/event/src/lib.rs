//! The event model shared by mamori's sensor, detection engine and traces.
//!
//! Everything the engine ever learns arrives as an [`Event`]. Events are plain
//! data (serde), so a trace recorded on a live system replays bit for bit.
//! Processes are introduced once by [`EventKind::Proc`] and afterwards named by
//! their [`ProcKey`], which keeps file events small and replay fast.

use serde::{Deserialize, Serialize};

pub mod names;

mod finding;
pub use finding::{FileOp, FileTouch, Finding, Indicator, Reason};

/// A process identity that survives pid reuse: the pid together with the
/// process start time (clock ticks since boot, field 22 of `/proc/PID/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ProcKey {
    pub pid: u32,
    pub start: u64,
}

/// What the sensor learned about a process the first time it saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcInfo {
    pub key: ProcKey,
    /// The parent's identity, `None` for pid 1, kernel threads, or a parent
    /// that had already exited.
    pub parent: Option<ProcKey>,
    pub uid: u32,
    pub pgid: u32,
    pub sid: u32,
    /// Resolved `/proc/PID/exe`; empty if unreadable.
    pub exe: String,
    pub cmdline: Vec<String>,
    /// The remote client this process serves, when it is a server's process
    /// for one client connection (a Samba `smbd` child): the engine then
    /// judges the client, never the server that started the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Client>,
}

/// A remote client of a server on this host that serves each client
/// connection in a process of its own. The sensor fills what the process
/// itself shows (server, address, port, user); the agent adds the session
/// (machine, shares, dialect, id) from the server when it acts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Client {
    /// Which server serves it: `samba`.
    pub server: String,
    /// The client's address, without port (IPv4 as dotted quad, IPv6 as
    /// text; an IPv4-mapped IPv6 address is given as IPv4).
    pub address: String,
    #[serde(default)]
    pub port: u16,
    /// The account it logged in as (the server process's user), if known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// The name the client gave for its machine (NetBIOS name), if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub machine: String,
    /// The shares it connected to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<String>,
    /// Protocol dialect (`SMB3_11`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dialect: String,
    /// The server's session id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub session: String,
}

impl Client {
    /// What makes two connections one client: the same server and address.
    pub fn same_client(&self, other: &Client) -> bool {
        self.server == other.server && self.address == other.address
    }
}

/// How a file was opened, as read from the opener's blocked system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpenMode {
    Read,
    Write,
    /// Opened for writing with `O_TRUNC`: the old content is about to vanish.
    Truncate,
    /// The mode could not be read (the opener left its syscall, io_uring, ...).
    Unknown,
}

impl OpenMode {
    pub fn writes(self) -> bool {
        matches!(self, OpenMode::Write | OpenMode::Truncate | OpenMode::Unknown)
    }
}

/// The kind of content a file holds, judged from its bytes, never its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileKind {
    /// Nothing there (size zero).
    Empty,
    /// A recognised binary format (image, archive, office document, PDF, ...).
    /// `intact` is false when the header is recognised but the structure is
    /// broken (e.g. a ZIP without its end-of-central-directory record).
    Known { format: Format, intact: bool },
    /// Human-readable text (UTF-8 / ASCII / common Japanese encodings).
    Text,
    /// No recognised format.
    Unknown,
}

impl FileKind {
    /// A file whose content a user would miss: recognised and intact, or text.
    pub fn is_meaningful(self) -> bool {
        matches!(self, FileKind::Known { intact: true, .. } | FileKind::Text)
    }
}

/// Recognised formats. Coarse on purpose: the engine cares about "was it a
/// document and is it still one", not about sub-types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    Zip,
    /// OOXML (docx/xlsx/pptx) or ODF: a ZIP with an office manifest.
    Office,
    /// Legacy Office (OLE compound file).
    Ole,
    Pdf,
    Png,
    Jpeg,
    Gif,
    Webp,
    Tiff,
    Bmp,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
    SevenZip,
    Rar,
    Tar,
    Sqlite,
    Elf,
    Mp3,
    Mp4,
    Qcow2,
    Other,
}

/// Facts about a file's content, computed at the edge (the sensor) from the
/// file itself, so the engine never touches the disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentFacts {
    pub size: u64,
    pub kind: FileKind,
    /// Shannon entropy in bits per byte (0..=8) over the sampled bytes.
    pub entropy: f32,
    /// True when the content is ciphertext wearing a disguise: text made only
    /// of a base64 or hex alphabet with a near-uniform symbol distribution,
    /// or a password-protected archive (ZIP or 7z).
    pub encoded_random: bool,
    /// Whether the facts come from samples of a large file rather than all of it.
    pub sampled: bool,
    /// Similarity digest of the sampled bytes (see `mamori_content::similarity`).
    pub digest: Digest,
    /// Hash of the sampled blocks at fixed offsets, for "which regions changed".
    pub blocks: Vec<BlockSample>,
    /// BLAKE3 of the whole content, only for small files (identifies notes).
    pub small_hash: Option<[u8; 16]>,
}

/// A short fuzzy digest. Empty when the content was too small to digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest(pub Vec<u8>);

/// One sampled block of a file: its offset, a hash, and its entropy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlockSample {
    pub offset: u64,
    pub hash: u64,
    pub entropy: f32,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    /// A process seen for the first time (or again after pid reuse).
    Proc(ProcInfo),
    /// An existing file opened. `before` holds the content facts at the moment
    /// of opening, when the sensor computed them: always for write intent;
    /// not for an empty file, nor for a read whose file the vault holds
    /// (its facts then come with the delete or rename that takes its name).
    Open {
        path: String,
        mode: OpenMode,
        before: Option<ContentFacts>,
    },
    /// A file closed after being written: its content now.
    CloseWrite {
        path: String,
        after: ContentFacts,
    },
    Create {
        path: String,
        dir: bool,
    },
    /// `before`: the deleted file's content facts, when they were not taken
    /// at its open (see `Open`) and the vault held it.
    Delete {
        path: String,
        dir: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<ContentFacts>,
    },
    /// `replaced`: the facts of the file renamed over, as `Delete::before`.
    Rename {
        from: String,
        to: String,
        dir: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaced: Option<ContentFacts>,
    },
    /// Another process opened, created, deleted or renamed something in
    /// mamori's vault.
    Guarded {
        path: String,
    },
    /// A decoy file placed by mamori; any change to it is damning.
    Canary {
        path: String,
    },
    /// A program trusted for a folder (after a false positive was resumed).
    Trust {
        exe: String,
        dir: String,
    },
    /// The kernel queue overflowed; `lost` events (at least) were dropped.
    Overflow {
        lost: u64,
    },
}

/// One observation. `proc` is `None` for events that belong to no process
/// (policy and overflow events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Nanoseconds since the Unix epoch (wall clock at the sensor).
    pub time_ns: u64,
    pub proc: Option<ProcKey>,
    pub kind: EventKind,
}
