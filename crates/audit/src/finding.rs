//! Findings, their severities, and the whole audit as the JSON states it.

use serde::{Deserialize, Serialize};

/// How much a finding matters, worst last (so `max` is the worst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing to fix.
    Info,
    Low,
    Medium,
    /// An open door or a backup that would not survive: fix it now.
    High,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// A check's words in one language. `fix` may name `{target}`, replaced by
/// the finding's target.
#[derive(Debug, Clone, Copy)]
pub struct Words {
    /// What is wrong, as a heading.
    pub title: &'static str,
    /// Why it matters for ransomware, in one sentence.
    pub why: &'static str,
    pub fix: &'static str,
}

/// A check: its stable id and its words in both languages.
#[derive(Debug, Clone, Copy)]
pub struct CheckText {
    /// Stable, dotted (`ssh.password_auth`): scripts and alert rules key on it.
    pub id: &'static str,
    pub en: Words,
    pub ja: Words,
}

impl Words {
    /// The fix for `target`.
    pub fn fix_for(&self, target: &str) -> String {
        self.fix.replace("{target}", target)
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The check's stable id.
    pub check: String,
    pub severity: Severity,
    /// What it is about: a service and its address, a share, a repository.
    pub target: String,
    /// The evidence, as found (a config line, a socket, a snapshot's date).
    pub detail: String,
    /// Why it matters for ransomware (English).
    pub why: String,
    /// What to do (English).
    pub fix: String,
}

impl Finding {
    pub fn new(text: &CheckText, severity: Severity, target: impl Into<String>, detail: impl Into<String>) -> Finding {
        let target = target.into();
        Finding {
            check: text.id.to_owned(),
            severity,
            fix: text.en.fix_for(&target),
            why: text.en.why.to_owned(),
            target,
            detail: detail.into(),
        }
    }
}

/// Counts by severity, and the worst.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
    /// The worst severity found; `None` when nothing was.
    pub worst: Option<Severity>,
}

/// A whole audit, as `mamori audit --json` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Audit {
    pub host: String,
    /// When it ran (RFC 3339, UTC).
    pub time: String,
    /// Worst first; within a severity, by check id and target.
    pub findings: Vec<Finding>,
    pub summary: Summary,
}

impl Audit {
    pub fn new(host: String, time: jiff::Timestamp, mut findings: Vec<Finding>) -> Audit {
        findings.sort_by(|a, b| {
            b.severity.cmp(&a.severity).then_with(|| a.check.cmp(&b.check)).then_with(|| a.target.cmp(&b.target))
        });
        let count = |s| findings.iter().filter(|f| f.severity == s).count();
        let summary = Summary {
            high: count(Severity::High),
            medium: count(Severity::Medium),
            low: count(Severity::Low),
            info: count(Severity::Info),
            worst: findings.iter().map(|f| f.severity).max(),
        };
        Audit { host, time: time.to_string(), findings, summary }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: CheckText = CheckText {
        id: "t.one",
        en: Words { title: "t", why: "w", fix: "fix {target} now" },
        ja: Words { title: "t", why: "w", fix: "{target} を直す" },
    };

    #[test]
    fn findings_are_sorted_worst_first_and_counted() {
        let a = Audit::new(
            "h".into(),
            jiff::Timestamp::UNIX_EPOCH,
            vec![
                Finding::new(&T, Severity::Low, "b", "d"),
                Finding::new(&T, Severity::High, "a", "d"),
                Finding::new(&T, Severity::Info, "c", "d"),
            ],
        );
        let order: Vec<_> = a.findings.iter().map(|f| f.severity).collect();
        assert_eq!(order, [Severity::High, Severity::Low, Severity::Info]);
        assert_eq!((a.summary.high, a.summary.low, a.summary.info), (1, 1, 1));
        assert_eq!(a.summary.worst, Some(Severity::High));
        assert_eq!(a.findings[0].fix, "fix a now");
    }
}
