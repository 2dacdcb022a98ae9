//! sshd: how it lets people in, read from its effective configuration
//! (`sshd -T`) and from what limits the rate of attempts.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::{impostor, tool, trust, unread, Service};
use crate::{CheckText, Finding, Severity, Words};

const SSHD: &str = "/usr/sbin/sshd";
const DEFAULT_CONFIG: &str = "/etc/ssh/sshd_config";

pub const PASSWORD_AUTH: CheckText = CheckText {
    id: "ssh.password_auth",
    en: Words {
        title: "SSH accepts passwords",
        why: "Ransomware crews get in by guessing or reusing passwords; a key cannot be guessed.",
        fix: "Give every user an SSH key, then set `PasswordAuthentication no` and `KbdInteractiveAuthentication no` \
              in /etc/ssh/sshd_config and reload sshd.",
    },
    ja: Words {
        title: "SSH がパスワードでのログインを受け付ける",
        why: "ランサムウェア攻撃者はパスワードの推測や使い回しで侵入する。鍵は推測できない。",
        fix: "全ユーザーに SSH 鍵を配ってから、/etc/ssh/sshd_config で `PasswordAuthentication no` と \
              `KbdInteractiveAuthentication no` を設定し、sshd を再読み込みする。",
    },
};

pub const ROOT_LOGIN: CheckText = CheckText {
    id: "ssh.root_login",
    en: Words {
        title: "root can log in over SSH",
        why: "A root login skips every step an attacker would otherwise need to take over the whole server.",
        fix: "Set `PermitRootLogin no` in /etc/ssh/sshd_config (log in as a user and use sudo) and reload sshd.",
    },
    ja: Words {
        title: "SSH で root がログインできる",
        why: "root で直接入られると、サーバー全体の乗っ取りまでの手間がすべて省ける。",
        fix: "/etc/ssh/sshd_config で `PermitRootLogin no` とし(一般ユーザーで入って sudo を使う)、sshd を再読み込みする。",
    },
};

pub const WEAK_CRYPTO: CheckText = CheckText {
    id: "ssh.weak_crypto",
    en: Words {
        title: "SSH offers weak algorithms",
        why: "Broken ciphers, key exchanges and MACs let a network attacker read or tamper with sessions and their passwords.",
        fix: "Remove the listed algorithms from `Ciphers`, `KexAlgorithms` and `MACs` in /etc/ssh/sshd_config \
              (OpenSSH's defaults are safe) and reload sshd.",
    },
    ja: Words {
        title: "SSH が弱い暗号方式を許している",
        why: "破られた暗号・鍵交換・MAC は、通信やパスワードの盗聴・改ざんを許す。",
        fix: "/etc/ssh/sshd_config の `Ciphers`・`KexAlgorithms`・`MACs` から挙げた方式を外し(OpenSSH の既定値は安全)、sshd を再読み込みする。",
    },
};

pub const NO_RATE_LIMIT: CheckText = CheckText {
    id: "ssh.no_rate_limit",
    en: Words {
        title: "Nothing limits SSH login attempts",
        why: "Without a limit an attacker can try passwords as fast as the server answers.",
        fix: "Install fail2ban (its sshd jail is on by default) or add an nftables rule that limits new \
              connections to {target}, e.g. `tcp dport 22 ct state new limit rate 10/minute accept`.",
    },
    ja: Words {
        title: "SSH のログイン試行が制限されていない",
        why: "制限がなければ、攻撃者はサーバーが応答する速さでパスワードを試せる。",
        fix: "fail2ban を入れる(sshd の jail は既定で有効)か、nftables で {target} への新規接続を制限する\
              (例: `tcp dport 22 ct state new limit rate 10/minute accept`)。",
    },
};

/// Whether an algorithm of a list is weak.
type IsWeak = fn(&str) -> bool;

/// Algorithms OpenSSH no longer offers by default because they are broken or weak.
const WEAK: &[(&str, IsWeak)] = &[
    ("ciphers", |a| {
        a.contains("-cbc") || a.starts_with("arcfour") || a.starts_with("blowfish") || a.starts_with("cast")
    }),
    ("kexalgorithms", |a| a.ends_with("-sha1") || a.contains("group1-") || a.starts_with("gss-")),
    ("macs", |a| a.contains("md5") || a.contains("ripemd") || a.contains("-96")),
];

