//! What the store keeps: incidents and trusts, as plain serde data.

pub use mamori_event::{Client, FileOp, FileTouch, Finding, Indicator, ProcKey, Reason};
use serde::{Deserialize, Serialize};

/// One detection and what was done about it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Incident {
    /// Short human id such as `INC-0001` (see [`crate::Store::next_incident_id`]).
    pub id: String,
    /// RFC 3339.
    pub detected_at: String,
    pub actor: ActorInfo,
    pub pids: Vec<u32>,
    /// Every process suspended, by identity, so a later resume or kill never
    /// reaches a process that reused one of the pids.
    pub procs: Vec<ProcKey>,
    pub action: Action,
    pub score: f64,
    /// Why the actor was judged. Incidents from before reasons were typed
    /// hold English sentences, which load as [`Reason::Text`].
    pub reasons: Vec<Reason>,
    /// What the actor did to which file, each file and operation once.
    pub files: Vec<FileTouch>,
    pub protected: Vec<String>,
    /// From the deciding event until every process was suspended.
    pub stop_latency_us: Option<u64>,
    /// Anything else worth telling, e.g. "queue overflow during attack".
    pub notes: Vec<String>,
    /// When the actor was a remote client (an SMB client of Samba on this
    /// host): who it was, and each step taken to cut it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientCut>,
}

/// A remote client judged to be the attacker, and how it was cut off.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ClientCut {
    pub client: Client,
    /// The server process (the smbd master) in whose network namespace
    /// the client's address is blocked: where `mamori unblock` lifts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ProcKey>,
    /// In the order taken.
    pub steps: Vec<CutStep>,
}

/// One step of cutting a client off.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CutStep {
    /// RFC 3339.
    pub at: String,
    pub kind: CutKind,
    pub ok: bool,
    /// What was done, or why it failed.
    pub detail: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CutKind {
    /// Its server processes were stopped (kept for the evidence).
    Stopped,
    /// Its address was blocked in mamori's firewall table.
    Blocked,
    /// Its server processes were ended, closing its open handles.
    Ended,
    /// Its account was disabled.
    AccountDisabled,
    /// It connected again, and that connection was ended too.
    Reconnected,
    /// An administrator lifted the block (`mamori unblock`): the client may
    /// work again, and the agent forgets the verdict against it.
    Unblocked,
}

/// The process judged responsible.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ActorInfo {
    pub pid: u32,
    pub start: u64,
    pub exe: String,
    pub cmdline: Vec<String>,
    pub uid: u32,
    /// When the actor's root process started (ns since the Unix epoch): every
    /// change it made came after, which is how restore picks the right copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ns: Option<u64>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Suspended,
    Killed,
    Resumed,
    Failed,
}

impl Action {
    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Suspended => "suspended",
            Action::Killed => "killed",
            Action::Resumed => "resumed",
            Action::Failed => "failed",
        }
    }
}

/// A program trusted to write in a folder, usually after a false positive.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Trust {
    pub exe: String,
    pub dir: String,
    /// RFC 3339.
    pub added_at: String,
    /// The incident that led to the trust, if any.
    pub incident: Option<String>,
    /// BLAKE3 (hex) of the executable when it was trusted: a program
    /// replaced since is not the one trusted. Absent in trusts from before
    /// the field, which are not honoured.
    #[serde(default)]
    pub exe_hash: Option<String>,
}
