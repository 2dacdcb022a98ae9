//! Whether the backups would survive an attacker on this host, and come back.
//!
//! For each repository in the config: can it be opened, is its newest
//! backup within the recovery-point objective ([`age`]), can this host
//! delete it ([`reach`]), is it healthy (a rotating part read in full by
//! `restic check`, or `borg check`), and does a sample of its newest restic
//! snapshot restore ([`drill`]). Then 3-2-1 over all of them ([`rule321`]).
//! Nothing here deletes, prunes, forgets or unlocks a repository.

mod age;
mod borg;
mod check;
mod drill;
mod place;
mod reach;
mod restic;
mod rotation;
mod rule321;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;

use self::borg::Borg;
use self::place::Place;
use self::restic::{Restic, Snapshot};
use self::rotation::Rotation;
use self::rule321::Copy;
use crate::run::RunError;
use crate::{AuditConfig, BorgRepo, CheckText, Finding, ResticRepo, Severity, Words};

pub const UNREACHABLE: CheckText = CheckText {
    id: "backup.unreachable",
    en: Words {
        title: "The backup repository cannot be opened",
        why: "A repository that is gone, moved or has a changed password will not open after an attack either.",
        fix: "Check that {target} exists and is reachable and that its password file opens it \
              (`restic snapshots` or `borg list` with the same settings).",
    },
    ja: Words {
        title: "バックアップのリポジトリを開けません",
        why: "消えた・移動した・パスワードが変わったリポジトリは、攻撃を受けたあとにも開けません。",
        fix: "{target} が存在して接続でき、パスワードファイルで開けることを確かめてください\
              （同じ設定で restic snapshots や borg list を実行します）。",
    },
};

/// Every check's words, for the report to look up by id.
pub const CHECKS: &[CheckText] = &[
    UNREACHABLE,
    age::NONE,
    age::STALE,
    check::CHECK_FAILED,
    check::CHECK_STOPPED,
    rotation::STATE,
    drill::DRILL,
    drill::DRILL_FAILED,
    reach::DELETABLE,
    reach::DELETABLE_UNKNOWN,
    rule321::RULE_321,
];

/// Every backup finding for the repositories in `cfg`; `state` is a folder
/// of mamori's own where what must last between runs is kept (which part
/// of each repository the next check reads).
pub fn backups(cfg: &AuditConfig, state: &Path) -> Vec<Finding> {
    let now = Timestamp::now();
    let host = hostname();
    let mut rotation = Rotation::load(state);
    let mut findings = Vec::new();
    let mut copies = Vec::new();
    for repo in &cfg.restic {
        copies.extend(restic_repo(cfg, repo, &host, now, &mut rotation, &mut findings));
    }
    for repo in &cfg.borg {
        copies.extend(borg_repo(cfg, repo, now, &mut findings));
    }
    findings.extend(rule321::judge(&host, cfg.restic.len() + cfg.borg.len(), &copies));
    findings
}

/// The findings for one restic repository; the copy it holds for 3-2-1, if fresh.
fn restic_repo(
    cfg: &AuditConfig,
    repo: &ResticRepo,
    host: &str,
    now: Timestamp,
    rotation: &mut Rotation,
    findings: &mut Vec<Finding>,
) -> Option<Copy> {
    let target = place::shown(&repo.repository);
    let restic = Restic::new(repo);
    let snapshots = match restic.snapshots() {
        Ok(s) => s,
        Err(e) => {
            findings.push(unreachable(&target, e));
            return None;
        }
    };
    let place = Place::restic(&repo.repository);
    findings.extend(reach::judge(&target, &place));
    let (stale, fresh) = age::judge(&target, &newest_per_set(&snapshots), repo.rpo_hours, now);
    findings.extend(stale);
    let snap = newest(&snapshots, host)?;

    let of = cfg.check_subsets.max(1);
    let k = rotation.take(&target, of);
    findings.extend(rotation.save());
    let part = format!("data subset {k}/{of}");
    findings.extend(check::judge(&target, &part, restic.check(k, of, check_limit(cfg))));
    findings.push(drill::drill(&restic, snap, host, cfg, &target));
    fresh.then(|| copy(&place))
}

/// The findings for one borg repository; the copy it holds for 3-2-1, if fresh.
fn borg_repo(cfg: &AuditConfig, repo: &BorgRepo, now: Timestamp, findings: &mut Vec<Finding>) -> Option<Copy> {
    let target = place::shown(&repo.repository);
    let opened = Borg::open(repo).and_then(|borg| borg.newest().map(|newest| (borg, newest)));
    let (borg, newest) = match opened {
        Ok(found) => found,
        Err(e) => {
            findings.push(unreachable(&target, e));
            return None;
        }
    };
    let place = Place::borg(&repo.repository);
    if !borg_append_only(&place) {
        findings.extend(reach::judge(&target, &place));
    }
    let (stale, fresh) = age::judge(&target, newest.as_slice(), repo.rpo_hours, now);
    findings.extend(stale);
    newest.as_ref()?;
    findings.extend(check::judge(&target, "the whole repository", borg.check(check_limit(cfg))));
    fresh.then(|| copy(&place))
}

fn unreachable(target: &str, e: RunError) -> Finding {
    Finding::new(&UNREACHABLE, Severity::High, target, e.to_string())
}

fn check_limit(cfg: &AuditConfig) -> Duration {
    Duration::from_secs(cfg.check_minutes.max(1).saturating_mul(60))
}

fn copy(place: &Place) -> Copy {
    let (kind, off_host) = place.kind();
    Copy { kind, off_host }
}

/// The newest snapshot of each host and set of paths.
fn newest_per_set(snapshots: &[Snapshot]) -> Vec<age::Newest> {
    let mut sets: BTreeMap<(String, Vec<String>), age::Newest> = BTreeMap::new();
    for s in snapshots {
        let Some(time) = s.time() else { continue };
        let mut paths = s.paths.clone();
        paths.sort();
        let set = format!("{}: {}", s.hostname, paths.join(", "));
        let newest = age::Newest { set, time, name: s.short_id.clone() };
        let slot = sets.entry((s.hostname.clone(), paths)).or_insert_with(|| newest.clone());
        if time > slot.time {
            *slot = newest;
        }
    }
    sets.into_values().collect()
}

/// The snapshot the drill restores: this host's newest, or the newest of all.
fn newest<'s>(snapshots: &'s [Snapshot], host: &str) -> Option<&'s Snapshot> {
    let latest = |own: bool| {
        snapshots.iter().filter(|s| !own || s.hostname == host).filter(|s| s.time().is_some()).max_by_key(|s| s.time())
    };
    latest(true).or_else(|| latest(false))
}

/// Whether a local borg repository's config makes borg refuse deletes.
fn borg_append_only(place: &Place) -> bool {
    let Place::Path(dir) = place else { return false };
    let mut text = String::new();
    mamori_userfile::open_regular(&dir.join("config"), mamori_userfile::Follow::Never)
        .is_ok_and(|f| f.take(1 << 20).read_to_string(&mut text).is_ok())
        && borg::append_only(&text)
}

/// This host's name as restic records it in snapshots.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
}

/// `n` and the noun that goes with it (`1 file`, `20 files`).
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
