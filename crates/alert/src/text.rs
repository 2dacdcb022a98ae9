//! The words of an event for people, in Japanese or English: a title and a
//! few lines. E-mail, chat and the journal show these; machines read the
//! structured forms (RFC 5424 structured data, CEF extensions, ECS fields).

use mamori_report::Lang;
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Cause, What};

/// The language of an output's words, as the config spells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Ja,
    #[default]
    En,
}

impl From<Language> for Lang {
    fn from(l: Language) -> Lang {
        match l {
            Language::Ja => Lang::Ja,
            Language::En => Lang::En,
        }
    }
}

/// An event in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub title: String,
    pub lines: Vec<String>,
}

/// Most files named in a message; the rest are counted.
const FILES_SHOWN: usize = 10;

pub fn text(alert: &Alert, lang: Language) -> Text {
    let ja = lang == Language::Ja;
    let host = &alert.host;
    match &alert.what {
        What::Incident { incident, restore_command } => {
            let exe = &incident.actor.exe;
            let pid = incident.actor.pid;
            let mut lines = Vec::new();
            let action = incident.action.as_str();
            if let Some(cut) = &incident.client {
                let c = &cut.client;
                lines.push(if ja {
                    format!("SMB クライアント {} (ユーザー {}) を遮断しました。", c.address, c.user)
                } else {
                    format!("SMB client {} (user {}) was cut off.", c.address, c.user)
                });
            }
            lines.push(if ja {
                format!("停止したプログラム: {exe} (pid {pid}, {} プロセス, {action})", incident.procs.len().max(1))
            } else {
                format!("Stopped: {exe} (pid {pid}, {} process(es), {action})", incident.procs.len().max(1))
            });
            let n = incident.files.len();
            lines.push(if ja {
                format!("影響を受けたファイル: {n} 件")
            } else {
                format!("Files touched: {n}")
            });
            for f in incident.files.iter().take(FILES_SHOWN) {
                lines.push(format!("  {} {}", f.op.as_str(), f.path));
            }
            if n > FILES_SHOWN {
                lines.push(if ja {
                    format!("  ほか {} 件", n - FILES_SHOWN)
                } else {
                    format!("  and {} more", n - FILES_SHOWN)
                });
            }
            for r in incident.reasons.iter().take(5) {
                lines.push(format!("- {}", mamori_report::reason(r, lang.into())));
            }
            lines.push(if ja {
                format!("ファイルを元に戻すには: {restore_command}")
            } else {
                format!("To put the files back: {restore_command}")
            });
            Text {
                title: if ja {
                    format!("[mamori] {host}: ランサムウェアを検知し停止しました ({})", incident.id)
                } else {
                    format!("[mamori] {host}: ransomware detected and stopped ({})", incident.id)
                },
                lines,
            }
        }
        What::RestoreFinished { incident_id, restored, failed } => Text {
            title: if ja {
                format!("[mamori] {host}: {incident_id} の復元が終わりました")
            } else {
                format!("[mamori] {host}: restore of {incident_id} finished")
            },
            lines: vec![if ja {
                format!("復元: {restored} 件、失敗: {failed} 件")
            } else {
                format!("Restored: {restored}, failed: {failed}")
            }],
        },
        What::Degraded { cause, detail } => {
            let what = match (cause, ja) {
                (Cause::AgentStopping, true) => "エージェントが停止します。再開するまで保護されません",
                (Cause::AgentStopping, false) => "the agent is stopping; nothing is protected until it runs again",
                (Cause::VaultSkipped, true) => "変更前のコピーを保存できませんでした",
                (Cause::VaultSkipped, false) => "a copy taken before a change could not be kept",
                (Cause::QueueOverflow, true) => "カーネルのイベントキューがあふれ、一部の操作を見逃しました",
                (Cause::QueueOverflow, false) => {
                    "the kernel's event queue overflowed; some file operations were missed"
                }
                (Cause::FolderGone, true) => "保護しているフォルダーがなくなりました",
                (Cause::FolderGone, false) => "a protected folder is gone",
            };
            Text {
                title: if ja {
                    format!("[mamori] {host}: 保護が弱まっています: {what}")
                } else {
                    format!("[mamori] {host}: protection degraded: {what}")
                },
                lines: vec![detail.clone()],
            }
        }
        What::Finding(f) => Text {
            title: if ja {
                format!("[mamori] {host}: 監査の指摘 ({}): {}", f.severity.as_str(), f.check)
            } else {
                format!("[mamori] {host}: audit finding ({}): {}", f.severity.as_str(), f.check)
            },
            lines: vec![
                format!("{}: {}", if ja { "対象" } else { "Target" }, f.target),
                f.detail.clone(),
                format!("{}: {}", if ja { "対処" } else { "Fix" }, f.fix),
            ],
        },
        What::Test => Text {
            title: if ja {
                format!("[mamori] {host}: テスト通知")
            } else {
                format!("[mamori] {host}: test alert")
            },
            lines: vec![if ja {
                "この通知が届いていれば、この出力は動作しています。".to_owned()
            } else {
                "If you read this, this output works.".to_owned()
            }],
        },
    }
}
