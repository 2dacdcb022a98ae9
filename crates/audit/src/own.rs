//! mamori itself: whether the protection the rest of the audit assumes is
//! really on. The binary gathers the [`OwnFacts`] (it knows the agent's
//! state directory and config); judging them is pure.

use std::path::{Path, PathBuf};

use crate::{CheckText, Finding, Severity, Words};

/// What the binary found out about mamori on this host.
#[derive(Debug, Clone)]
pub struct OwnFacts {
    /// The agent runs (its state directory's lock is held).
    pub agent_running: bool,
    /// The folders it protects (the running agent's, else the config's).
    pub protected: Vec<PathBuf>,
    /// Folders that hold data and exist on this host.
    pub data_folders: Vec<PathBuf>,
    /// The vault is on.
    pub vault_on: bool,
    /// Before-images the running agent could not keep (space or budget).
    pub vault_skipped: u64,
    /// Decoys are on in the config.
    pub decoys_on: bool,
    /// Decoy files that should be in a protected folder and are not.
    pub decoys_missing: Vec<PathBuf>,
    /// Whether the kernel refuses deletes in the vault (the BPF lock), and if not why.
    pub vault_lock: Result<(), String>,
    /// Alert outputs configured.
    pub alert_outputs: usize,
}

pub const AGENT_NOT_RUNNING: CheckText = CheckText {
    id: "mamori.agent_not_running",
    en: Words {
        title: "The mamori agent is not running",
        why: "Without the agent, files are encrypted without being seen, stopped or kept for restore.",
        fix: "Start it: systemctl enable --now mamori (then check with `mamori status`).",
    },
    ja: Words {
        title: "mamori のエージェントが動いていない",
        why: "エージェントが動いていなければ、暗号化は検知も停止もされず、復元用の元ファイルも残らない。",
        fix: "起動する: systemctl enable --now mamori(確認は `mamori status`)。",
    },
};

pub const UNPROTECTED_DATA: CheckText = CheckText {
    id: "mamori.unprotected_folder",
    en: Words {
        title: "A data folder is not protected",
        why: "Ransomware encrypts whatever it can reach; a folder mamori does not watch is neither defended nor restorable.",
        fix: "Add \"{target}\" to `protect` under [agent] in /etc/mamori/mamori.toml and restart the agent.",
    },
    ja: Words {
        title: "データのあるフォルダが保護されていない",
        why: "ランサムウェアは届く所をすべて暗号化する。mamori が見ていないフォルダは守られず、復元もできない。",
        fix: "/etc/mamori/mamori.toml の [agent] の `protect` に \"{target}\" を加え、エージェントを再起動する。",
    },
};

pub const VAULT_OFF: CheckText = CheckText {
    id: "mamori.vault_off",
    en: Words {
        title: "The vault is off",
        why: "Without before-images, files changed before the attack was stopped cannot be restored.",
        fix: "Set `enabled = true` under [vault] in the config and restart the agent.",
    },
    ja: Words {
        title: "保管庫(vault)が無効",
        why: "変更前のコピーがなければ、停止までに書き換えられたファイルを復元できない。",
        fix: "設定の [vault] で `enabled = true` とし、エージェントを再起動する。",
    },
};

pub const VAULT_SKIPPED: CheckText = CheckText {
    id: "mamori.vault_space",
    en: Words {
        title: "The vault could not keep every before-image",
        why: "A file whose before-image was not kept cannot be restored after an attack.",
        fix: "Free disk space or raise `budget_mib` / `per_user_budget_percent` under [vault]; see `mamori status`.",
    },
    ja: Words {
        title: "保管庫が変更前のコピーを残せなかったことがある",
        why: "コピーが残っていないファイルは、攻撃後に復元できない。",
        fix:
            "ディスクを空けるか、[vault] の `budget_mib` / `per_user_budget_percent` を上げる(`mamori status` で確認)。",
    },
};

pub const DECOYS_OFF: CheckText = CheckText {
    id: "mamori.decoys_off",
    en: Words {
        title: "Decoy files are off",
        why: "Decoys catch an encryptor at its first file, before its behaviour alone is conclusive.",
        fix: "Set `enabled = true` under [canary] in the config and restart the agent.",
    },
    ja: Words {
        title: "おとりファイルが無効",
        why: "おとりファイルは、振る舞いだけで判断できる前の最初の1ファイルで暗号化を捕まえる。",
        fix: "設定の [canary] で `enabled = true` とし、エージェントを再起動する。",
    },
};

pub const DECOYS_MISSING: CheckText = CheckText {
    id: "mamori.decoys_missing",
    en: Words {
        title: "A decoy file is missing",
        why: "A missing decoy cannot catch an encryptor early.",
        fix: "Restart the agent, which puts its decoys back: systemctl restart mamori.",
    },
    ja: Words {
        title: "おとりファイルがない",
        why: "おとりファイルがなければ、暗号化を早く捕まえられない。",
        fix: "エージェントを再起動すると置き直される: systemctl restart mamori。",
    },
};

pub const NO_VAULT_LOCK: CheckText = CheckText {
    id: "mamori.vault_lock",
    en: Words {
        title: "The kernel does not refuse deletes in the vault",
        why: "An attacker with root can delete before-images; mamori then only sees it and stops the deleter.",
        fix: "Boot with the BPF LSM enabled (lsm=...,bpf on the kernel command line) where the platform allows it.",
    },
    ja: Words {
        title: "保管庫の削除をカーネルが拒否しない",
        why: "root を取った攻撃者はコピーを削除できる。mamori はそれを検知して止めるだけになる。",
        fix: "可能な環境では BPF LSM を有効にして起動する(カーネル引数 lsm=...,bpf)。",
    },
};

