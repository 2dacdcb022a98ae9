//! Security updates not yet installed (`apt-get -s upgrade`: a simulation,
//! nothing is installed or downloaded), and packages Debian's security
//! team no longer supports (`check-support-status`, from
//! debian-security-support, when it is installed).

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{tool, UNCHECKED};
use crate::{CheckText, Finding, Severity, Words};

const APT_GET: &str = "/usr/bin/apt-get";
const SUPPORT_STATUS: &str = "/usr/bin/check-support-status";
const LISTS: &str = "/var/lib/apt/lists";
/// Package lists older than this may not know of recent fixes.
const STALE_DAYS: u64 = 7;
/// Packages named in a finding; the rest are counted.
const SHOWN: usize = 20;

pub const SECURITY: CheckText = CheckText {
    id: "updates.security",
    en: Words {
        title: "Security updates are waiting to be installed",
        why: "Ransomware crews break in through known, fixed holes in servers that were not updated.",
        fix: "Install them: `apt-get update && apt-get upgrade` (and consider unattended-upgrades for security updates).",
    },
    ja: Words {
        title: "未適用のセキュリティ更新がある",
        why: "ランサムウェア攻撃者は、修正済みなのに更新されていないサーバーの既知の穴から侵入する。",
        fix: "`apt-get update && apt-get upgrade` で適用する(セキュリティ更新の自動適用には unattended-upgrades を検討する)。",
    },
};

pub const UNSUPPORTED: CheckText = CheckText {
    id: "updates.unsupported",
    en: Words {
        title: "Installed packages no longer get security fixes",
        why: "A hole found in them will stay open on this server.",
        fix: "Replace or remove the listed packages, or move to a Debian release that supports them \
              (details: `check-support-status`).",
    },
    ja: Words {
        title: "セキュリティ修正が提供されなくなったパッケージ",
        why: "見つかった穴は、このサーバーでは塞がれないまま残る。",
        fix: "挙げたパッケージを入れ替えるか削除するか、それを支える Debian のリリースに移る(詳細は `check-support-status`)。",
    },
};

pub fn check() -> Vec<Finding> {
    let mut found = Vec::new();
    if Path::new(APT_GET).exists() {
        found.extend(security());
    }
    if Path::new(SUPPORT_STATUS).exists() {
        found.extend(unsupported());
    } else if Path::new(APT_GET).exists() {
        let why = "check-support-status is not installed: install debian-security-support to be told of packages without security support";
        found.push(Finding::new(&UNCHECKED, Severity::Info, "security support", why));
    }
    found
}

fn security() -> Option<Finding> {
    let args = ["-s", "-o", "Debug::NoLocking=1", "upgrade"];
    let out = match tool::run(Path::new(APT_GET), &args, Duration::from_secs(180)) {
        Ok(out) => out,
        Err(e) => return Some(Finding::new(&UNCHECKED, Severity::Low, "security updates", e.to_string())),
    };
    let pending = security_updates(&out);
    let age = lists_age_days();
    let freshness = match age {
        Some(days) if days > STALE_DAYS => {
            format!("; the package lists are {days} days old: run `apt-get update` first")
        }
        Some(_) => String::new(),
        None => "; apt has no package lists: run `apt-get update` first".to_owned(),
    };
    if pending.is_empty() {
        // Nothing pending is only known when the lists are fresh.
        return (!freshness.is_empty()).then(|| {
            Finding::new(&UNCHECKED, Severity::Low, "security updates", freshness.trim_start_matches("; ").to_owned())
        });
    }
    let mut shown = pending[..pending.len().min(SHOWN)].join(", ");
    if pending.len() > SHOWN {
        shown.push_str(&format!(" and {} more", pending.len() - SHOWN));
    }
    let detail = format!("{} pending from the security suite: {shown}{freshness}", pending.len());
    Some(Finding::new(&SECURITY, Severity::Medium, "apt", detail))
}

/// `package (new version)` for each upgrade `apt-get -s` would take from a security suite.
fn security_updates(simulation: &str) -> Vec<String> {
    simulation
        .lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .filter_map(|l| {
            let (name, rest) = l.split_once(' ')?;
            let origin = &rest[rest.find('(')? + 1..];
            let origin = &origin[..origin.find(')')?];
            let version = origin.split_whitespace().next()?;
            origin.to_ascii_lowercase().contains("security").then(|| format!("{name} ({version})"))
        })
        .collect()
}

/// Days since apt last fetched a release file.
fn lists_age_days() -> Option<u64> {
    let newest = std::fs::read_dir(LISTS)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("Release"))
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()?;
    Some(SystemTime::now().duration_since(newest).unwrap_or_default().as_secs() / 86_400)
}

fn unsupported() -> Option<Finding> {
    let out = match tool::run(Path::new(SUPPORT_STATUS), &[], Duration::from_secs(120)) {
        Ok(out) => out,
        Err(e) => return Some(Finding::new(&UNCHECKED, Severity::Low, "security support", e.to_string())),
    };
    let (packages, ended) = unsupported_packages(&out);
    if packages.is_empty() {
        return None;
    }
    let severity = if ended { Severity::Medium } else { Severity::Low };
    Some(Finding::new(&UNSUPPORTED, severity, "debian-security-support", tool::one_line(&packages.join("\n"))))
}

/// The `* Source:...` lines of `check-support-status`, and whether any is
/// under an "Ended security support" heading (else limited or ending later).
fn unsupported_packages(report: &str) -> (Vec<&str>, bool) {
    let mut ended = false;
    let mut in_ended = false;
    let mut packages = Vec::new();
    for line in report.lines() {
        if line.ends_with("security support for one or more packages") {
            in_ended = line.starts_with("Ended");
        }
        if let Some(source) = line.strip_prefix("* Source:") {
            packages.push(source.trim());
            ended |= in_ended;
        }
    }
    (packages, ended)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `apt-get -s upgrade` on Debian 12, abridged.
    const SIMULATION: &str = "NOTE: This is only a simulation!
Reading package lists...
Inst base-files [12.4+deb12u11] (12.4+deb12u15 Debian:12.15/oldstable [amd64])
Inst libgcrypt20-dev [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64]) []
Inst liblzma-dev [5.4.1-1] (5.4.1-1+deb12u2 Debian-Security:12/oldstable-security [amd64]) []
Conf base-files (12.4+deb12u15 Debian:12.15/oldstable [amd64])
";

    #[test]
    fn only_updates_from_a_security_suite_count() {
        assert_eq!(
            security_updates(SIMULATION),
            ["libgcrypt20-dev (1.10.1-3+deb12u1)", "liblzma-dev (5.4.1-1+deb12u2)"]
        );
    }

    #[test]
    fn ended_support_is_told_from_limited() {
        let report = "Ended security support for one or more packages

Unfortunately, it has been necessary to end security support for some
packages before the end of the regular security maintenance life cycle.

* Source:mysql-5.5, ended on 2016-07-25 at version 5.5.50-0+deb8u1
  Details: Moved to a newer upstream version
  Affected binary package:
  - mysql-client-5.5 (installed version: 5.5.50-0+deb8u1)

Limited security support for one or more packages

* Source:binutils
  Details: Only suitable for trusted content
";
        assert_eq!(
            unsupported_packages(report),
            (vec!["mysql-5.5, ended on 2016-07-25 at version 5.5.50-0+deb8u1", "binutils"], true)
        );
        let limited = &report[report.find("Limited").unwrap()..];
        assert_eq!(unsupported_packages(limited), (vec!["binutils"], false));
    }
}
