//! `mamori restore`: put back every file an incident's actor changed,
//! renamed or deleted, from the copies the vault took before the change,
//! and remove what the actor made.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use mamori_store::Incident;
use mamori_vault::{Entry, Kind, Vault};

use mamori_report::Restored;

use crate::commands;
use crate::reporting;
use crate::settings::Settings;
use crate::vaults;

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The agent's state directory.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// The incident to undo (see `mamori incidents`).
    id: String,
    /// Show what would be done, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Restore into this folder (same relative paths) and leave the originals alone.
    #[arg(long, value_name = "DIR")]
    to: Option<PathBuf>,
}

/// What restoring an incident means, file by file.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Original paths and the copy to put back there.
    pub put_back: Vec<(String, Entry)>,
    /// Files the actor made (encrypted copies, notes) that are to go.
    pub remove: Vec<String>,
    /// Originals for which the vault holds no copy.
    pub missing: Vec<String>,
}

/// Works out the plan from the incident's file operations and the vault's
/// entries. `entries(path)` lists the entries recorded for a path; of `all`
/// the entries, those the actor's own opens made the vault take are
/// originals too, which covers files it changed while no agent followed its
/// every step (an agent restarted mid-attack sees only the end).
pub fn plan<'a>(inc: &Incident, entries: &dyn Fn(&str) -> Vec<&'a Entry>, all: &[&'a Entry]) -> Plan {
    let mut originals = BTreeSet::new();
    let started = inc.actor.started_ns.unwrap_or(0);
    for e in all {
        if e.kind != Kind::Pin && e.taken_ns >= started && e.by.is_some_and(|p| inc.procs.contains(&p)) {
            originals.insert(e.meta.path.as_str());
        }
    }
    let mut made = BTreeSet::new();
    let mut renamed: BTreeMap<&str, &str> = BTreeMap::new();
    for f in &inc.files {
        match f.op.as_str() {
            "create" => {
                made.insert(f.path.as_str());
            }
            "rename" => {
                originals.insert(f.path.as_str());
                if let Some(to) = f.to.as_deref() {
                    made.insert(to);
                    renamed.insert(f.path.as_str(), to);
                }
            }
            _ => {
                originals.insert(f.path.as_str());
            }
        }
    }
    // A file the actor made and then renamed is not an original either.
    let originals: BTreeSet<&str> = originals.into_iter().filter(|p| !made.contains(p)).collect();
    let mut plan = Plan::default();
    for &orig in &originals {
        // Follow the actor's renames: the content may have been kept under a later name.
        let mut candidates = Vec::new();
        let mut path = orig;
        let mut seen = BTreeSet::new();
        while seen.insert(path) {
            candidates.extend(entries(path));
            match renamed.get(path) {
                Some(next) => path = next,
                None => break,
            }
        }
        match choose(&candidates, started) {
            Some(e) => plan.put_back.push((orig.to_owned(), e.clone())),
            None => plan.missing.push(orig.to_owned()),
        }
    }
    plan.remove = made.into_iter().filter(|p| !originals.contains(p)).map(str::to_owned).collect();
    plan
}

/// The content from just before the actor's first change: the earliest
/// copy (whole or by range) taken after the actor started (its own first
/// open kept it), or else the latest one from before. Copies win over pins,
/// which only hold the inode as it is now.
fn choose<'a>(candidates: &[&'a Entry], started_ns: u64) -> Option<&'a Entry> {
    let pick = |kinds: &[Kind]| {
        let of_kind = || candidates.iter().copied().filter(|e| kinds.contains(&e.kind));
        of_kind()
            .filter(|e| e.taken_ns >= started_ns)
            .min_by_key(|e| e.taken_ns)
            .or_else(|| of_kind().filter(|e| e.taken_ns < started_ns).max_by_key(|e| e.taken_ns))
    };
    pick(&[Kind::Copy, Kind::Ranges]).or_else(|| pick(&[Kind::Pin]))
}

/// The root a path lies under, and the path relative to it.
fn relative<'p>(roots: &[String], path: &'p str) -> Option<&'p str> {
    roots.iter().find_map(|r| path.strip_prefix(r.as_str())?.strip_prefix('/'))
}

