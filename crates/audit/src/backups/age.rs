//! The newest backup's age against the recovery-point objective.

use jiff::Timestamp;

use crate::{CheckText, Finding, Severity, Words};

pub const STALE: CheckText = CheckText {
    id: "backup.stale",
    en: Words {
        title: "The newest backup is older than the recovery-point objective",
        why: "Everything changed since the newest backup is lost if ransomware strikes now, and a backup job that \
              stopped silently is often noticed only then.",
        fix: "Find out why backups to {target} stopped (the job's log, its timer or cron, space, credentials), run one \
              now, and have failed runs alert someone.",
    },
    ja: Words {
        title: "最新のバックアップが目標復旧時点（RPO）より古くなっています",
        why: "今ランサムウェアに暗号化されると、最新のバックアップ以降の変更はすべて失われます。\
              止まったバックアップは、そのときになって初めて気づかれがちです。",
        fix: "{target} へのバックアップが止まった原因（ジョブのログ、タイマーや cron、容量、認証情報）を調べて今すぐ実行し、\
              失敗したら通知が届くようにしてください。",
    },
};

pub const NONE: CheckText = CheckText {
    id: "backup.none",
    en: Words {
        title: "The repository holds no backup",
        why: "Without a snapshot there is nothing to restore after an attack.",
        fix: "Run the backup job for {target}, check that it finishes, schedule it and have failed runs alert someone.",
    },
    ja: Words {
        title: "リポジトリにバックアップが一つもありません",
        why: "スナップショットがなければ、攻撃を受けたあとに戻せるものがありません。",
        fix:
            "{target} へのバックアップを実行して最後まで終わることを確かめ、定期実行と失敗時の通知を設定してください。",
    },
};

/// The newest backup of one set of backups (restic: a host and its paths).
#[derive(Debug, Clone)]
pub struct Newest {
    /// Which set, for the finding (`web1: /srv`); empty when the repository has one.
    pub set: String,
    pub time: Timestamp,
    /// The snapshot's or archive's name, for the finding.
    pub name: String,
}

/// Findings for the newest backups of `target`, and whether one of them is
/// within the objective (a copy, for 3-2-1).
pub fn judge(target: &str, newest: &[Newest], rpo_hours: u64, now: Timestamp) -> (Vec<Finding>, bool) {
    if newest.is_empty() {
        return (vec![Finding::new(&NONE, Severity::High, target, "no snapshot")], false);
    }
    let rpo_secs = i64::try_from(rpo_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
    let mut findings = Vec::new();
    let mut fresh = false;
    for n in newest {
        // A time ahead of this clock (skew) counts as fresh.
        let age = now.as_second().saturating_sub(n.time.as_second());
        if age <= rpo_secs {
            fresh = true;
            continue;
        }
        let shown = if n.set.is_empty() { target.to_owned() } else { format!("{target} ({})", n.set) };
        let detail = format!(
            "the newest backup ({}, {}) is {} old; the objective is {rpo_hours} h",
            n.name,
            n.time.strftime("%Y-%m-%d %H:%M UTC"),
            age_words(age)
        );
        findings.push(Finding::new(&STALE, Severity::High, shown, detail));
    }
    (findings, fresh)
}

fn age_words(secs: i64) -> String {
    let hours = secs / 3600;
    if hours < 48 {
        format!("{hours} h")
    } else {
        format!("{} days", hours / 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_set_is_judged_by_its_newest() {
        let now: Timestamp = "2024-06-10T00:00:00Z".parse().unwrap();
        let set = |set: &str, time: &str| Newest { set: set.into(), time: time.parse().unwrap(), name: "abc".into() };
        let (found, fresh) =
            judge("r", &[set("a: /srv", "2024-06-09T12:00:00Z"), set("b: /home", "2024-06-01T00:00:00Z")], 24, now);
        assert!(fresh);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].check.as_str(), found[0].target.as_str()), ("backup.stale", "r (b: /home)"));
        assert!(found[0].detail.contains("9 days old"), "{}", found[0].detail);

        let (found, fresh) = judge("r", &[], 24, now);
        assert!(!fresh);
        assert_eq!(found[0].check, "backup.none");
    }
}