/// The findings for `service` if it is the system's sshd; `None` if it is not sshd.
pub fn check(service: &Service) -> Option<Vec<Finding>> {
    let mut procs = service.sockets.iter().flat_map(|l| &l.procs);
    let Some(sshd) = procs.find(|p| trust::runs_as_root(p, Path::new(SSHD))) else {
        return (service.name() == "sshd").then(|| impostor(service, "sshd", SSHD));
    };
    let given = sshd.option(&["-f"]);
    let config = match trust::root_config(Path::new(given.as_deref().unwrap_or(DEFAULT_CONFIG))) {
        Ok(config) => config.to_string_lossy().into_owned(),
        Err(why) => return Some(unread(service, "sshd", why)),
    };
    let effective = match tool::run(Path::new(SSHD), &["-T", "-f", &config], Duration::from_secs(30)) {
        Ok(out) => parse(&out),
        Err(e) => return Some(unread(service, "sshd", e)),
    };
    let guard =
        trust::root_process_named(&["fail2ban-server", "sshguard"]).map(|p| format!("{} pid {}", p.name, p.pid));
    Some(judge(&effective, &config, service, guard.as_deref()))
}

/// `sshd -T` output: one `keyword value` per line (keywords lowercase);
/// a keyword given more than once keeps all its values, space-separated.
fn parse(text: &str) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = HashMap::new();
    for (key, value) in text.lines().filter_map(|l| l.split_once(' ')) {
        map.entry(key.to_owned()).and_modify(|v| *v = format!("{v} {value}")).or_insert_with(|| value.to_owned());
    }
    map
}

