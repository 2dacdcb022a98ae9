//! What is told: one event, with the host it happened on and when. Plain
//! serde data, written to the queue as is, so an event queued by one
//! version of mamori is read by the next.

use mamori_store::Incident;
use serde::{Deserialize, Serialize};

/// One event for people and their tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Unique per host: the same event sent twice carries the same id, so a
    /// receiver can tell a retry from a new event.
    pub id: String,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: u64,
    pub host: String,
    pub what: What,
}

/// The kinds of event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    /// Ransomware was detected and stopped.
    Incident {
        incident: Box<Incident>,
        /// The command that puts back what it did, as the user types it.
        restore_command: String,
    },
    /// `mamori restore` finished (a dry run tells no one).
    RestoreFinished { incident_id: String, restored: u64, failed: u64 },
    /// Protection is weaker than configured.
    Degraded { cause: Cause, detail: String },
    /// A finding of `mamori audit`.
    Finding(Finding),
    /// `mamori alert test`.
    Test,
}

/// Why protection degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The agent is stopping: nothing is protected until it runs again.
    AgentStopping,
    /// A before-image was not kept (space, budget): that file cannot be restored.
    VaultSkipped,
    /// The kernel's event queue overflowed: some file operations were not seen.
    QueueOverflow,
    /// A protected folder was removed or replaced.
    FolderGone,
}

/// One finding of the audit (exposures and backups).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub check: String,
    pub severity: Severity,
    pub target: String,
    pub detail: String,
    pub fix: String,
}

/// How urgent, in the words syslog, CEF, ECS and people use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl Alert {
    /// A new event from this host, now.
    pub fn new(what: What) -> Alert {
        let time_ns = now_ns();
        Alert { id: unique_id(time_ns), time_ns, host: mamori_report::hostname(), what }
    }

    pub fn severity(&self) -> Severity {
        match &self.what {
            What::Incident { .. } => Severity::Critical,
            What::RestoreFinished { failed, .. } if *failed > 0 => Severity::High,
            What::RestoreFinished { .. } => Severity::Info,
            What::Degraded { cause: Cause::AgentStopping | Cause::FolderGone, .. } => Severity::High,
            What::Degraded { .. } => Severity::Medium,
            What::Finding(f) => f.severity,
            What::Test => Severity::Info,
        }
    }

    /// A short, stable name of the kind, for machines (`event.action`, CEF's signature id).
    pub fn kind(&self) -> &'static str {
        match &self.what {
            What::Incident { .. } => "incident",
            What::RestoreFinished { .. } => "restore-finished",
            What::Degraded { .. } => "protection-degraded",
            What::Finding(_) => "audit-finding",
            What::Test => "test",
        }
    }

    /// The incident the event is about, if any.
    pub fn incident_id(&self) -> Option<&str> {
        match &self.what {
            What::Incident { incident, .. } => Some(&incident.id),
            What::RestoreFinished { incident_id, .. } => Some(incident_id),
            What::Degraded { .. } | What::Finding(_) | What::Test => None,
        }
    }

    /// RFC 3339, UTC, with milliseconds.
    pub fn time_rfc3339(&self) -> String {
        rfc3339(self.time_ns)
    }
}

pub(crate) fn rfc3339(ns: u64) -> String {
    let ts = jiff::Timestamp::from_nanosecond(ns as i128).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!("{:.3}", ts)
}

pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// Time, process and a per-process counter: unique on one host without a
/// random source, and sortable by creation.
fn unique_id(time_ns: u64) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{time_ns:x}-{:x}-{:x}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
