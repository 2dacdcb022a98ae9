//! `mamori restore`: put back every file an incident's actor changed,
//! renamed or deleted, from the copies the vault took before the change,
//! and remove what the actor made.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use mamori_alert::What;
use mamori_event::names;
use mamori_report::Restored;
use mamori_restore::{Candidate, Root};
use mamori_vault::{Entry, Vault};
use tracing::warn;

use crate::settings::Settings;
use crate::state::StateDir;
use crate::{ui, vaults};

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
    /// The agent's config (for the decoys' names and the vault's settings).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub fn run(args: RestoreArgs) -> Result<ExitCode> {
    let state = StateDir::at(args.state);
    let inc = state
        .store()?
        .incident(&args.id)?
        .with_context(|| format!("no incident {} (see `mamori incidents`)", args.id))?;
    // Before anything is read from the vault or written in a protected
    // folder: the agent must know this process for what it is, or it would
    // refuse its vault reads and judge its writes (a decoy put back, files
    // removed) as an attack. Held until the restore ends.
    let _admitted = crate::handshake::announce(state.path(), &format!("restore {}", inc.id))
        .context("cannot tell the running agent about this restore")?;
    // Read again: the agent answers once it has handled what happened
    // before, such as the last operations of an attacker just killed.
    let inc = state.store()?.incident(&inc.id)?.with_context(|| format!("incident {} is gone", inc.id))?;
    let settings = Settings::load(args.config.as_deref())?;
    let roots: Vec<PathBuf> = inc.protected.iter().map(|p| names::decode(p)).collect();
    let mut vaults = Vec::new();
    for dir in vaults::vault_dirs(state.path(), &roots)? {
        let vault = Vault::open_read_only(&dir, vaults::limits(&settings.vault))
            .with_context(|| format!("cannot open the vault {}", dir.display()))?;
        vaults.push(vault);
    }
    let all: Vec<Candidate> = vaults
        .iter()
        .enumerate()
        .flat_map(|(vault, v)| v.entries().iter().map(move |entry| Candidate { vault, entry }))
        .collect();
    let decoys = &settings.canary.names;
    let is_decoy = |path: &str| {
        let p = names::decode(path);
        p.parent().is_some_and(|dir| roots.iter().any(|r| r == dir))
            && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| decoys.iter().any(|d| d == n))
    };
    let mut plan = mamori_restore::plan(&inc, &all, &is_decoy);
    // Elsewhere, nothing of anyone's is overwritten: the before-attack
    // copies of what another client saved since go there too.
    if args.to.is_some() {
        let later = std::mem::take(&mut plan.changed_since);
        plan.put_back.extend(later);
    }
    let in_place = args.to.is_none();

    println!(
        "incident {}: {} file(s) to put back, {} to rename back, {} made by the attacker to remove, {} without a copy",
        inc.id,
        plan.put_back.len(),
        plan.rename_back.len(),
        if in_place { plan.remove.len() } else { 0 },
        plan.missing.len()
    );
    if !plan.decoys.is_empty() {
        println!("  {} decoy(s) touched: not your files; the agent places them again", plan.decoys.len());
    }
    for (path, c) in &plan.changed_since {
        println!(
            "  LEFT    {}: another client saved it after the attacker; the copy from before the attack is vault {} entry {} (`mamori restore {} --to DIR` puts it elsewhere)",
            ui::escaped(path),
            c.vault,
            c.entry.id,
            inc.id
        );
    }
    if args.dry_run {
        for (path, c) in &plan.put_back {
            println!(
                "  restore {}  (copy of {}, {} bytes)",
                ui::escaped(path),
                ui::escaped(&c.entry.meta.path),
                c.entry.meta.size
            );
        }
        for (path, now) in &plan.rename_back {
            println!("  rename  {} back to {}", ui::escaped(now), ui::escaped(path));
        }
        if in_place {
            for path in &plan.remove {
                println!("  remove  {}", ui::escaped(path));
            }
        }
        for path in &plan.missing {
            println!("  MISSING {}: the vault holds no copy", ui::escaped(path));
        }
        return Ok(ExitCode::SUCCESS);
    }

    // Where each path goes: under its own protected folder, or under --to.
    let protected: Vec<Root> = roots.iter().filter_map(|r| Root::open(r).inspect_err(|e| warn!("{e}")).ok()).collect();
    if let Some(to) = &args.to {
        std::fs::create_dir_all(to).with_context(|| format!("cannot make {}", to.display()))?;
    }
    let target = args.to.as_deref().map(Root::open).transpose().context("cannot open the folder given to --to")?;
    let locate = |path: &str| -> Result<(&Root, PathBuf)> {
        let root = protected
            .iter()
            .filter(|r| r.relative(path).is_ok())
            .max_by_key(|r| r.path().as_os_str().len())
            .with_context(|| format!("{}: not under a protected folder that can be opened", ui::escaped(path)))?;
        let rel = root.relative(path)?;
        Ok((target.as_ref().unwrap_or(root), rel))
    };

    let bar = indicatif::ProgressBar::new((plan.put_back.len() + plan.rename_back.len()) as u64);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}").expect("valid template"));
    let (mut restored, mut intact, mut failed) = (0usize, 0usize, Vec::new());
    let mut outcomes = BTreeMap::new();
    let mut outcome = |path: &str, result: Result<Restored>| {
        let done = match result {
            Ok(done) => done,
            Err(e) => {
                failed.push(format!("{}: {e:#}", ui::escaped(path)));
                Restored::Failed(format!("{e:#}"))
            }
        };
        match done {
            Restored::Restored => restored += 1,
            Restored::AlreadyIntact => intact += 1,
            _ => {}
        }
        outcomes.insert(path.to_owned(), done);
    };
    let mut beside = Vec::new();
    for (path, c) in &plan.put_back {
        bar.set_message(ui::escaped(path).into_owned());
        let vacated = in_place && plan.vacated.contains(path);
        let done = put_back(&vaults[c.vault], c.entry, locate(path), in_place, vacated.then_some(inc.id.as_str()));
        if let Ok((_, Some(name))) = &done {
            beside.push((path.clone(), name.clone()));
        }
        outcome(path, done.map(|(r, _)| r));
        bar.inc(1);
    }
    for (path, now) in &plan.rename_back {
        bar.set_message(ui::escaped(path).into_owned());
        let result = (|| {
            let (root, to) = locate(path)?;
            let (_, from) = locate(now)?;
            if !in_place {
                bail!("renamed by the attacker, not copied: it is back only in place (restore without --to)");
            }
            // Back already: a restore before this one renamed it (the
            // attacker's name is gone and the original name is there).
            if !root.exists(&from) && root.exists(&to) {
                return Ok(Restored::AlreadyIntact);
            }
            root.rename_back(&from, &to)?;
            Ok(Restored::Restored)
        })();
        outcome(path, result);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut removed = 0;
    if in_place {
        for path in &plan.remove {
            match locate(path).and_then(|(root, rel)| Ok(root.remove(&rel)?)) {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(e) => failed.push(format!("{}: cannot remove: {e:#}", ui::escaped(path))),
            }
        }
    }
    let back = restored + intact;
    println!(
        "your files: {back} of {} back ({restored} restored, {intact} already intact); attacker files removed {removed}; failed {}",
        plan.user_files(),
        failed.len()
    );
    for f in &failed {
        println!("  FAILED {f}");
    }
    for (path, name) in &beside {
        println!(
            "  BESIDE  {}: a new file was saved under its name after the attack and is kept; the original is back as {}",
            ui::escaped(path),
            ui::escaped(&name.to_string_lossy())
        );
    }
    for path in &plan.missing {
        println!("  NOT RESTORED {}: the vault holds no copy from before the change", ui::escaped(path));
        outcomes.insert(path.clone(), Restored::Failed("the vault holds no copy from before the change".into()));
    }
    // What the report tells of each file; only for a restore in place.
    if in_place {
        if let Err(e) = state.save_restore_outcomes(&inc.id, &outcomes) {
            warn!("{e:#}");
        }
    }
    let what = What::RestoreFinished {
        incident_id: inc.id.clone(),
        restored: back as u64,
        failed: (failed.len() + plan.missing.len()) as u64,
    };
    if let Err(e) = crate::alerting::tell(&settings.alerts, state.path(), vec![what]) {
        warn!("the restore was not told to the alert outputs: {e:#}");
    }
    Ok(if failed.is_empty() && plan.missing.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Puts `entry` back at `dest` (a root and a path under it), unless the file
/// there already has its content (restoring twice is harmless). Nothing on
/// the way is followed if it is a link, and a destination that is not a
/// regular file (a FIFO, say) is replaced, never read. A name the attacker
/// vacated (`beside_for`: the incident) that holds a file again keeps it:
/// the original goes beside it, under the name returned.
fn put_back(
    vault: &Vault,
    entry: &Entry,
    dest: Result<(&Root, PathBuf)>,
    in_place: bool,
    beside_for: Option<&str>,
) -> Result<(Restored, Option<std::ffi::OsString>)> {
    let (root, rel) = dest?;
    let place = root.place(&rel, true)?;
    if in_place {
        let intact = entry.hash.as_ref().is_some_and(|want| {
            mamori_vault::content_hash_at(place.dir(), &place.name).is_ok_and(|have| have == *want)
        });
        if intact {
            return Ok((Restored::AlreadyIntact, None));
        }
    }
    let taken = rustix::fs::statat(place.dir(), place.name.as_os_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile);
    // What stands there may be the original already (restored once before).
    // A hashed copy was compared above; one too large to have been hashed
    // when it was taken is compared through its object.
    let original_there = || {
        let whole = matches!(entry.kind, mamori_vault::Kind::Copy | mamori_vault::Kind::Pin);
        entry.hash.is_none()
            && whole
            && mamori_vault::content_hash(&vault.object_path(entry)).is_ok_and(|want| {
                mamori_vault::content_hash_at(place.dir(), &place.name).is_ok_and(|have| have == want)
            })
    };
    let ranges = entry.kind == mamori_vault::Kind::Ranges;
    if let Some(id) = beside_for.filter(|_| taken && !ranges) {
        if original_there() {
            return Ok((Restored::AlreadyIntact, None));
        }
        let name = beside_name(&place.name, id);
        vault.restore_at(entry, place.dir(), &name)?;
        return Ok((Restored::Restored, Some(name)));
    }
    vault.restore_at(entry, place.dir(), &place.name)?;
    Ok((Restored::Restored, None))
}

/// `report.docx` → `report (restored INC-0001).docx`: beside the new file,
/// with its type, so it opens the same way.
fn beside_name(name: &std::ffi::OsStr, id: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let bytes = name.as_bytes();
    let dot = bytes.iter().rposition(|&b| b == b'.').filter(|&i| i > 0).unwrap_or(bytes.len());
    let mut out = bytes[..dot].to_vec();
    out.extend_from_slice(format!(" (restored {id})").as_bytes());
    out.extend_from_slice(&bytes[dot..]);
    std::ffi::OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_original_goes_beside_with_its_type() {
        let name = |n: &str| beside_name(std::ffi::OsStr::new(n), "INC-0003").into_string().unwrap();
        assert_eq!(name("report.docx"), "report (restored INC-0003).docx");
        assert_eq!(name("a.tar.gz"), "a.tar (restored INC-0003).gz");
        assert_eq!(name(".profile"), ".profile (restored INC-0003)");
        assert_eq!(name("README"), "README (restored INC-0003)");
    }
}