fn judge(cfg: &HashMap<String, String>, config: &str, service: &Service, guard: Option<&str>) -> Vec<Finding> {
    let get = |k: &str| cfg.get(k).map_or("", String::as_str);
    let line = |k: &str| format!("{k} {}", get(k));
    let target = service.target("sshd");
    let detail = |lines: &[String]| format!("{} (sshd -T -f {config}); {}", lines.join(", "), service.evidence());
    let mut found = Vec::new();

    // Either keyword lets a password in (keyboard-interactive through PAM),
    // unless every allowed method list also demands a key.
    let key_required = get("authenticationmethods") != "any"
        && get("authenticationmethods").split_whitespace().all(|list| list.split(',').any(|m| m == "publickey"));
    let mut password = vec![];
    if get("passwordauthentication") == "yes" {
        password.push(line("passwordauthentication"));
    }
    if get("kbdinteractiveauthentication") == "yes" && get("usepam") == "yes" {
        password.extend([line("kbdinteractiveauthentication"), line("usepam")]);
    }
    let passwords = !password.is_empty() && !key_required;
    if passwords {
        found.push(Finding::new(&PASSWORD_AUTH, service.severity(Severity::High), &target, detail(&password)));
    }

    let root = match get("permitrootlogin") {
        "yes" => Some(Severity::High),
        // With a key only: a stolen key is still root at once.
        "without-password" | "prohibit-password" | "forced-commands-only" => Some(Severity::Low),
        _ => None,
    };
    if let Some(base) = root {
        found.push(Finding::new(&ROOT_LOGIN, service.severity(base), &target, detail(&[line("permitrootlogin")])));
    }

    let weak: Vec<String> = WEAK
        .iter()
        .filter_map(|(key, is_weak)| {
            let bad: Vec<&str> = get(key).split(',').filter(|a| is_weak(a)).collect();
            (!bad.is_empty()).then(|| format!("{key} {}", bad.join(",")))
        })
        .collect();
    if !weak.is_empty() {
        found.push(Finding::new(&WEAK_CRYPTO, service.severity(Severity::Medium), &target, detail(&weak)));
    }

    if !service.verdict.limited && guard.is_none() {
        let base = if passwords { Severity::Medium } else { Severity::Low };
        let why = format!(
            "no fail2ban or sshguard running, no nftables limit on the port; {} (MaxStartups alone only caps unauthenticated connections)",
            line("maxstartups")
        );
        found.push(Finding::new(
            &NO_RATE_LIMIT,
            service.severity(base),
            &target,
            format!("{why}; {}", service.evidence()),
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::firewall::{Reach, Verdict};
    use super::super::sockets::{Listener, Proc};
    use super::*;

    /// `sshd -T` of OpenSSH 9.2 (Debian 12) for a config with `PasswordAuthentication yes`,
    /// `PermitRootLogin yes`, `Ciphers +aes128-cbc,3des-cbc`, `KexAlgorithms
    /// +diffie-hellman-group1-sha1`, `MACs +hmac-md5`, `UsePAM no`.
    const WEAK_T: &str = include_str!("testdata/sshd-T-weak.txt");
    /// `sshd -T` of Debian 12's own sshd_config.
    const DEBIAN_T: &str = include_str!("testdata/sshd-T-debian.txt");

    fn listener() -> Listener {
        Listener { addr: "0.0.0.0".parse().unwrap(), port: 22, procs: vec![Proc { pid: 7, name: "sshd".into() }] }
    }

    fn service(l: &Listener, reach: Reach, limited: bool) -> Service<'_> {
        Service { sockets: vec![l], verdict: Verdict { reach, limited, why: "test".into() } }
    }

    fn by_check(found: &[Finding]) -> Vec<(&str, Severity)> {
        found.iter().map(|f| (f.check.as_str(), f.severity)).collect()
    }

    #[test]
    fn a_weak_config_reachable_by_anyone() {
        let l = listener();
        let found = judge(&parse(WEAK_T), "/etc/ssh/weak", &service(&l, Reach::Exposed, false), None);
        assert_eq!(
            by_check(&found),
            [
                ("ssh.password_auth", Severity::High),
                ("ssh.root_login", Severity::High),
                ("ssh.weak_crypto", Severity::Medium),
                ("ssh.no_rate_limit", Severity::Medium),
            ]
        );
        assert_eq!(found[0].target, "sshd 0.0.0.0:22");
        assert_eq!(
            found[0].detail,
            "passwordauthentication yes (sshd -T -f /etc/ssh/weak); 0.0.0.0:22 (sshd pid 7); firewall: exposed (test)"
        );
        assert!(found[2]
            .detail
            .starts_with("ciphers aes128-cbc,3des-cbc, kexalgorithms diffie-hellman-group1-sha1, macs hmac-md5 "));
    }

    #[test]
    fn behind_a_firewall_each_drops_a_level_and_a_limit_counts() {
        let l = listener();
        let found = judge(&parse(WEAK_T), "c", &service(&l, Reach::Filtered, true), None);
        assert_eq!(
            by_check(&found),
            [
                ("ssh.password_auth", Severity::Medium),
                ("ssh.root_login", Severity::Medium),
                ("ssh.weak_crypto", Severity::Low)
            ]
        );
        let found = judge(&parse(WEAK_T), "c", &service(&l, Reach::Exposed, false), Some("fail2ban-server pid 9"));
        assert!(!found.iter().any(|f| f.check == "ssh.no_rate_limit"));
    }

    #[test]
    fn debians_defaults_still_take_passwords_and_root_keys() {
        let l = listener();
        let found = judge(&parse(DEBIAN_T), "c", &service(&l, Reach::Exposed, true), None);
        assert_eq!(by_check(&found), [("ssh.password_auth", Severity::High), ("ssh.root_login", Severity::Low)]);
        assert!(found[1].detail.starts_with("permitrootlogin without-password "));
    }

    #[test]
    fn a_process_only_named_sshd_is_not_read() {
        let me = Proc { pid: std::process::id(), name: "sshd".into() };
        let l = Listener { addr: "0.0.0.0".parse().unwrap(), port: 2222, procs: vec![me] };
        let found = check(&service(&l, Reach::Exposed, false)).expect("it calls itself sshd");
        let got: Vec<(&str, Severity, &str)> =
            found.iter().map(|f| (f.check.as_str(), f.severity, f.target.as_str())).collect();
        assert_eq!(
            got,
            [
                ("exposure.service", Severity::Info, "sshd? 0.0.0.0:2222"),
                ("exposure.unchecked", Severity::Low, "sshd? 0.0.0.0:2222")
            ]
        );
        assert!(found[1].detail.starts_with("not /usr/sbin/sshd running as root, so its configuration was not read;"));
    }

    #[test]
    fn keys_demanded_for_every_login_mean_no_password_login() {
        let l = listener();
        let t = format!("{DEBIAN_T}authenticationmethods publickey,password publickey\n")
            .replace("authenticationmethods any\n", "");
        let found = judge(&parse(&t), "c", &service(&l, Reach::Exposed, true), None);
        assert!(!found.iter().any(|f| f.check == "ssh.password_auth"), "{found:?}");
    }
}
