//! The small commands: status, incidents, resume, kill, sim.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use mamori_store::{Action, Incident, Store, Trust};

use crate::agent::now_rfc3339;
use crate::state::StateDir;
use crate::ui;

pub fn status(state: Option<PathBuf>) -> Result<ExitCode> {
    let state = StateDir::at(state);
    let code = agent_status(&state)?;
    // Blocks outlive the agent: listed whether it runs or not.
    match crate::clients::blocks(&state) {
        Ok(blocks) => {
            for b in blocks {
                println!("  client blocked: {b} (lift: mamori unblock {})", b.addr);
            }
        }
        Err(e) => println!("  WARNING: cannot list blocked clients: {e:#}"),
    }
    crate::alerting::status(state.path());
    Ok(code)
}

fn agent_status(state: &StateDir) -> Result<ExitCode> {
    let dir = state.path();
    match mamori_store::agent_status(dir)? {
        Some(st) if st.active => {
            println!("mamori: protection active (agent pid {}, since {})", st.pid, st.started_at);
            println!("  folders:   {}", st.protected.join(", "));
            println!("  events:    {}", st.events);
            println!("  incidents: {}", st.incidents);
            match st.vault {
                Some(v) => {
                    println!(
                        "  vault:     {} entries, {:.1} MiB of copies, {} files read held open",
                        v.entries,
                        v.bytes as f64 / (1 << 20) as f64,
                        v.held_files
                    );
                    let skipped = v.skipped_budget + v.skipped_user_budget + v.skipped_floor;
                    if skipped > 0 {
                        println!(
                            "  WARNING: {skipped} before-image(s) not kept: {} over an owner's share of the budget, \
                             {} over the space budget, {} at the free-space floor \
                             (raise [vault] per_user_budget_percent or budget_mib, or free disk space)",
                            v.skipped_user_budget, v.skipped_budget, v.skipped_floor
                        );
                    }
                    for u in &v.users {
                        println!(
                            "    uid {}: {} not kept ({} over its share, {} over the budget, {} at the floor), \
                             {:.1} MiB held",
                            u.uid,
                            u.skipped_user_budget + u.skipped_budget + u.skipped_floor,
                            u.skipped_user_budget,
                            u.skipped_budget,
                            u.skipped_floor,
                            u.bytes as f64 / (1 << 20) as f64
                        );
                    }
                }
                None => println!("  vault:     off (changes cannot be undone)"),
            }
            if st.overflows > 0 {
                println!("  WARNING: the kernel event queue overflowed {} time(s)", st.overflows);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(st) => {
            println!("mamori: agent pid {} is running but protection is not active", st.pid);
            Ok(ExitCode::from(1))
        }
        None => {
            println!("mamori: no agent is running on {}", dir.display());
            Ok(ExitCode::from(1))
        }
    }
}

pub fn incidents(state: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let store = StateDir::at(state).store()?;
    let all = store.incidents()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        println!("no incidents");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = ui::table(&["id", "detected", "action", "actor", "processes", "files", "why"]);
    for inc in &all {
        let action = inc.action.as_str();
        let action = if inc.action == Action::Suspended { ui::alert(action) } else { ui::good(action) };
        table.add_row(vec![
            inc.id.clone().into(),
            inc.detected_at.clone().into(),
            action,
            actor_label(inc).into(),
            inc.pids.len().into(),
            inc.files.len().into(),
            inc.reasons.first().map(ui::reason).unwrap_or_default().into(),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

/// A file-share client is the actor, not the server process that served it.
fn actor_label(inc: &Incident) -> String {
    match &inc.client {
        Some(cut) => {
            let c = &cut.client;
            let user = if c.user.is_empty() { "?" } else { c.user.as_str() };
            format!(
                "SMB client {} (user {}, via smbd pid {})",
                ui::escaped(&c.address),
                ui::escaped(user),
                inc.actor.pid
            )
        }
        None => format!("{} (pid {})", ui::escaped(&inc.actor.exe), inc.actor.pid),
    }
}

fn incident(store: &Store, id: &str) -> Result<Incident> {
    store.incident(id)?.with_context(|| format!("no incident {id} (see `mamori incidents`)"))
}

pub fn resume(state: Option<PathBuf>, id: &str) -> Result<ExitCode> {
    let store = StateDir::at(state).store()?;
    let mut inc = incident(&store, id)?;
    if inc.action != Action::Suspended {
        bail!("incident {id} is {:?}, not suspended: nothing to resume", inc.action);
    }
    // Trust first, so the agent forgives the actor before it runs again.
    let exe = &mamori_event::names::decode(&inc.actor.exe);
    let trusted = match crate::trust::refusal(exe) {
        Some(why) => {
            println!("not trusting {}: {why}; resuming without trust", ui::escaped(&inc.actor.exe));
            None
        }
        // The program that ran, not whatever is at its path now.
        None => match crate::trust::exe_hash(&std::path::PathBuf::from(format!("/proc/{}/exe", inc.actor.pid)))
            .or_else(|_| crate::trust::exe_hash(exe))
        {
            Ok(hash) => Some(hash),
            Err(e) => {
                println!("not trusting {}: cannot read it ({e}); resuming without trust", ui::escaped(&inc.actor.exe));
                None
            }
        },
    };
    for dir in if trusted.is_some() { acted_in(&inc) } else { Vec::new() } {
        store.add_trust(&Trust {
            exe: inc.actor.exe.clone(),
            dir: dir.clone(),
            added_at: now_rfc3339(),
            incident: Some(inc.id.clone()),
            exe_hash: trusted.clone(),
        })?;
        println!("trusting {} in {} from now on", ui::escaped(&inc.actor.exe), ui::escaped(&dir));
    }
    // Give the agent (which re-reads trust every 2 s) time to forgive the actor.
    std::thread::sleep(Duration::from_millis(2500));
    let resumed = mamori_response::resume(&inc.procs)?;
    if let Some(e) = &resumed.cgroup {
        eprintln!("warning: {e}");
    }
    let resumed = resumed.procs;
    inc.action = Action::Resumed;
    store.update_incident(&inc)?;
    println!("resumed {} of {} processes of incident {id}", resumed.len(), inc.procs.len());
    println!("note: a program stopped while in the foreground of a shell continues in the background; use `fg` there.");
    Ok(ExitCode::SUCCESS)
}

/// The protected folders the incident's files lie in: what "that folder" means for trust.
fn acted_in(inc: &Incident) -> Vec<String> {
    let mut dirs: Vec<String> = inc
        .protected
        .iter()
        .filter(|root| inc.files.iter().any(|f| f.path.starts_with(root.as_str())))
        .cloned()
        .collect();
    if dirs.is_empty() {
        dirs = inc.protected.clone();
    }
    dirs
}

pub fn unblock(state: Option<PathBuf>, addr: &str) -> Result<ExitCode> {
    let parsed: std::net::IpAddr =
        addr.parse().with_context(|| format!("{addr:?} is not an IPv4 or IPv6 address (see `mamori status`)"))?;
    let state = StateDir::at(state);
    if crate::clients::unblock(&state, parsed)? {
        let store = state.store()?;
        // The agent reads this and lets the client's connections work again.
        for mut inc in store.incidents()? {
            let Some(cut) = &mut inc.client else { continue };
            let same = cut.client.address.parse::<std::net::IpAddr>().is_ok_and(|a| a == parsed);
            if same && !cut.steps.iter().any(|s| s.kind == mamori_store::CutKind::Unblocked) {
                cut.steps
                    .push(crate::clients::step(mamori_store::CutKind::Unblocked, Ok(format!("{parsed} unblocked"))));
                store.update_incident(&inc)?;
            }
        }
        println!("{parsed} unblocked: it can reach this host again");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{parsed} was not blocked (see `mamori status`)");
        Ok(ExitCode::from(1))
    }
}

pub fn kill(state: Option<PathBuf>, id: &str) -> Result<ExitCode> {
    let store = StateDir::at(state).store()?;
    let mut inc = incident(&store, id)?;
    let killed = mamori_response::kill(&inc.procs);
    if let Some(e) = &killed.cgroup {
        eprintln!("warning: {e}");
    }
    let killed = killed.procs;
    inc.action = Action::Killed;
    store.update_incident(&inc)?;
    println!("killed {} of {} processes of incident {id}", killed.len(), inc.procs.len());
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum SimCommand {
    /// List the simulated ransomware families.
    List,
    /// Attack a marked test folder with one family (refuses any other folder).
    Run {
        family: String,
        dir: PathBuf,
        /// Pause between files, in milliseconds (overrides the family's pace).
        #[arg(long)]
        delay_ms: Option<u64>,
    },
    /// Make a marked test folder filled with realistic documents.
    Corpus {
        dir: PathBuf,
        /// Number of ordinary documents.
        #[arg(long, default_value_t = 150)]
        docs: usize,
        /// Number of large (32 MiB) disk-image-like files.
        #[arg(long, default_value_t = 2)]
        large: usize,
    },
}

pub fn sim(cmd: SimCommand) -> Result<ExitCode> {
    match cmd {
        SimCommand::List => {
            let mut table = ui::table(&["family", "behaves like"]);
            for f in mamori_sim::families() {
                table.add_row(vec![f.name, f.summary]);
            }
            println!("{table}");
        }
        SimCommand::Run { family, dir, delay_ms } => {
            let opts = mamori_sim::RunOptions { delay: delay_ms.map(Duration::from_millis), max_files: None };
            let report = mamori_sim::run(&family, &dir, &opts)?;
            println!(
                "{}: {} files encrypted, {} notes written, {} errors",
                report.family, report.files_encrypted, report.notes_written, report.errors
            );
        }
        SimCommand::Corpus { dir, docs, large } => {
            let spec = mamori_sim::CorpusSpec { docs, large, ..Default::default() };
            let summary = mamori_sim::make_corpus(&dir, &spec)?;
            println!("{}: {summary:?}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
