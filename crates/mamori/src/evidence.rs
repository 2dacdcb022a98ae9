//! The responder's case: what the agent remembers of recent events, the
//! evidence bundle written at each incident, and `mamori evidence`.
//!
//! The bundle is collected on a thread of its own while the actor is
//! suspended: collecting hashes executables and may copy memory, and the
//! sensor thread must go on answering openers (it also answers the bundle
//! writer's own opens of ransom notes under the protected folders).

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use mamori_event::{ContentFacts, Digest, Event, EventKind, ProcInfo, ProcKey};
use mamori_identify::{Catalog, Identification, Sample};
use mamori_report::NoteFound;
use mamori_store::Incident;
use tracing::{info, warn};

use crate::commands;

/// File events kept for timelines, and processes remembered: bounded, so a
/// long-running agent stays flat (about 3 MiB at most).
const RECENT_EVENTS: usize = 8192;
const RECENT_PROCS: usize = 4096;
/// Files of the actor's looked at for notes and encrypted samples.
const SAMPLES: usize = 24;

pub const EVIDENCE_DIR: &str = "evidence";
const KEY_FILE: &str = "evidence.key";
pub const TIMELINE: &str = "timeline.jsonl";
pub const INCIDENT: &str = "incident.json";
pub const IDENTIFICATION: &str = "identification.json";
/// The ransom notes found among the files the actor made: path and full text.
pub const NOTES: &str = "notes.json";

/// Where incident `id`'s bundle is.
pub fn bundle_dir(state: &Path, id: &str) -> PathBuf {
    state.join(EVIDENCE_DIR).join(id)
}

/// The last events the agent saw, to hand over an actor's timeline.
#[derive(Default)]
pub struct Recent {
    events: VecDeque<Event>,
    procs: HashMap<ProcKey, ProcInfo>,
    proc_order: VecDeque<ProcKey>,
}

impl Recent {
    pub fn push(&mut self, ev: &Event) {
        match &ev.kind {
            EventKind::Proc(info) => {
                if self.procs.insert(info.key, info.clone()).is_none() {
                    self.proc_order.push_back(info.key);
                }
                if self.proc_order.len() > RECENT_PROCS {
                    if let Some(old) = self.proc_order.pop_front() {
                        self.procs.remove(&old);
                    }
                }
            }
            _ if ev.proc.is_some() => {
                if self.events.len() == RECENT_EVENTS {
                    self.events.pop_front();
                }
                self.events.push_back(slim(ev));
            }
            _ => {}
        }
    }

    /// The events of `root`'s process tree (and of `also`), each process
    /// introduced by its `Proc` event, in time order.
    pub fn of_actor(&self, root: ProcKey, also: &[ProcKey]) -> Vec<Event> {
        let in_tree = |mut key: ProcKey| {
            for _ in 0..64 {
                if key == root || also.contains(&key) {
                    return true;
                }
                match self.procs.get(&key).and_then(|p| p.parent) {
                    Some(parent) => key = parent,
                    None => return false,
                }
            }
            false
        };
        let events: Vec<&Event> = self.events.iter().filter(|e| e.proc.is_some_and(in_tree)).collect();
        let mut out: Vec<Event> = Vec::new();
        let mut introduced = std::collections::HashSet::new();
        for ev in events {
            let key = ev.proc.expect("filtered on proc");
            if introduced.insert(key) {
                if let Some(info) = self.procs.get(&key) {
                    out.push(Event { time_ns: ev.time_ns, proc: Some(key), kind: EventKind::Proc(info.clone()) });
                }
            }
            out.push(ev.clone());
        }
        out
    }
}

/// An event without the bulky parts of its facts (block samples, digest):
/// a timeline needs sizes, kinds and entropy, not the engine's fingerprints.
fn slim(ev: &Event) -> Event {
    let slim_facts = |f: &ContentFacts| ContentFacts {
        blocks: Vec::new(),
        digest: Digest::default(),
        kind: f.kind,
        size: f.size,
        entropy: f.entropy,
        encoded_random: f.encoded_random,
        sampled: f.sampled,
        small_hash: f.small_hash,
    };
    let kind = match &ev.kind {
        EventKind::Open { path, mode, before } => {
            EventKind::Open { path: path.clone(), mode: *mode, before: before.as_ref().map(slim_facts) }
        }
        EventKind::CloseWrite { path, after } => EventKind::CloseWrite { path: path.clone(), after: slim_facts(after) },
        other => other.clone(),
    };
    Event { time_ns: ev.time_ns, proc: ev.proc, kind }
}

/// The family catalog: `STATE/families.toml` when present (so the markers
/// can be updated without a new build), else the one built in.
pub fn catalog(state: &Path) -> Result<Catalog> {
    let path = state.join("families.toml");
    if path.exists() {
        return Catalog::load(&path).with_context(|| format!("cannot use {}", path.display()));
    }
    Ok(Catalog::builtin())
}

/// The files an incident's actor made (ransom notes, encrypted copies) or
/// renamed to, and what they tell about the family.
pub fn identify_incident(catalog: &Catalog, inc: &Incident) -> (Identification, Vec<(String, String)>) {
    let mut samples = Vec::new();
    let mut notes = Vec::new();
    let made = inc.files.iter().filter_map(|f| match f.op.as_str() {
        "create" => Some(f.path.as_str()),
        "rename" => f.to.as_deref(),
        _ => None,
    });
    let mut seen = std::collections::BTreeSet::new();
    for path in made.filter(|p| seen.insert(*p)).take(SAMPLES) {
        let Ok(sample) = Sample::from_path(Path::new(path)) else { continue };
        if let Sample::Note { name, text } = &sample {
            if !mamori_identify::looks_like_ransom_note(name, text) {
                continue;
            }
            notes.push((path.to_owned(), text.clone()));
        }
        samples.push(sample);
    }
    (catalog.identify(&samples), notes)
}

