//! The agent's configuration file: which folders, what to do on a verdict,
//! decoys, and the engine's weights. Every key has a default; unknown keys
//! and bad values are refused with the key named.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mamori_engine::config::{Detect, Weights};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub agent: AgentSection,
    pub response: ResponseSection,
    pub canary: CanarySection,
    pub vault: VaultSection,
    pub evidence: EvidenceSection,
    pub isolate: IsolateSection,
    pub clients: ClientsSection,
    pub alerts: mamori_alert::AlertsConfig,
    pub audit: mamori_audit::AuditConfig,
    pub detect: Detect,
    pub weights: Weights,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSection {
    /// Folders to protect, in addition to any `--protect` on the command line.
    pub protect: Vec<PathBuf>,
    /// Where incidents and the agent's status live.
    pub state: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// SIGSTOP the whole actor: nothing more happens, and its memory (keys!)
    /// stays for the responder.
    #[default]
    Suspend,
    /// SIGSTOP, then SIGKILL.
    Kill,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResponseSection {
    pub policy: Policy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CanarySection {
    /// Place decoy files in each protected folder.
    pub enabled: bool,
    /// Their names. Hidden (leading dot) so people do not trip over them,
    /// sorted early so a tree walk meets them first, and of a kind (PDF) that
    /// ransomware wants and that bulk text edits (`sed -i` over `*.txt`) and
    /// picture tools leave alone.
    pub names: Vec<String>,
}

impl Default for CanarySection {
    fn default() -> Self {
        CanarySection { enabled: true, names: vec![".0-contracts.pdf".into(), ".0-invoices.pdf".into()] }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaultSection {
    /// Keep a copy of each protected file before an untrusted process changes it.
    pub enabled: bool,
    /// How long copies are kept when no incident needs them.
    pub retention_hours: u64,
    /// Most space the copies may take, per vault.
    pub budget_mib: u64,
    /// Most of that budget (percent) the files of one owner may take, so
    /// one user rewriting its files cannot leave everyone else's uncopied.
    pub per_user_budget_percent: u64,
    /// Free space that copying never goes below.
    pub free_floor_mib: u64,
    /// Files at least this large (MiB) opened to write are kept by range:
    /// only the blocks about to be overwritten, not the whole file.
    pub range_copy_from_mib: u64,
    /// Most files opened only to read that are held open (in memory, not
    /// on disk) so a delete or a rename over them loses nothing.
    pub hold_files: usize,
    /// How long such a file is held (minutes).
    pub hold_minutes: u64,
}

impl Default for VaultSection {
    fn default() -> Self {
        VaultSection {
            enabled: true,
            retention_hours: 72,
            budget_mib: 20 * 1024,
            per_user_budget_percent: 25,
            free_floor_mib: 1024,
            range_copy_from_mib: 64,
            hold_files: 16_384,
            hold_minutes: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceSection {
    /// Write a sealed evidence bundle at each incident (under STATE/evidence/ID).
    pub enabled: bool,
    /// Also copy the suspended processes' writable memory (keys may still be
    /// there, but so may users' secrets): off unless asked for.
    pub memory_image: bool,
    /// Most memory copied per incident (MiB).
    pub memory_cap_mib: u64,
}

impl Default for EvidenceSection {
    fn default() -> Self {
        EvidenceSection { enabled: true, memory_image: false, memory_cap_mib: 1024 }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IsolateSection {
    /// Addresses or networks that stay reachable when the host is isolated
    /// (management hosts, the backup server); loopback always does.
    pub allow: Vec<String>,
    /// Cut the host off the network automatically at an incident.
    pub on_incident: bool,
}

/// What is done to a remote client (an SMB client of Samba on this host)
/// judged to be the attacker, beyond stopping its server processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientsSection {
    /// How long its address stays blocked (minutes); 0 keeps it blocked
    /// until `mamori unblock ADDR`.
    pub block_minutes: u64,
    /// Also disable its account, since a client with saved credentials
    /// reconnects from another address.
    pub disable_account: bool,
    /// The command that disables it, `{user}` replaced by the account name
    /// (and `{config}` by the server's smb.conf); empty for Samba's own
    /// `smbpasswd -c CONFIG -d USER`.
    pub disable_command: Vec<String>,
}

impl Default for ClientsSection {
    fn default() -> Self {
        ClientsSection { block_minutes: 24 * 60, disable_account: false, disable_command: Vec::new() }
    }
}

pub const DEFAULT_STATE: &str = "/var/lib/mamori";

impl Settings {
    pub fn load(path: Option<&Path>) -> Result<Settings> {
        let Some(path) = path else { return Ok(Settings::default()) };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        Settings::parse(&text).with_context(|| format!("config file {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Settings> {
        let settings: Settings = toml::from_str(text).map_err(|e| anyhow::anyhow!("invalid config: {e}"))?;
        settings.engine().validate()?;
        if let Err(e) = mamori_isolate::Allow::parse(&settings.isolate.allow) {
            bail!("invalid config: `isolate.allow`: {e}");
        }
        if settings.vault.retention_hours == 0 {
            bail!("invalid config: `vault.retention_hours` must be at least 1");
        }
        if !(1..=100).contains(&settings.vault.per_user_budget_percent) {
            bail!("invalid config: `vault.per_user_budget_percent` must be from 1 to 100");
        }
        for name in &settings.canary.names {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                bail!("invalid config: `canary.names` entries must be plain file names (got {name:?})");
            }
        }
        Ok(settings)
    }

    pub fn engine(&self) -> mamori_engine::Config {
        mamori_engine::Config { detect: self.detect.clone(), weights: self.weights.clone() }
    }

    pub fn state_dir(&self, flag: Option<&Path>) -> PathBuf {
        flag.map(Path::to_path_buf).or_else(|| self.agent.state.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_STATE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_repository_needs_its_password_file() {
        let err = Settings::parse("[[audit.restic]]\nrepository = \"/srv/backup\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("password_file"), "{err:#}");
        let ok =
            Settings::parse("[[audit.restic]]\nrepository = \"/srv/backup\"\npassword_file = \"/etc/p\"\n").unwrap();
        assert_eq!(ok.audit.restic[0].rpo_hours, 24, "the default objective");
    }

    #[test]
    fn the_example_config_parses_and_matches_the_defaults() {
        let text = include_str!("../../../mamori.example.toml");
        let parsed = Settings::parse(text).unwrap();
        let default = Settings::default();
        assert_eq!(parsed.detect, default.detect);
        assert_eq!(parsed.weights, default.weights);
        assert_eq!(parsed.response.policy, Policy::Suspend);
        assert_eq!(parsed.canary.names, default.canary.names);
        assert_eq!(parsed.vault.budget_mib, default.vault.budget_mib);
        assert_eq!(parsed.vault.per_user_budget_percent, default.vault.per_user_budget_percent);
        assert_eq!(parsed.vault.retention_hours, default.vault.retention_hours);
        assert_eq!(parsed.vault.range_copy_from_mib, default.vault.range_copy_from_mib);
        assert_eq!(parsed.audit.data_folders, default.audit.data_folders);
        assert_eq!(parsed.audit.check_subsets, default.audit.check_subsets);
        assert_eq!(parsed.audit.check_minutes, default.audit.check_minutes);
        assert_eq!(parsed.audit.drill_files, default.audit.drill_files);
        assert_eq!(parsed.audit.drill_mib, default.audit.drill_mib);
        assert_eq!(parsed.evidence.enabled, default.evidence.enabled);
        assert_eq!(parsed.evidence.memory_image, default.evidence.memory_image);
        assert_eq!(parsed.isolate.allow, default.isolate.allow);
        assert_eq!(parsed.isolate.on_incident, default.isolate.on_incident);
        assert_eq!(parsed.clients.block_minutes, default.clients.block_minutes);
        assert_eq!(parsed.clients.disable_account, default.clients.disable_account);
        assert_eq!(parsed.clients.disable_command, default.clients.disable_command);
        assert_eq!(parsed.alerts.lang, default.alerts.lang);
        assert_eq!(parsed.alerts.retry_max_seconds, default.alerts.retry_max_seconds);
        assert_eq!(parsed.alerts.queue_max_events, default.alerts.queue_max_events);
        assert!(mamori_alert::outputs(&parsed.alerts).unwrap().is_empty(), "the example turns on no output");
    }

    #[test]
    fn the_smallest_alert_tables_make_their_outputs() {
        let text =
            "[alerts.syslog]\nurl = \"udp://127.0.0.1:5514\"\n[alerts.webhook]\nurl = \"http://127.0.0.1:8080/hook\"\n";
        let settings = Settings::parse(text).unwrap();
        let outputs = mamori_alert::outputs(&settings.alerts).unwrap();
        let made: Vec<(&str, String)> = outputs.iter().map(|o| (o.name(), o.target())).collect();
        assert_eq!(made.len(), 2, "{made:?}");
        assert_eq!(made[0].0, "syslog");
        assert!(made[0].1.contains("udp://127.0.0.1:5514"), "{made:?}");
        assert_eq!(made[1].0, "webhook");
        assert!(made[1].1.contains("127.0.0.1:8080"), "{made:?}");
        let err = format!(
            "{:#}",
            Settings::parse("[alerts.syslog]\nurl = \"udp://127.0.0.1:5514\"\nport = 1\n").unwrap_err()
        );
        assert!(err.contains("port"), "{err}");
    }

    #[test]
    fn a_bad_isolation_allow_list_is_refused() {
        let err = format!("{:#}", Settings::parse("[isolate]\nallow = [\"10.0.0.0/33\"]\n").unwrap_err());
        assert!(err.contains("isolate.allow"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = format!("{:#}", Settings::parse("[response]\npolicy = \"explode\"\n").unwrap_err());
        assert!(err.contains("explode") && err.contains("policy"), "{err}");
        let err = format!("{:#}", Settings::parse("[detect]\nthreshold = 0\n").unwrap_err());
        assert!(err.contains("detect.threshold"), "{err}");
        let err = format!("{:#}", Settings::parse("[canary]\nnames = [\"a/b\"]\n").unwrap_err());
        assert!(err.contains("canary.names"), "{err}");
        let err = format!("{:#}", Settings::parse("[vault]\nper_user_budget_percent = 0\n").unwrap_err());
        assert!(err.contains("vault.per_user_budget_percent"), "{err}");
        let err = format!("{:#}", Settings::parse("[vault]\nper_user_budget_percent = 101\n").unwrap_err());
        assert!(err.contains("vault.per_user_budget_percent"), "{err}");
        let err = format!("{:#}", Settings::parse("[agent]\nprotekt = []\n").unwrap_err());
        assert!(err.contains("protekt"), "{err}");
    }
}
