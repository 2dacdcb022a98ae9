//! 3-2-1: copies of the data, kinds of storage, copies off this host.
//! Counted from the repositories holding a backup within their objective,
//! plus the live data (on this host's disks).

use std::collections::BTreeSet;

use super::place::Kind;
use crate::{CheckText, Finding, Severity, Words};

pub const RULE_321: CheckText = CheckText {
    id: "backup.321",
    en: Words {
        title: "Fewer copies of the data than 3-2-1 asks",
        why: "Ransomware encrypts what this host can reach: two backups, one of them off this host, leave one it cannot touch.",
        fix: "Add backups until {target} has two within their objective, at least one off this host \
              (another site, a cloud bucket with object lock, an append-only server).",
    },
    ja: Words {
        title: "データのコピーが 3-2-1 に足りません",
        why: "ランサムウェアはこのサーバーから届くものを暗号化します。バックアップを 2 つ持ち、1 つをこのサーバーの外に置けば、\
              手の届かないコピーが残ります。",
        fix: "{target} に目標復旧時点内のバックアップが 2 つそろうよう追加し、少なくとも 1 つはこのサーバーの外\
              （別の拠点、オブジェクトロック付きのクラウド、追記のみのサーバー）に置いてください。",
    },
};

/// A repository holding a backup within its objective.
#[derive(Debug, Clone, Copy)]
pub struct Copy {
    pub kind: Kind,
    pub off_host: bool,
}

/// The finding for `host`, whose configured repositories (`named` of them)
/// hold the fresh `copies`, if 3-2-1 is not met.
pub fn judge(host: &str, named: usize, copies: &[Copy]) -> Option<Finding> {
    let off = copies.iter().filter(|c| c.off_host).count();
    let mut wrong = Vec::new();
    if named == 0 {
        wrong.push("no repository is named in [[audit.restic]] or [[audit.borg]]".to_owned());
    } else if copies.len() < 2 {
        wrong.push(format!("{} within the objective, 2 needed", super::counted(copies.len(), "backup", "backups")));
    }
    if named > 0 && off == 0 {
        wrong.push("none off this host".to_owned());
    }
    if wrong.is_empty() {
        return None;
    }
    let kinds: BTreeSet<Kind> = copies.iter().map(|c| c.kind).chain([Kind::LocalDisk]).collect();
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let detail = format!(
        "{}: {} (the live data and {}), on {} ({}), {off} off this host",
        wrong.join("; "),
        super::counted(copies.len() + 1, "copy", "copies"),
        super::counted(copies.len(), "backup", "backups"),
        super::counted(kinds.len(), "kind of storage", "kinds of storage"),
        kinds.join(", "),
    );
    Some(Finding::new(&RULE_321, Severity::Medium, host, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_backups_one_off_host_pass() {
        let local = Copy { kind: Kind::LocalDisk, off_host: false };
        let cloud = Copy { kind: Kind::Cloud, off_host: true };
        assert!(judge("h", 2, &[local, cloud]).is_none());
        let f = judge("h", 2, &[local, local]).unwrap();
        assert!(f.detail.starts_with("none off this host: 3 copies"), "{}", f.detail);
        let f = judge("h", 1, &[cloud]).unwrap();
        assert!(f.detail.contains("1 backup within the objective, 2 needed"), "{}", f.detail);
        assert!(f.detail.contains("2 kinds of storage (local disk, cloud storage), 1 off"), "{}", f.detail);
        assert!(judge("h", 0, &[]).unwrap().detail.starts_with("no repository is named"));
    }
}