pub fn run(args: RestoreArgs) -> Result<ExitCode> {
    let state = commands::state_dir(args.state.clone());
    let store = commands::open(args.state)?;
    let inc = store.incident(&args.id)?.with_context(|| format!("no incident {} (see `mamori incidents`)", args.id))?;
    let roots: Vec<PathBuf> = inc.protected.iter().map(PathBuf::from).collect();
    let settings = Settings::default();
    let mut vaults = Vec::new();
    for dir in vaults::vault_dirs(&state, &roots)? {
        let vault = Vault::open_read_only(&dir, vaults::limits(&settings.vault))
            .with_context(|| format!("cannot open the vault {}", dir.display()))?;
        vaults.push(vault);
    }
    let entries = |path: &str| -> Vec<&Entry> { vaults.iter().flat_map(|v| v.entries_for_path(path)).collect() };
    let all: Vec<&Entry> = vaults.iter().flat_map(|v| v.entries()).collect();
    let plan = plan(&inc, &entries, &all);
    let vault_of = |e: &Entry| vaults.iter().find(|v| v.object_path(e).exists());

    println!(
        "incident {}: {} file(s) to put back, {} file(s) made by the attacker to remove, {} without a copy",
        inc.id,
        plan.put_back.len(),
        if args.to.is_some() { 0 } else { plan.remove.len() },
        plan.missing.len()
    );
    if args.dry_run {
        for (path, e) in &plan.put_back {
            println!("  restore {path}  (copy of {}, {} bytes)", e.meta.path, e.meta.size);
        }
        if args.to.is_none() {
            for path in &plan.remove {
                println!("  remove  {path}");
            }
        }
        for path in &plan.missing {
            println!("  MISSING {path}: the vault holds no copy");
        }
        return Ok(ExitCode::SUCCESS);
    }

    let bar = indicatif::ProgressBar::new(plan.put_back.len() as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}").expect("valid template"));
    let (mut restored, mut intact, mut failed) = (0usize, 0usize, Vec::new());
    let mut outcomes = BTreeMap::new();
    for (path, entry) in &plan.put_back {
        bar.set_message(path.clone());
        let dest = match &args.to {
            Some(to) => match relative(&inc.protected, path) {
                Some(rel) => to.join(rel),
                None => {
                    failed.push(format!("{path}: not under a protected folder"));
                    continue;
                }
            },
            None => PathBuf::from(path),
        };
        if args.to.is_none() && already_intact(&dest, entry) {
            intact += 1;
            outcomes.insert(path.clone(), Restored::AlreadyIntact);
        } else {
            let result = match vault_of(entry) {
                Some(vault) => {
                    if let Some(parent) = dest.parent() {
                        std::fs::create_dir_all(parent).ok();
                    }
                    vault.restore_to(entry, &dest).map_err(anyhow::Error::from)
                }
                None => Err(anyhow::anyhow!("its copy is gone from the vault")),
            };
            match result {
                Ok(_) => {
                    restored += 1;
                    outcomes.insert(path.clone(), Restored::Restored);
                }
                Err(e) => {
                    outcomes.insert(path.clone(), Restored::Failed(format!("{e:#}")));
                    failed.push(format!("{path}: {e:#}"));
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut removed = 0;
    if args.to.is_none() {
        for path in &plan.remove {
            match std::fs::remove_file(path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => failed.push(format!("{path}: cannot remove: {e}")),
            }
        }
    }
    println!("restored {restored}, already intact {intact}, attacker files removed {removed}, failed {}", failed.len());
    for f in &failed {
        println!("  FAILED {f}");
    }
    for path in &plan.missing {
        println!("  NOT RESTORED {path}: the vault holds no copy from before the change");
        outcomes.insert(path.clone(), Restored::Failed("the vault holds no copy from before the change".into()));
    }
    // What the report tells of each file; only for a restore in place.
    if args.to.is_none() {
        if let Err(e) = reporting::save_restore_outcomes(&state, &inc.id, &outcomes) {
            tracing::warn!("{e:#}");
        }
    }
    Ok(if failed.is_empty() && plan.missing.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// The file at `dest` already has the copy's content (restoring twice is harmless).
fn already_intact(dest: &Path, entry: &Entry) -> bool {
    let Some(want) = &entry.hash else { return false };
    mamori_vault::content_hash(dest).is_ok_and(|have| have == *want)
}
