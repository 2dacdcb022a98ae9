//! Remote desktops (RDP, VNC) and databases listening beyond loopback:
//! there is no safe configuration of these to look for; being reachable
//! from the network at all is the finding. Known by their usual ports or
//! their process names (a label only: nothing is run on their word).

use std::ops::RangeInclusive;

use super::Service;
use crate::{CheckText, Finding, Severity, Words};

pub const RDP: CheckText = CheckText {
    id: "rdp.exposed",
    en: Words {
        title: "Remote desktop (RDP) is reachable from the network",
        why: "Exposed RDP is the most common way ransomware crews get in: passwords are guessed or bought.",
        fix: "Stop {target} or make it listen on 127.0.0.1 and reach it through SSH or a VPN; \
              at least allow only the admins' addresses in the firewall.",
    },
    ja: Words {
        title: "リモートデスクトップ(RDP)がネットワークから届く",
        why: "公開された RDP はランサムウェアの最も多い侵入口。パスワードは推測されるか売買されている。",
        fix: "{target} を止めるか 127.0.0.1 だけで待ち受け、SSH や VPN 経由で使う。少なくともファイアウォールで管理者のアドレスだけに許可する。",
    },
};

pub const VNC: CheckText = CheckText {
    id: "vnc.exposed",
    en: Words {
        title: "VNC is reachable from the network",
        why: "VNC's passwords are short and often weak, and it gives an attacker a whole desktop session.",
        fix: "Stop {target} or make it listen on 127.0.0.1 (e.g. `-localhost`) and tunnel it through SSH.",
    },
    ja: Words {
        title: "VNC がネットワークから届く",
        why: "VNC のパスワードは短く弱いことが多く、破られればデスクトップがそのまま攻撃者のものになる。",
        fix: "{target} を止めるか 127.0.0.1 だけで待ち受け(`-localhost` など)、SSH のトンネル経由で使う。",
    },
};

pub const DATABASE: CheckText = CheckText {
    id: "db.exposed",
    en: Words {
        title: "A database is reachable from the network",
        why: "Exposed databases are wiped and held for ransom by automated attacks within hours.",
        fix: "Make {target} listen on 127.0.0.1 (PostgreSQL `listen_addresses`, MySQL/MariaDB `bind-address`, \
              Redis `bind`, MongoDB `net.bindIp`) or allow only its application servers in the firewall.",
    },
    ja: Words {
        title: "データベースがネットワークから届く",
        why: "公開されたデータベースは自動化された攻撃で数時間のうちに消され、身代金を要求される。",
        fix: "{target} を 127.0.0.1 だけで待ち受ける(PostgreSQL は `listen_addresses`、MySQL/MariaDB は `bind-address`、Redis は `bind`、MongoDB は `net.bindIp`)か、ファイアウォールで使うアプリケーションサーバーだけに許可する。",
    },
};

/// A kind of service that should not be reachable at all.
struct Kind {
    check: &'static CheckText,
    ports: &'static [RangeInclusive<u16>],
    /// Process names as `comm` shows them (at most 15 bytes).
    names: &'static [&'static str],
}

const KINDS: &[Kind] = &[
    Kind { check: &RDP, ports: &[3389..=3389], names: &["xrdp"] },
    // Displays :0 to :99.
    Kind {
        check: &VNC,
        ports: &[5900..=5999],
        names: &["Xvnc", "x11vnc", "Xtigervnc", "Xvnc-core", "wayvnc", "vino-server", "krfb"],
    },
    Kind {
        check: &DATABASE,
        ports: &[5432..=5432, 3306..=3306, 6379..=6379, 27017..=27017],
        names: &["postgres", "mysqld", "mariadbd", "redis-server", "mongod"],
    },
];

/// The findings for `service`, one per kind it is (a program may serve a
/// remote desktop and a database at once); `None` if it is none of them.
pub fn check(service: &Service) -> Option<Vec<Finding>> {
    let name = service.name();
    let found: Vec<Finding> = KINDS
        .iter()
        .filter(|k| k.names.contains(&name) || service.ports().any(|p| k.ports.iter().any(|r| r.contains(&p))))
        .map(|k| Finding::new(k.check, service.severity(Severity::High), service.target(name), service.evidence()))
        .collect();
    (!found.is_empty()).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::super::firewall::{Reach, Verdict};
    use super::super::sockets::{Listener, Proc};
    use super::*;

    fn found(port: u16, name: &str, reach: Reach) -> Option<(String, Severity, String)> {
        let procs = vec![Proc { pid: 3, name: name.into() }];
        let l = Listener { addr: "10.0.0.1".parse().unwrap(), port, procs };
        let service = Service { sockets: vec![&l], verdict: Verdict { reach, limited: false, why: "t".into() } };
        check(&service).map(|f| (f[0].check.clone(), f[0].severity, f[0].target.clone()))
    }

    #[test]
    fn one_program_serving_a_desktop_and_a_database_is_both() {
        let procs = vec![Proc { pid: 3, name: "python3".into() }];
        let rdp = Listener { addr: "0.0.0.0".parse().unwrap(), port: 3389, procs: procs.clone() };
        let db = Listener { addr: "0.0.0.0".parse().unwrap(), port: 5432, procs };
        let verdict = Verdict { reach: Reach::Exposed, limited: false, why: "t".into() };
        let service = Service { sockets: vec![&rdp, &db], verdict };
        let checks: Vec<String> = check(&service).unwrap().into_iter().map(|f| f.check).collect();
        assert_eq!(checks, ["rdp.exposed", "db.exposed"]);
    }

    #[test]
    fn known_by_port_or_name_and_lowered_behind_a_firewall() {
        assert_eq!(
            found(3389, "python3", Reach::Exposed),
            Some(("rdp.exposed".into(), Severity::High, "python3 10.0.0.1:3389".into()))
        );
        assert_eq!(found(3389, "xrdp", Reach::Filtered).map(|f| f.1), Some(Severity::Medium));
        assert_eq!(found(5901, "Xtigervnc", Reach::Exposed).map(|f| f.0), Some("vnc.exposed".into()));
        assert_eq!(
            found(15432, "postgres", Reach::Restricted(vec!["10.1.0.0/16".into()])).map(|f| (f.0, f.1)),
            Some(("db.exposed".into(), Severity::Medium))
        );
        assert_eq!(found(8080, "nginx", Reach::Exposed), None);
    }
}
