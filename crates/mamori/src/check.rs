//! `mamori check`: whether protection can run on this machine with this
//! configuration, and how much of it. Everything is tried for real (the
//! config parsed, each folder looked at and marked with fanotify, a cgroup
//! made and removed, the vault lock started and dropped, each alert output
//! probed) and nothing is left behind.
//!
//! Each finding is `ok` (protection on), `warn` (protection runs without
//! it), or `fail` (the agent cannot start, or would protect nothing
//! useful). An alert output that does not answer is a warning, not a
//! failure: the agent starts, keeps events in its queue on disk and sends
//! them once the receiver is back, whereas an output the agent cannot even
//! build (a bad URL) fails, since the agent refuses to start with it.
//!
//! Exit codes: 0 protection can run (warnings allowed), 1 nothing to
//! protect (no folder named), 2 a failure. `--condition` is the systemd
//! unit's ExecCondition (a contract with the packaging): 0 the config is
//! valid and names a folder, 1 it names none (the unit is skipped, not
//! failed), 255 it is invalid or unreadable (the unit fails, the error on
//! stderr goes to the journal).

mod folders;
pub mod kernel;
mod outputs;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::settings::Settings;
use crate::ui::escaped;

#[derive(clap::Args)]
#[command(after_help = "Exit status: 0 protection can run (warnings allowed), 1 nothing to protect (no folder \
named), 2 something must be fixed first. An alert output that does not answer is a warning: the agent \
keeps its events on disk until it does.")]
pub struct CheckArgs {
    /// Configuration file (TOML), as given to `mamori run`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State directory, as given to `mamori run`. Default: the config's, else /var/lib/mamori.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// A folder to protect besides the config's (repeatable), as given to `mamori run`.
    #[arg(long, value_name = "DIR")]
    pub protect: Vec<PathBuf>,
    /// Print JSON: {"ok": bool, "checks": [{"check", "status": "ok|warn|fail", "detail", "fix"}]}.
    #[arg(long)]
    pub json: bool,
    /// For a service's ExecCondition: print nothing on stdout; exit 0 when the config is valid and
    /// names a folder, 1 when it names none, 255 when it is invalid (the error on stderr).
    #[arg(long, conflicts_with_all = ["json", "quiet"])]
    pub condition: bool,
    /// Print only what is missing or failing.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One finding: what was checked, how it went, and what to do about it.
#[derive(Debug, Serialize)]
pub struct Check {
    check: &'static str,
    status: Status,
    detail: String,
    fix: Option<String>,
}

impl Check {
    pub fn ok(check: &'static str, detail: impl Into<String>) -> Check {
        Check { check, status: Status::Ok, detail: detail.into(), fix: None }
    }

    pub fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { check, status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) }
    }

    pub fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { check, status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) }
    }
}

const NOTHING: &str = "folders";
const EXIT_CONDITION_INVALID: u8 = 255;

pub fn run(args: CheckArgs) -> Result<ExitCode> {
    if args.condition {
        return Ok(condition(&args));
    }
    let checks = assess(&args);
    let code = exit_code(&checks);
    if args.json {
        #[derive(Serialize)]
        struct Report<'a> {
            ok: bool,
            checks: &'a [Check],
        }
        println!("{}", serde_json::to_string_pretty(&Report { ok: code == 0, checks: &checks })?);
    } else {
        print(&checks, code, args.quiet);
    }
    Ok(ExitCode::from(code))
}

