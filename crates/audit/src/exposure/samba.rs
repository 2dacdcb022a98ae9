//! Samba: SMB1, guest and open writable shares, shares mamori does not
//! protect, and `full_audit` operation lists this Samba would refuse, read
//! from the configuration the running smbd uses (`testparm -s -v`).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::{full_audit, impostor, tool, trust, unread, Scope, Service};
use crate::{CheckText, Finding, Severity, Words};

const SMBD: &str = "/usr/sbin/smbd";
const TESTPARM: &str = "/usr/bin/testparm";
const DEFAULT_CONFIG: &str = "/etc/samba/smb.conf";
const SMB1: &[&str] = &["NT1", "LANMAN2", "LANMAN1", "COREPLUS", "CORE"];

pub const SMB1_ALLOWED: CheckText = CheckText {
    id: "smb.smb1",
    en: Words {
        title: "Samba accepts SMB1",
        why: "SMB1 is the protocol WannaCry and NotPetya spread through; it has no protection against tampering.",
        fix: "Set `server min protocol = SMB2_10` (or remove the line: the default is SMB2) in [global] of smb.conf \
              and restart smbd; replace clients that need SMB1.",
    },
    ja: Words {
        title: "Samba が SMB1 を受け付ける",
        why: "SMB1 は WannaCry や NotPetya が広がった経路で、改ざんへの備えがない。",
        fix: "smb.conf の [global] で `server min protocol = SMB2_10` とする(行を消せば既定の SMB2)。smbd を再起動し、SMB1 が必要な古いクライアントは入れ替える。",
    },
};

pub const GUEST: CheckText = CheckText {
    id: "smb.guest",
    en: Words {
        title: "A share admits guests without a password",
        why: "Anyone on the network, and any infected machine, can read it, and encrypt it if it is writable.",
        fix: "Set `guest ok = no` on {target} (and `map to guest = never` in [global]), give its users accounts \
              (`smbpasswd -a`) and restart smbd.",
    },
    ja: Words {
        title: "パスワードなしでゲストが使える共有",
        why: "ネットワーク上の誰でも、感染したどの PC からでも読め、書き込めるなら暗号化もされる。",
        fix: "{target} で `guest ok = no`([global] では `map to guest = never`)とし、利用者にアカウントを作って(`smbpasswd -a`)smbd を再起動する。",
    },
};

pub const WRITABLE_OPEN: CheckText = CheckText {
    id: "smb.writable_open",
    en: Words {
        title: "A writable share is open to every account",
        why: "One stolen or infected account of any user can encrypt everything in it.",
        fix: "Add `valid users = @GROUP` (the group that needs it) to {target} and restart smbd.",
    },
    ja: Words {
        title: "全アカウントが書き込める共有",
        why: "どのユーザーでも、1つのアカウントが盗まれるか感染すれば、中身をすべて暗号化される。",
        fix: "{target} に `valid users = @グループ名`(使う人のグループ)を加え、smbd を再起動する。",
    },
};

pub const UNPROTECTED_SHARE: CheckText = CheckText {
    id: "smb.unprotected_share",
    en: Words {
        title: "A share's folder is not protected by mamori",
        why: "Ransomware on a client encrypts shares first; mamori neither stops it there nor keeps copies to restore.",
        fix: "Add the share's folder (see the detail) to `protect` in /etc/mamori/mamori.toml and restart the agent.",
    },
    ja: Words {
        title: "mamori が保護していない共有フォルダ",
        why: "クライアントのランサムウェアはまず共有を暗号化する。ここでは mamori が止めることも復元用のコピーを残すこともできない。",
        fix: "共有のフォルダ(詳細を参照)を /etc/mamori/mamori.toml の `protect` に加え、エージェントを再起動する。",
    },
};

pub const FULL_AUDIT_OPS: CheckText = CheckText {
    id: "smb.full_audit_ops",
    en: Words {
        title: "The share's audit settings make Samba refuse it",
        why: "full_audit names this Samba does not know (or a missing module) make every connection to the share fail, \
              and no file operation is logged.",
        fix: "In {target}, use the operation names this Samba knows (see the detail: e.g. `renameat`, `unlinkat`, \
              `openat`), or install samba-vfs-modules; then restart smbd and connect once to check.",
    },
    ja: Words {
        title: "監査設定のせいで Samba が共有への接続を拒む",
        why: "この Samba が知らない full_audit の操作名(やモジュールの未導入)があると、共有への接続がすべて失敗し、ファイル操作の記録も残らない。",
        fix: "{target} でこの Samba が知る操作名(詳細を参照: `renameat`・`unlinkat`・`openat` など)を使うか、samba-vfs-modules を入れる。smbd を再起動し、一度接続して確かめる。",
    },
};

/// `testparm -s -v`: [global] with every parameter (share parameters'
/// defaults included), then each share with what it sets itself.
struct Config {
    global: HashMap<String, String>,
    shares: Vec<(String, HashMap<String, String>)>,
}

