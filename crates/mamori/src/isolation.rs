//! `mamori isolate`: cut the host off the network (but for loopback and an
//! allow-list) and put it back, recording it in the incident; and the
//! agent's optional isolation at an incident.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use mamori_isolate::Allow;
use tracing::{error, warn};

use crate::agent::now_rfc3339;
use crate::settings::{IsolateSection, Settings};
use crate::state::StateDir;

#[derive(clap::Args)]
pub struct IsolateArgs {
    /// The agent's state directory (the isolation is noted in the incident).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// A config file whose `[isolate] allow` list to use.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// An address or network that stays reachable (repeatable), e.g. 192.0.2.10 or 10.1.0.0/24.
    #[arg(long, value_name = "ADDR")]
    allow: Vec<String>,
    /// The incident to note the isolation in (default: the latest one).
    #[arg(long, value_name = "ID")]
    incident: Option<String>,
    /// Lift the isolation.
    #[arg(long, conflicts_with = "status")]
    undo: bool,
    /// Only say whether the host is isolated.
    #[arg(long)]
    status: bool,
}

pub fn run(args: IsolateArgs) -> Result<ExitCode> {
    if args.status {
        return Ok(match mamori_isolate::status()? {
            Some(iso) => {
                println!("{iso}");
                ExitCode::SUCCESS
            }
            None => {
                println!("not isolated");
                ExitCode::from(1)
            }
        });
    }
    let what = if args.undo {
        mamori_isolate::undo()?.to_string()
    } else {
        let settings = Settings::load(args.config.as_deref())?;
        let mut entries = settings.isolate.allow.clone();
        entries.extend(args.allow.iter().cloned());
        let allow = Allow::parse(&entries).context("--allow")?;
        mamori_isolate::isolate(&allow)?.to_string()
    };
    println!("{what}");
    note_in_incident(
        args.state,
        args.incident.as_deref(),
        &format!("{} at {}: {what}", "network isolation", now_rfc3339()),
    );
    Ok(ExitCode::SUCCESS)
}

/// Notes the change in an incident, if the state has one; an isolation is
/// still in force when this fails, so it only warns.
fn note_in_incident(state: Option<PathBuf>, id: Option<&str>, note: &str) {
    let result = (|| -> Result<Option<String>> {
        let store = StateDir::at(state).store()?;
        let inc = match id {
            Some(id) => store.incident(id)?.with_context(|| format!("no incident {id}"))?,
            None => match store.incidents()?.into_iter().max_by(|a, b| a.detected_at.cmp(&b.detected_at)) {
                Some(inc) => inc,
                None => return Ok(None),
            },
        };
        let mut inc = inc;
        inc.notes.push(note.to_owned());
        store.update_incident(&inc)?;
        Ok(Some(inc.id))
    })();
    match result {
        Ok(Some(id)) => println!("noted in incident {id}"),
        Ok(None) => {}
        Err(e) => warn!("the isolation could not be noted in an incident: {e:#}"),
    }
}

/// Isolates the host at an incident (`[isolate] on_incident`); the note for the incident.
pub fn on_incident(cfg: &IsolateSection) -> String {
    let result =
        Allow::parse(&cfg.allow).map_err(anyhow::Error::from).and_then(|allow| Ok(mamori_isolate::isolate(&allow)?));
    match result {
        Ok(iso) => {
            warn!("HOST ISOLATED from the network ({iso}); lift with `mamori isolate --undo`");
            format!("network isolation at {}: {iso} (lift with `mamori isolate --undo`)", now_rfc3339())
        }
        Err(e) => {
            error!("automatic network isolation failed: {e:#}");
            format!("automatic network isolation FAILED: {e:#}")
        }
    }
}