/// The unit's gate: only what decides whether the agent is worth starting.
/// A folder that does not exist is left to the agent, whose own error then
/// fails the unit with the folder named.
fn condition(args: &CheckArgs) -> ExitCode {
    let settings = match Settings::load(args.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mamori: {e:#}");
            return ExitCode::from(EXIT_CONDITION_INVALID);
        }
    };
    if let Err(e) = mamori_alert::outputs(&settings.alerts) {
        eprintln!("mamori: invalid config: {e}");
        return ExitCode::from(EXIT_CONDITION_INVALID);
    }
    if args.protect.is_empty() && settings.agent.protect.is_empty() {
        eprintln!("mamori: nothing to protect (no `protect` under [agent] in the config): the agent is not started");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn assess(args: &CheckArgs) -> Vec<Check> {
    let mut checks = Vec::new();
    let config = args
        .config
        .as_deref()
        .map_or("no config file given: the defaults".into(), |p| format!("{} is valid", p.display()));
    let settings = match Settings::load(args.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            checks.push(Check::fail(
                "config",
                format!("{e:#}"),
                "correct the key named (see mamori.example.toml), then run mamori check again",
            ));
            return checks;
        }
    };
    checks.push(Check::ok("config", config));

    let mut named = args.protect.clone();
    named.extend(settings.agent.protect.iter().cloned());
    let state = settings.state_dir(args.state.as_deref());
    let found = folders::check(&named, &mut checks);
    if named.is_empty() {
        checks.push(Check::fail(
            NOTHING,
            "no folder to protect",
            "add `protect = [\"/srv/share\"]` under [agent] in the config, or give --protect DIR",
        ));
    }
    folders::overlaps(&found, &mut checks);
    folders::vaults(&found, &state, &settings.vault, &mut checks);
    folders::state(&state, &mut checks);
    settings_checks(&settings, &mut checks);

    let probed: Vec<PathBuf> = if found.is_empty() {
        // Nothing to protect yet: the kernel is still worth knowing about,
        // on the filesystem the state directory will be on.
        vec![folders::nearest_existing(&state)]
    } else {
        found.iter().map(|f| f.path.clone()).collect()
    };
    kernel::fanotify(&probed, &mut checks);
    kernel::freezer(&mut checks);
    kernel::vault_lock(settings.vault.enabled, &mut checks);
    kernel::nftables(&settings.isolate, &mut checks);
    kernel::samba(&mut checks);
    outputs::check(&settings.alerts, &mut checks);
    checks
}

/// What the config turns off.
fn settings_checks(settings: &Settings, checks: &mut Vec<Check>) {
    if settings.canary.enabled {
        checks.push(Check::ok("decoys", format!("decoy files in each folder: {}", settings.canary.names.join(", "))));
    } else {
        checks.push(Check::warn(
            "decoys",
            "decoys are off (canary.enabled = false): an attack is caught by its behaviour alone",
            "set `enabled = true` under [canary]",
        ));
    }
    if settings.evidence.enabled {
        checks.push(Check::ok("evidence", "a sealed evidence bundle is written at each incident"));
    } else {
        checks.push(Check::warn(
            "evidence",
            "evidence bundles are off (evidence.enabled = false)",
            "set `enabled = true` under [evidence]",
        ));
    }
}

fn exit_code(checks: &[Check]) -> u8 {
    let failing = |c: &&Check| c.status == Status::Fail;
    let nothing = checks.iter().filter(failing).any(|c| c.check == NOTHING);
    let other = checks.iter().filter(failing).any(|c| c.check != NOTHING);
    match (other, nothing) {
        (true, _) => 2,
        (false, true) => 1,
        (false, false) => 0,
    }
}

fn print(checks: &[Check], code: u8, quiet: bool) {
    let groups = [
        (Status::Ok, "Protection on:"),
        (Status::Warn, "Missing (protection runs without it):"),
        (Status::Fail, "Cannot run until fixed:"),
    ];
    for (status, title) in groups {
        if quiet && status == Status::Ok {
            continue;
        }
        let these: Vec<&Check> = checks.iter().filter(|c| c.status == status).collect();
        if these.is_empty() {
            continue;
        }
        println!("{title}");
        for c in these {
            // A config error quotes the file over several lines: kept as lines, each escaped.
            let mut lines = c.detail.lines();
            println!("  - {}: {}", c.check, escaped(lines.next().unwrap_or_default()));
            for line in lines {
                println!("      {}", escaped(line));
            }
            if let Some(fix) = &c.fix {
                println!("      what to do: {}", escaped(fix));
            }
        }
        println!();
    }
    let problems = checks.iter().filter(|c| c.status != Status::Ok).count();
    if quiet && problems == 0 {
        return;
    }
    println!(
        "{}",
        match code {
            0 if problems == 0 => "Protection can run, with everything on.".to_owned(),
            0 => format!("Protection can run, with {problems} thing(s) missing."),
            1 => "Nothing to protect: name a folder.".to_owned(),
            _ => "Protection cannot run: fix what is listed under \"Cannot run until fixed\".".to_owned(),
        }
    );
}

/// A path for a message.
fn shown(path: &Path) -> String {
    path.display().to_string()
}
