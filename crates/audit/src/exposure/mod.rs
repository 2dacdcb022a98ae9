//! What this host exposes: listening sockets beyond loopback, matched to
//! their service and to the firewall, and the configs of those services.
//!
//! Each listening process (or, for kernel sockets, each port) is one
//! [`Service`]; the firewall's verdict on its sockets sets how much a
//! weakness in it matters: reachable by anyone, the finding keeps its
//! severity; behind a firewall that filters or restricts it, one lower.
//! Then what does not listen but still opens the host: NFS exports and
//! pending security updates.

mod firewall;
mod full_audit;
mod nfs;
mod remote;
mod samba;
mod sockets;
mod ssh;
mod tool;
mod trust;
mod updates;

use std::collections::BTreeMap;
use std::path::PathBuf;

use self::firewall::{Firewall, Verdict};
use self::sockets::Listener;
use crate::{CheckText, Finding, Severity, Words};

/// What the exposure checks need from the caller.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Folders mamori protects (a Samba share outside all of them is a finding).
    pub protected: Vec<PathBuf>,
}

pub const SERVICE: CheckText = CheckText {
    id: "exposure.service",
    en: Words {
        title: "A service listens beyond this host",
        why: "Every service reachable from the network is a way in that must be kept patched and needed.",
        fix: "If {target} is not needed from other machines, stop it or bind it to 127.0.0.1; \
              otherwise allow only the clients that need it in the firewall.",
    },
    ja: Words {
        title: "外部から接続できるサービス",
        why: "ネットワークから届くサービスはすべて侵入口になりうる。必要なものだけを、更新して動かす。",
        fix: "{target} が他のマシンから不要なら止めるか 127.0.0.1 だけで待ち受ける。必要ならファイアウォールで使うクライアントだけに許可する。",
    },
};

pub const UNCHECKED: CheckText = CheckText {
    id: "exposure.unchecked",
    en: Words {
        title: "Something could not be checked",
        why: "What the audit could not read may be the open door; it is not known to be safe.",
        fix: "See the detail for what failed on {target}, fix that (install the tool, correct the file) and run the audit again.",
    },
    ja: Words {
        title: "確認できなかった項目",
        why: "読めなかった所が侵入口かもしれない。安全とは確認できていない。",
        fix: "{target} について詳細にある失敗の原因(ツールの未導入、ファイルの不備など)を直し、監査をもう一度実行する。",
    },
};

/// Every check of this module, for the reports' words.
pub const CHECKS: &[CheckText] = &[
    ssh::PASSWORD_AUTH,
    ssh::ROOT_LOGIN,
    ssh::WEAK_CRYPTO,
    ssh::NO_RATE_LIMIT,
    remote::RDP,
    remote::VNC,
    remote::DATABASE,
    samba::SMB1_ALLOWED,
    samba::GUEST,
    samba::WRITABLE_OPEN,
    samba::UNPROTECTED_SHARE,
    samba::FULL_AUDIT_OPS,
    nfs::EXPORT_ALL,
    updates::SECURITY,
    updates::UNSUPPORTED,
    SERVICE,
    UNCHECKED,
];

/// A listening program (or, for sockets no process holds, a port) and
/// what the firewall lets reach it.
pub struct Service<'a> {
    pub sockets: Vec<&'a Listener>,
    pub verdict: Verdict,
}

impl Service<'_> {
    /// The name for a finding's target: `sshd 10.0.0.1:22` (every address it listens on).
    pub fn target(&self, name: &str) -> String {
        let ends: Vec<String> = self.sockets.iter().map(|l| l.endpoint()).collect();
        format!("{name} {}", ends.join(" "))
    }

    /// The sockets and the firewall's verdict, for a finding's detail.
    pub fn evidence(&self) -> String {
        let socks: Vec<String> = self.sockets.iter().map(|l| l.evidence()).collect();
        format!("{}; {}", socks.join(", "), self.verdict)
    }

    /// `base` when anyone can reach the service; one lower behind a firewall.
    pub fn severity(&self, base: Severity) -> Severity {
        if self.verdict.shields() {
            lower(base)
        } else {
            base
        }
    }

    pub fn ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.sockets.iter().map(|l| l.port)
    }

    pub fn name(&self) -> &str {
        self.sockets[0].name()
    }
}

