//! A repository's health check (`restic check`, `borg check`) as findings.

use crate::run::RunError;
use crate::{CheckText, Finding, Severity, Words};

pub const CHECK_FAILED: CheckText = CheckText {
    id: "backup.check_failed",
    en: Words {
        title: "The backup repository is damaged",
        why: "Damaged data means files that will not come back, in every snapshot that shares it.",
        fix: "Read the error for {target}, see how far the damage goes (`restic check --read-data`, \
              `borg check --verify-data`), fix the storage, then repair as restic's or borg's guide says or start \
              a new repository with a fresh full backup.",
    },
    ja: Words {
        title: "バックアップのリポジトリが壊れています",
        why: "壊れたデータのファイルは戻せず、そのデータを共有するすべてのスナップショットが影響を受けます。",
        fix: "{target} のエラーを確認し、restic check --read-data（borg なら borg check --verify-data）で破損の範囲を\
              調べてください。保存先の不具合を直したうえで、restic や borg の手順に従って修復するか、新しいリポジトリに\
              改めて全体をバックアップしてください。",
    },
};

pub const CHECK_STOPPED: CheckText = CheckText {
    id: "backup.check_stopped",
    en: Words {
        title: "The repository check did not finish in time",
        why: "A part left unread may hide damage that shows only when a restore is needed.",
        fix: "Raise check_subsets (less read per run) or check_minutes in [audit] so that each check of {target} finishes.",
    },
    ja: Words {
        title: "リポジトリの検査が時間内に終わりませんでした",
        why: "読み終えなかった部分に、復元が必要になるまでわからない破損が隠れているかもしれません。",
        fix: "[audit] の check_subsets を増やす（1 回に読む量を減らす）か check_minutes を延ばして、{target} の検査が\
              毎回終わるようにしてください。",
    },
};

/// The finding for a check of `part` (what it read) of `target`, if there is one.
pub fn judge(target: &str, part: &str, result: Result<(), RunError>) -> Option<Finding> {
    match result {
        Ok(()) => None,
        Err(e @ RunError::Stopped { .. }) => {
            Some(Finding::new(&CHECK_STOPPED, Severity::Low, target, format!("{part}: {e}")))
        }
        Err(e) => Some(Finding::new(&CHECK_FAILED, Severity::High, target, format!("{part}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_stopped_check_is_low_and_a_failed_one_high() {
        let stopped = RunError::Stopped { program: "restic".into(), limit: Duration::from_secs(600) };
        let f = judge("r", "data subset 3/20", Err(stopped)).unwrap();
        assert_eq!((f.check.as_str(), f.severity), ("backup.check_stopped", Severity::Low));
        assert_eq!(f.detail, "data subset 3/20: restic did not finish within 10 min and was stopped");
        let f =
            judge("r", "data subset 3/20", Err(RunError::Failed("Fatal: repository contains errors".into()))).unwrap();
        assert_eq!((f.check.as_str(), f.severity), ("backup.check_failed", Severity::High));
        assert!(judge("r", "x", Ok(())).is_none());
    }
}