impl Config {
    fn parse(text: &str) -> Config {
        let mut sections: Vec<(String, HashMap<String, String>)> = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                sections.push((name.to_owned(), HashMap::new()));
            } else if let (Some((key, value)), Some((_, params))) = (line.split_once(" = "), sections.last_mut()) {
                params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
            }
        }
        let global = sections.iter().position(|(n, _)| n == "global").map(|i| sections.remove(i).1).unwrap_or_default();
        Config { global, shares: sections }
    }

    /// A share's parameter: its own, else [global]'s (default or set).
    fn get<'a>(&'a self, share: &'a HashMap<String, String>, key: &str) -> &'a str {
        share.get(key).or(self.global.get(key)).map_or("", String::as_str)
    }
}

/// The findings for `service` if it is the system's smbd; `None` if it is not smbd.
pub fn check(service: &Service, scope: &Scope) -> Option<Vec<Finding>> {
    let mut procs = service.sockets.iter().flat_map(|l| &l.procs);
    let Some(smbd) = procs.find(|p| trust::runs_as_root(p, Path::new(SMBD))) else {
        return (service.name() == "smbd").then(|| impostor(service, "smbd", SMBD));
    };
    let given = smbd.option(&["-s", "--configfile"]);
    let config = match trust::root_config(Path::new(given.as_deref().unwrap_or(DEFAULT_CONFIG))) {
        Ok(config) => config.to_string_lossy().into_owned(),
        Err(why) => return Some(unread(service, "smbd", why)),
    };
    let args = ["-s", "-v", "--suppress-prompt", config.as_str()];
    let parsed = match tool::run(Path::new(TESTPARM), &args, Duration::from_secs(60)) {
        Ok(out) => Config::parse(&out),
        Err(e) => return Some(unread(service, "smbd", e)),
    };
    Some(judge(&parsed, service, scope, &module_ops))
}

/// The operation names of the full_audit module smbd would load.
fn module_ops() -> Result<Vec<String>, String> {
    let build = tool::run(Path::new(SMBD), &["-b"], Duration::from_secs(30)).map_err(|e| e.to_string())?;
    let dir = build.lines().find_map(|l| l.trim().strip_prefix("MODULESDIR: ")).ok_or("smbd -b names no MODULESDIR")?;
    let module = Path::new(dir.trim()).join("vfs/full_audit.so");
    if !module.exists() {
        return Err(format!("{} is not installed (package samba-vfs-modules)", module.display()));
    }
    full_audit::operations(&module)
}

fn judge(
    cfg: &Config,
    service: &Service,
    scope: &Scope,
    ops: &dyn Fn() -> Result<Vec<String>, String>,
) -> Vec<Finding> {
    let mut found = Vec::new();
    let evidence = service.evidence();
    let min = cfg.global.get("server min protocol").map_or("", String::as_str);
    if SMB1.iter().any(|p| p.eq_ignore_ascii_case(min)) {
        let detail = format!("server min protocol = {min}; {evidence}");
        found.push(Finding::new(&SMB1_ALLOWED, service.severity(Severity::High), service.target("smbd"), detail));
    }
    let mut known_ops = None;
    for (name, share) in &cfg.shares {
        let get = |key: &str| -> &str { cfg.get(share, key) };
        if get("printable") == "Yes" || name == "print$" {
            continue; // printers and their drivers hold no one's data
        }
        let target = format!("samba share [{name}]");
        // [homes] with no path serves each user's home directory.
        let path = match get("path") {
            "" if name == "homes" => "/home",
            path => path,
        };
        let writable = get("read only") == "No";
        let line = |key: &str| format!("{key} = {}", get(key));
        let detail = |lines: &[String]| format!("{}; path = {path}; {evidence}", lines.join(", "));
        if get("guest ok") == "Yes" {
            let base = if writable { Severity::High } else { Severity::Medium };
            let lines = [
                line("guest ok"),
                line("read only"),
                format!("map to guest = {}", cfg.global.get("map to guest").map_or("", String::as_str)),
            ];
            found.push(Finding::new(&GUEST, service.severity(base), &target, detail(&lines)));
        } else if writable && get("valid users").is_empty() && name != "homes" {
            let lines = [line("read only"), "no valid users".to_owned()];
            found.push(Finding::new(&WRITABLE_OPEN, service.severity(Severity::Medium), &target, detail(&lines)));
        }
        if !path.contains('%') && !scope.protected.iter().any(|p| Path::new(path).starts_with(p)) {
            let shown: Vec<String> = scope.protected.iter().map(|p| p.display().to_string()).collect();
            let why = format!(
                "path = {path} is outside every protected folder ({})",
                if shown.is_empty() { "none".into() } else { shown.join(", ") }
            );
            found.push(Finding::new(&UNPROTECTED_SHARE, Severity::Medium, &target, why));
        }
        if get("vfs objects").split_whitespace().any(|m| m == "full_audit") {
            let known = known_ops.get_or_insert_with(ops);
            let lists = ["full_audit:success", "full_audit:failure"].map(|k| (k, get(k)));
            let bad: Vec<String> = match known {
                Err(why) => vec![why.clone()],
                Ok(known) => lists
                    .iter()
                    .filter_map(|(k, list)| {
                        let unknown = full_audit::unknown(list, known);
                        (!unknown.is_empty()).then(|| format!("{k} = {list}: unknown {}", hints(&unknown, known)))
                    })
                    .collect(),
            };
            if !bad.is_empty() {
                found.push(Finding::new(&FULL_AUDIT_OPS, Severity::Medium, &target, detail(&bad)));
            }
        }
    }
    found
}