pub const NO_ALERTS: CheckText = CheckText {
    id: "mamori.no_alerts",
    en: Words {
        title: "No alert output is configured",
        why: "An attack stopped at night waits, unseen, until someone happens to run `mamori status`.",
        fix: "Configure an output under [alerts] (e-mail, syslog, webhook) and try it with `mamori alert test`.",
    },
    ja: Words {
        title: "通知先が設定されていない",
        why: "夜間に止めた攻撃も、誰かが `mamori status` を見るまで気付かれない。",
        fix: "[alerts] に通知先(メール、syslog、webhook)を設定し、`mamori alert test` で確かめる。",
    },
};

pub const CHECKS: &[CheckText] = &[
    AGENT_NOT_RUNNING,
    UNPROTECTED_DATA,
    VAULT_OFF,
    VAULT_SKIPPED,
    DECOYS_OFF,
    DECOYS_MISSING,
    NO_VAULT_LOCK,
    NO_ALERTS,
];

/// The findings about mamori itself.
pub fn own(facts: &OwnFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    if !facts.agent_running {
        let detail = match facts.protected.len() {
            0 => "no agent holds the state directory, and no folder is configured to protect".to_owned(),
            n => format!("no agent holds the state directory; {n} folder(s) configured"),
        };
        out.push(Finding::new(&AGENT_NOT_RUNNING, Severity::High, "mamori", detail));
    }
    for folder in &facts.data_folders {
        if !facts.protected.iter().any(|p| folder.starts_with(p)) {
            let detail = format!("{} holds data and is under none of: {}", folder.display(), list(&facts.protected));
            out.push(Finding::new(&UNPROTECTED_DATA, Severity::High, folder.display().to_string(), detail));
        }
    }
    if !facts.vault_on {
        out.push(Finding::new(&VAULT_OFF, Severity::High, "mamori vault", "[vault] enabled = false"));
    } else if facts.vault_skipped > 0 {
        let detail = format!("{} before-image(s) not kept since the agent started", facts.vault_skipped);
        out.push(Finding::new(&VAULT_SKIPPED, Severity::Medium, "mamori vault", detail));
    }
    if !facts.decoys_on {
        out.push(Finding::new(&DECOYS_OFF, Severity::Low, "mamori decoys", "[canary] enabled = false"));
    }
    for decoy in &facts.decoys_missing {
        out.push(Finding::new(&DECOYS_MISSING, Severity::Medium, decoy.display().to_string(), "not found"));
    }
    if let (true, Err(why)) = (facts.vault_on, &facts.vault_lock) {
        out.push(Finding::new(&NO_VAULT_LOCK, Severity::Info, "mamori vault", why.clone()));
    }
    if facts.alert_outputs == 0 {
        out.push(Finding::new(&NO_ALERTS, Severity::Medium, "mamori alerts", "no output under [alerts]"));
    }
    out
}

fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(no protected folder)".to_owned();
    }
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Whether `folder` is worth protecting: it exists and has something in it.
pub fn holds_data(folder: &Path) -> bool {
    std::fs::read_dir(folder).is_ok_and(|mut entries| entries.next().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> OwnFacts {
        OwnFacts {
            agent_running: true,
            protected: vec!["/srv".into(), "/home".into()],
            data_folders: vec!["/srv/share".into(), "/home".into()],
            vault_on: true,
            vault_skipped: 0,
            decoys_on: true,
            decoys_missing: Vec::new(),
            vault_lock: Ok(()),
            alert_outputs: 1,
        }
    }

    fn ids(facts: &OwnFacts) -> Vec<(String, Severity)> {
        own(facts).into_iter().map(|f| (f.check, f.severity)).collect()
    }

    #[test]
    fn a_healthy_setup_has_no_finding() {
        assert!(own(&healthy()).is_empty());
    }

    #[test]
    fn each_gap_is_found_with_its_severity() {
        let mut f = healthy();
        f.agent_running = false;
        f.protected = vec!["/srv".into()];
        f.vault_skipped = 3;
        f.decoys_missing = vec!["/srv/.0-decoy.docx".into()];
        f.vault_lock = Err("no BPF LSM".into());
        f.alert_outputs = 0;
        assert_eq!(
            ids(&f),
            [
                ("mamori.agent_not_running".into(), Severity::High),
                ("mamori.unprotected_folder".into(), Severity::High),
                ("mamori.vault_space".into(), Severity::Medium),
                ("mamori.decoys_missing".into(), Severity::Medium),
                ("mamori.vault_lock".into(), Severity::Info),
                ("mamori.no_alerts".into(), Severity::Medium),
            ]
        );
        let unprotected = own(&f).into_iter().find(|x| x.check == "mamori.unprotected_folder").unwrap();
        assert_eq!(unprotected.target, "/home");
        assert!(unprotected.fix.contains("\"/home\""), "{}", unprotected.fix);
    }

    #[test]
    fn a_folder_is_covered_by_a_parent_but_not_by_a_name_prefix() {
        let mut f = healthy();
        f.protected = vec!["/srv".into()];
        f.data_folders = vec!["/srv/share".into(), "/srvdata".into()];
        let found = own(&f);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].target, "/srvdata");
    }
}
