//! `mamori audit`: what this host exposes to the attacks ransomware starts
//! with, whether its backups would survive and restore, and whether mamori
//! itself is on (see `mamori-audit` for the checks). This module gathers
//! mamori's own facts, runs the checks, prints the JSON or the report, and
//! tells the alert outputs what is new since the last audit.
//!
//! Exit codes: 0 nothing above information, 3 low, 4 medium, 5 high (2 the
//! audit could not run, as for every command): a timer or a script can act
//! on the worst finding without reading the output.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use mamori_audit::own::{holds_data, OwnFacts};
use mamori_audit::{Audit, Finding, Severity};
use tracing::warn;

use crate::reporting::{LangArg, ReportFormat};
use crate::settings::Settings;
use crate::state::StateDir;

#[derive(clap::Args)]
#[command(after_help = "Exit status: 0 nothing above information, 3 low, 4 medium, 5 high (the worst finding); \
2 the audit could not run. A full run tells the alert outputs the findings above information that are new \
since the last full run.")]
pub struct AuditArgs {
    /// Configuration file (TOML): `[[audit.restic]]`, `[[audit.borg]]` and the agent's settings.
    /// Default: /etc/mamori/mamori.toml where it exists (the package's), else the defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State directory, as given to `mamori run`. Default: the config's, else /var/lib/mamori.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Print the findings as JSON: {"host", "time", "findings": [{"check", "severity", "target",
    /// "detail", "why", "fix"}], "summary": {"high", "medium", "low", "info", "worst"}}.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// The report's format: plain text for the terminal unless asked otherwise.
    #[arg(long, value_enum)]
    pub format: Option<ReportFormat>,
    /// The report's language.
    #[arg(long, value_enum, default_value = "ja")]
    pub lang: LangArg,
    /// Write to this file instead of the terminal.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Run only these parts (repeatable). A partial run tells no one and is not remembered.
    #[arg(long, value_enum)]
    pub only: Vec<Part>,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Listening services, their configs, the firewall, updates.
    Exposure,
    /// The backup repositories named under [audit].
    Backups,
    /// mamori itself: agent, protected folders, vault, decoys, alerts.
    Mamori,
}

/// The Debian package's config.
const PACKAGE_CONFIG: &str = "/etc/mamori/mamori.toml";

/// The last full audit's findings, for telling only what is new.
const LAST: &str = "audit/last.json";
/// The most of it read back: a thousand findings take well under 2 MiB.
const LAST_MAX: u64 = 16 << 20;

pub fn run(args: AuditArgs) -> Result<ExitCode> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        anyhow::bail!(
            "mamori audit reads every process's sockets, the services' configs and the backups' password files: \
             run it as root (sudo mamori audit)"
        );
    }
    // Run by hand after installing the package, it audits what the package configured.
    let config = args.config.clone().or_else(|| Some(PathBuf::from(PACKAGE_CONFIG)).filter(|p| p.exists()));
    let settings = Settings::load(config.as_deref())?;
    let state = settings.state_dir(args.state.as_deref());
    let runs = |part| args.only.is_empty() || args.only.contains(&part);
    // The backups' check rotation and the last full audit are kept there:
    // root's alone, as the agent makes it, before anything is read or written.
    if runs(Part::Backups) {
        StateDir::at(Some(state.clone())).make_private()?;
    }
    let status = running_agent(&state);
    let protected: Vec<PathBuf> = match &status {
        Some(st) => st.protected.iter().map(PathBuf::from).collect(),
        None => settings.agent.protect.clone(),
    };
    let mut findings = Vec::new();
    if runs(Part::Exposure) {
        let scope = mamori_audit::exposure::Scope { protected: protected.clone() };
        findings.extend(mamori_audit::exposure::exposure(&scope));
    }
    if runs(Part::Backups) {
        findings.extend(mamori_audit::backups::backups(&settings.audit, &state.join("audit")));
    }
    // Its facts (the vault lock started and dropped among them) only when asked for.
    if runs(Part::Mamori) {
        findings.extend(mamori_audit::own::own(&own_facts(&settings, status.as_ref(), protected)));
    }
    let audit = Audit::new(mamori_report::hostname(), jiff::Timestamp::now(), findings);
    let text = if args.json {
        serde_json::to_string_pretty(&audit)? + "\n"
    } else {
        mamori_report::render_audit(&audit, args.lang.into(), args.format.unwrap_or(ReportFormat::Text).into())
    };
    let mut out = crate::reporting::output(args.out.as_deref())?;
    out.write_all(text.as_bytes())?;
    out.flush()?;
    if args.only.is_empty() {
        tell_new(&settings, &state, &audit);
    }
    Ok(ExitCode::from(exit_code(audit.summary.worst)))
}