/// What the bundle writer needs, taken from the agent at the verdict.
pub struct Job {
    pub state: PathBuf,
    pub incident: Incident,
    pub timeline: Vec<Event>,
    pub memory_cap: Option<u64>,
    /// Processes to kill once collected (the kill policy): the evidence of
    /// a killed process is gone with it.
    pub then_kill: Option<Vec<ProcKey>>,
}

impl Job {
    /// Starts collecting; the agent waits for the handle before it exits,
    /// so a stop right after an incident does not cut its bundle short.
    pub fn spawn(self) -> Option<std::thread::JoinHandle<()>> {
        let spawned = std::thread::Builder::new().name("evidence".into()).spawn(move || {
            let id = self.incident.id.clone();
            match self.run() {
                Ok(dir) => info!(id, bundle = %dir.display(), "evidence bundle written and sealed"),
                Err(e) => warn!(id, "EVIDENCE: the bundle could not be written: {e:#}"),
            }
        });
        spawned.inspect_err(|e| warn!("EVIDENCE: cannot start the collector: {e}")).ok()
    }

    fn run(self) -> Result<PathBuf> {
        let dir = bundle_dir(&self.state, &self.incident.id);
        let key = mamori_evidence::SealKey::load_or_create(&self.state.join(KEY_FILE))?;
        let mut extra = vec![(INCIDENT.to_owned(), serde_json::to_vec_pretty(&self.incident)?)];
        let mut timeline = Vec::new();
        for ev in &self.timeline {
            timeline.extend(serde_json::to_vec(ev)?);
            timeline.push(b'\n');
        }
        extra.push((TIMELINE.to_owned(), timeline));
        let catalog = catalog(&self.state).unwrap_or_else(|e| {
            warn!("{e:#}; using the built-in family markers");
            Catalog::builtin()
        });
        let (identification, notes) = identify_incident(&catalog, &self.incident);
        extra.push((IDENTIFICATION.to_owned(), serde_json::to_vec_pretty(&identification)?));
        let notes: Vec<NoteFound> = notes.into_iter().map(|(path, text)| NoteFound { path, excerpt: text }).collect();
        extra.push((NOTES.to_owned(), serde_json::to_vec_pretty(&notes)?));
        let spec = mamori_evidence::CollectSpec {
            pids: self.incident.procs.iter().map(|k| k.pid).collect(),
            memory_cap: self.memory_cap,
            extra,
        };
        let collected = mamori_evidence::collect(&dir, &spec, &key);
        if let Some(procs) = &self.then_kill {
            mamori_response::kill(procs);
        }
        let bundle = collected?;
        Ok(bundle.dir)
    }
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EvidenceArgs {
    #[command(subcommand)]
    verify: Option<EvidenceCommand>,
    /// The agent's state directory.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// The incident whose bundle to export.
    id: Option<String>,
    /// Where to: a new folder, or an archive if it ends in `.tar.zst`.
    #[arg(long, value_name = "DIR|FILE.tar.zst")]
    out: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum EvidenceCommand {
    /// Check every file of a bundle (folder or .tar.zst) against its sealed manifest; exit 0 only if all is intact.
    Verify {
        bundle: PathBuf,
        /// Also require the seal to be made by this public key (hex, from `seal.json` of a bundle you trust).
        #[arg(long, value_name = "HEX")]
        key: Option<String>,
    },
}

pub fn run(args: EvidenceArgs) -> Result<ExitCode> {
    if let Some(EvidenceCommand::Verify { bundle, key }) = args.verify {
        return verify(&bundle, key.as_deref());
    }
    let (Some(id), Some(out)) = (args.id, args.out) else {
        bail!("usage: mamori evidence [--state DIR] ID --out DIR|FILE.tar.zst, or mamori evidence verify BUNDLE");
    };
    let state = commands::state_dir(args.state);
    let dir = bundle_dir(&state, &id);
    if !dir.is_dir() {
        bail!("no evidence bundle for {id} in {} (see `mamori incidents`)", dir.display());
    }
    mamori_evidence::export(&dir, &out).with_context(|| format!("cannot export to {}", out.display()))?;
    println!("exported {id} to {}; check it with `mamori evidence verify {}`", out.display(), out.display());
    Ok(ExitCode::SUCCESS)
}

fn verify(bundle: &Path, key: Option<&str>) -> Result<ExitCode> {
    let pinned = key.map(mamori_evidence::PublicKey::from_hex).transpose().context("--key")?;
    let v = mamori_evidence::verify(bundle, pinned.as_ref())
        .with_context(|| format!("cannot read the bundle {}", bundle.display()))?;
    if v.is_ok() {
        println!(
            "intact: {} file(s) match the sealed manifest (signed by key {})",
            v.entries,
            v.fingerprint.as_deref().unwrap_or("?")
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("NOT INTACT: {} problem(s)", v.problems.len());
    for p in &v.problems {
        println!("  {p}");
    }
    Ok(ExitCode::from(1))
}