/// What a service that calls itself `label` but is not the system's
/// program running as root gets: the fact that it listens, and that its
/// configuration was not read (handing its arguments to a root tool would
/// let its owner have any file read).
fn impostor(service: &Service, label: &str, binary: &str) -> Vec<Finding> {
    let target = service.target(&format!("{label}?"));
    vec![
        Finding::new(&SERVICE, Severity::Info, &target, service.evidence()),
        Finding::new(
            &UNCHECKED,
            Severity::Low,
            &target,
            format!("not {binary} running as root, so its configuration was not read; {}", service.evidence()),
        ),
    ]
}

/// The finding for a service whose configuration could not be read.
fn unread(service: &Service, label: &str, why: impl std::fmt::Display) -> Vec<Finding> {
    let detail = format!("its configuration was not read: {why}; {}", service.evidence());
    vec![Finding::new(&UNCHECKED, Severity::Low, service.target(label), detail)]
}

pub fn lower(s: Severity) -> Severity {
    match s {
        Severity::High => Severity::Medium,
        Severity::Medium => Severity::Low,
        Severity::Low | Severity::Info => Severity::Info,
    }
}

/// Every exposure finding on this host (in the caller's network namespace).
pub fn exposure(scope: &Scope) -> Vec<Finding> {
    let mut findings = Vec::new();
    let firewall = Firewall::read();
    if let Some(why) = firewall.unread() {
        findings.push(Finding::new(
            &UNCHECKED,
            Severity::Low,
            "firewall",
            format!("the nftables ruleset could not be read ({why}): every service is taken as reachable"),
        ));
    }
    let listeners = match sockets::listeners() {
        Ok(l) => l,
        Err(e) => {
            findings.push(Finding::new(&UNCHECKED, Severity::Low, "listening sockets", format!("/proc/net/tcp: {e}")));
            Vec::new()
        }
    };
    for service in services(&listeners, &firewall) {
        findings.extend(judge(&service, scope));
    }
    findings.extend(nfs::check(std::path::Path::new(nfs::EXPORTS), &listeners, &firewall));
    findings.extend(updates::check());
    findings
}

/// The listeners grouped by the process holding them (kernel sockets by port).
fn services<'a>(listeners: &'a [Listener], firewall: &Firewall) -> Vec<Service<'a>> {
    let mut groups: BTreeMap<(u32, u16), Vec<&Listener>> = BTreeMap::new();
    for l in listeners {
        let key = match l.procs.first() {
            Some(p) => (p.pid, 0),
            None => (0, l.port),
        };
        groups.entry(key).or_default().push(l);
    }
    groups
        .into_values()
        .map(|sockets| {
            // The most open of its sockets' verdicts.
            let verdict = sockets
                .iter()
                .map(|l| firewall.verdict(l.port, l.takes_ipv4(), l.takes_ipv6()))
                .max_by_key(|v| !v.shields())
                .expect("a group has a socket");
            Service { sockets, verdict }
        })
        .collect()
}

/// The findings for one service: its own checks where it is one mamori
/// knows, else the plain fact that it listens.
fn judge(service: &Service, scope: &Scope) -> Vec<Finding> {
    if let Some(found) = ssh::check(service) {
        return found;
    }
    if let Some(found) = samba::check(service, scope) {
        return found;
    }
    if let Some(found) = remote::check(service) {
        return found;
    }
    vec![Finding::new(&SERVICE, Severity::Info, service.target(service.name()), service.evidence())]
}