fn exit_code(worst: Option<Severity>) -> u8 {
    match worst {
        None | Some(Severity::Info) => 0,
        Some(Severity::Low) => 3,
        Some(Severity::Medium) => 4,
        Some(Severity::High) => 5,
    }
}

/// The agent's own account of itself, if one runs on `state`.
fn running_agent(state: &Path) -> Option<mamori_store::AgentStatus> {
    match mamori_store::agent_status(state) {
        Ok(status) => status.filter(|s| s.active),
        Err(e) => {
            warn!("cannot read the agent's status in {}: {e}", state.display());
            None
        }
    }
}

/// mamori as it runs here: the running agent's account (`status`) and the
/// folders it protects, else the config's.
fn own_facts(settings: &Settings, status: Option<&mamori_store::AgentStatus>, protected: Vec<PathBuf>) -> OwnFacts {
    let decoys_missing = match (status, settings.canary.enabled) {
        (Some(_), true) => protected
            .iter()
            .flat_map(|folder| settings.canary.names.iter().map(move |name| folder.join(name)))
            .filter(|decoy| decoy.symlink_metadata().is_err())
            .collect(),
        _ => Vec::new(),
    };
    let vault_skipped =
        status.and_then(|s| s.vault.as_ref()).map_or(0, |v| v.skipped_budget + v.skipped_user_budget + v.skipped_floor);
    OwnFacts {
        agent_running: status.is_some(),
        data_folders: settings.audit.data_folders.iter().filter(|f| holds_data(f)).cloned().collect(),
        protected,
        vault_on: settings.vault.enabled,
        vault_skipped,
        decoys_on: settings.canary.enabled,
        decoys_missing,
        vault_lock: if settings.vault.enabled { crate::check::kernel::vault_lock_probe() } else { Ok(()) },
        alert_outputs: mamori_alert::outputs(&settings.alerts).map_or(0, |o| o.len()),
    }
}

/// Tells the alert outputs each finding above information that the last
/// full audit did not have, then remembers this one. A lost or unreadable
/// record only makes every finding new once.
fn tell_new(settings: &Settings, state: &Path, audit: &Audit) {
    let path = state.join(LAST);
    let before: Vec<Finding> = mamori_audit::read_private(&path, LAST_MAX)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Audit>(&bytes).ok())
        .map(|a| a.findings)
        .unwrap_or_default();
    let known: HashSet<(&str, &str)> = before.iter().map(|f| (f.check.as_str(), f.target.as_str())).collect();
    let new: Vec<mamori_alert::What> = audit
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info && !known.contains(&(f.check.as_str(), f.target.as_str())))
        .map(|f| mamori_alert::What::Finding(alert_finding(f)))
        .collect();
    if let Err(e) = crate::alerting::tell(&settings.alerts, state, new) {
        warn!("cannot tell the alert outputs the new findings: {e:#}");
    }
    if let Err(e) = remember(&path, audit) {
        warn!("{e:#}");
    }
}

fn alert_finding(f: &Finding) -> mamori_alert::Finding {
    let severity = match f.severity {
        Severity::Info => mamori_alert::Severity::Info,
        Severity::Low => mamori_alert::Severity::Low,
        Severity::Medium => mamori_alert::Severity::Medium,
        Severity::High => mamori_alert::Severity::High,
    };
    mamori_alert::Finding {
        check: f.check.clone(),
        severity,
        target: f.target.clone(),
        detail: f.detail.clone(),
        fix: f.fix.clone(),
    }
}

/// Saves the audit, root's alone (it names weaknesses), replacing the last.
fn remember(path: &Path, audit: &Audit) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(audit).expect("an audit always serialises");
    mamori_audit::save_private(path, &bytes).with_context(|| format!("cannot save the audit in {}", path.display()))
}
