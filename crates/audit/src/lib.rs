//! `mamori audit`: the questions a ransomware intrusion answers for the
//! attacker, asked before it does. Can they get in (what this host exposes:
//! [`exposure`]), and would the backups survive and come back ([`backups`])?
//!
//! Each problem is a [`Finding`]: a stable check id, a severity, what was
//! found (the evidence: a config line, a socket, a snapshot's date), why it
//! matters for ransomware and the fix. The words of each check, in English
//! and Japanese, are in one [`CheckText`] per check id, so the JSON, the
//! alerts and both reports say the same thing.
//!
//! The checks read the system (sockets, configs, the firewall, the backup
//! repositories) and run the real tools (`sshd -T`, `testparm`, `restic`);
//! nothing they do changes a configuration or deletes data.

pub mod backups;
mod config;
pub mod exposure;
mod finding;
pub mod own;
mod run;
mod saved;

pub use config::{AuditConfig, BorgRepo, ResticRepo};
pub use finding::{Audit, CheckText, Finding, Severity, Summary, Words};
pub use saved::{read_private, save_private};

/// Every check, by part.
const CHECKS: [&[CheckText]; 3] = [exposure::CHECKS, backups::CHECKS, own::CHECKS];

/// The words of check `id`, for the reports.
pub fn check_text(id: &str) -> Option<&'static CheckText> {
    CHECKS.into_iter().flatten().find(|t| t.id == id)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    #[test]
    fn every_check_has_one_id_and_its_words_in_both_languages() {
        let all: Vec<_> = super::CHECKS.concat();
        let mut ids = HashSet::new();
        for t in &all {
            assert!(ids.insert(t.id), "{} twice", t.id);
            let (group, name) = t.id.split_once('.').unwrap_or_default();
            assert!(
                !group.is_empty()
                    && !name.is_empty()
                    && t.id.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_' || c.is_ascii_digit()),
                "{}",
                t.id
            );
            for w in [&t.en, &t.ja] {
                assert!(!w.title.is_empty() && !w.why.is_empty() && !w.fix.is_empty(), "{}", t.id);
            }
            assert_eq!(
                t.en.fix.contains("{target}"),
                t.ja.fix.contains("{target}"),
                "{}: both fixes name the target, or neither",
                t.id
            );
            assert!(!t.ja.title.is_ascii(), "{}: the Japanese words are Japanese", t.id);
            assert_eq!(super::check_text(t.id).map(|f| f.id), Some(t.id));
        }
        assert!(all.len() >= 30, "{} checks", all.len());
    }
}