/// `rename (this Samba has renameat)`: the names, with the form this version knows where there is one.
fn hints(unknown: &[&str], known: &[String]) -> String {
    let shown: Vec<String> = unknown
        .iter()
        .map(|u| {
            let at = format!("{}at", u.trim_start_matches('!').to_ascii_lowercase());
            if known.contains(&at) {
                format!("{u} (this Samba has {at})")
            } else {
                (*u).to_owned()
            }
        })
        .collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::firewall::{Reach, Verdict};
    use super::super::sockets::{Listener, Proc};
    use super::*;
    use std::path::PathBuf;

    /// `testparm -s -v` of Samba 4.17 (Debian 12) for a config with `server
    /// min protocol = NT1`, `map to guest = Bad User`, a guest share
    /// [public] that is writable, a writable [audited] with `vfs objects =
    /// full_audit` and `full_audit:success = rename unlink openat`, and a
    /// writable [homes].
    const WEAK_V: &str = include_str!("testdata/testparm-v-weak.txt");

    fn check(reach: Reach, ops: Result<Vec<String>, String>) -> Vec<(String, Severity, String, String)> {
        let l = Listener { addr: "::".parse().unwrap(), port: 445, procs: vec![Proc { pid: 5, name: "smbd".into() }] };
        let service = Service { sockets: vec![&l], verdict: Verdict { reach, limited: false, why: "test".into() } };
        let scope = Scope { protected: vec![PathBuf::from("/srv/lab/pub")] };
        judge(&Config::parse(WEAK_V), &service, &scope, &|| ops.clone())
            .into_iter()
            .map(|f| (f.check, f.severity, f.target, f.detail))
            .collect()
    }

    #[test]
    fn a_weak_config_reachable_by_anyone() {
        let ops = Ok(["connect", "openat", "renameat", "unlinkat"].map(String::from).into());
        let found = check(Reach::Exposed, ops);
        let got: Vec<(&str, Severity, &str)> = found.iter().map(|(c, s, t, _)| (c.as_str(), *s, t.as_str())).collect();
        assert_eq!(
            got,
            [
                ("smb.smb1", Severity::High, "smbd [::]:445"),
                ("smb.guest", Severity::High, "samba share [public]"),
                ("smb.writable_open", Severity::Medium, "samba share [audited]"),
                ("smb.unprotected_share", Severity::Medium, "samba share [audited]"),
                ("smb.full_audit_ops", Severity::Medium, "samba share [audited]"),
                ("smb.unprotected_share", Severity::Medium, "samba share [homes]"),
            ]
        );
        assert_eq!(found[0].3, "server min protocol = NT1; [::]:445 (smbd pid 5); firewall: exposed (test)");
        assert!(found[1]
            .3
            .starts_with("guest ok = Yes, read only = No, map to guest = Bad User; path = /srv/lab/pub;"));
        assert!(found[3].3.starts_with("path = /srv/lab/priv is outside every protected folder (/srv/lab/pub)"));
        assert!(
            found[4].3.starts_with(
                "full_audit:success = rename unlink openat: unknown rename (this Samba has renameat), unlink (this Samba has unlinkat);"
            ),
            "{}",
            found[4].3
        );
        assert!(found[5].3.starts_with("path = /home "));
    }

    #[test]
    fn behind_a_firewall_access_drops_a_level_and_a_missing_module_is_said() {
        let found = check(Reach::Filtered, Err("full_audit.so is not installed".into()));
        let sev = |c: &str| found.iter().find(|f| f.0 == c).map(|f| f.1);
        assert_eq!(sev("smb.smb1"), Some(Severity::Medium));
        assert_eq!(sev("smb.guest"), Some(Severity::Medium));
        assert_eq!(sev("smb.writable_open"), Some(Severity::Low));
        let audit = found.iter().find(|f| f.0 == "smb.full_audit_ops").unwrap();
        assert!(audit.3.starts_with("full_audit.so is not installed;"), "{}", audit.3);
    }
}
