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
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use mamori_event::{ContentFacts, Digest, Event, EventKind, ProcInfo, ProcKey};
use mamori_identify::{Catalog, Identification, Sample};
use mamori_report::NoteFound;
use mamori_store::{FileOp, Incident};
use tracing::{info, warn};

use crate::state::StateDir;

/// File events kept for timelines, and processes remembered: bounded, so a
/// long-running agent stays flat (about 3 MiB at most).
const RECENT_EVENTS: usize = 8192;
const RECENT_PROCS: usize = 4096;
/// Files of the actor's kept as notes and encrypted samples.
const SAMPLES: usize = 24;
/// Files of the actor's tried for them: a refused one (a FIFO or a link
/// planted under a note's name) costs one open, and must not use up the
/// room of the real notes made after it.
const LOOKED_AT: usize = 256;
/// How long identification may take before the bundle is written without
/// it. Its reads are bounded and never block on a FIFO, but a file on a FUSE
/// mount the attacker serves can hold a read forever.
const IDENTIFY_DEADLINE: Duration = Duration::from_secs(10);
/// How long the kill policy, and the agent's stop, wait for a bundle. A
/// collector still running then is left behind (it may yet seal the bundle
/// if the agent runs on); the kill goes ahead.
const COLLECT_DEADLINE: Duration = Duration::from_secs(30);

pub const TIMELINE: &str = "timeline.jsonl";
pub const INCIDENT: &str = "incident.json";
pub const IDENTIFICATION: &str = "identification.json";
/// The ransom notes found among the files the actor made: path and full text.
pub const NOTES: &str = "notes.json";

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
pub fn catalog(state: &StateDir) -> Result<Catalog> {
    let path = state.families();
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
    let made = inc.files.iter().filter_map(|f| match f.op {
        FileOp::Create => Some(f.path.as_str()),
        FileOp::Rename => f.to.as_deref(),
        FileOp::Write | FileOp::Truncate | FileOp::Delete => None,
    });
    let mut seen = std::collections::BTreeSet::new();
    for path in made.filter(|p| seen.insert(*p)).take(LOOKED_AT) {
        if samples.len() == SAMPLES {
            break;
        }
        let sample = match Sample::from_path(&mamori_event::names::decode(path)) {
            Ok(sample) => sample,
            Err(e) => {
                info!(id = inc.id, "not sampled: {e}");
                continue;
            }
        };
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
    pub state: StateDir,
    pub incident: Incident,
    pub timeline: Vec<Event>,
    pub memory_cap: Option<u64>,
    /// Processes to kill once collected (the kill policy): the evidence of
    /// a killed process is gone with it.
    pub then_kill: Option<Vec<ProcKey>>,
    /// A remote client to finish cutting off: its session is looked up
    /// before the bundle (which records it), its processes ended after.
    pub cut: Option<crate::clients::Cut>,
}

impl Job {
    /// Starts collecting; the agent waits for the handle before it exits,
    /// so a stop right after an incident does not cut its bundle short. The
    /// handle's thread ends within [`COLLECT_DEADLINE`], having killed the
    /// actor if asked to, whatever the collection is stuck on.
    pub fn spawn(mut self) -> Option<std::thread::JoinHandle<()>> {
        let spawned = std::thread::Builder::new().name("evidence".into()).spawn(move || {
            let id = self.incident.id.clone();
            let then_kill = self.then_kill.take();
            let procs = self.incident.procs.clone();
            let cut = self.cut.take().map(|mut cut| {
                cut.learn_session(&self.incident.procs);
                self.incident.client = Some(cut.cut.clone());
                cut
            });
            match within("evidence-collect", COLLECT_DEADLINE, move || self.run()) {
                Ok(Ok(dir)) => info!(id, bundle = %dir.display(), "evidence bundle written and sealed"),
                Ok(Err(e)) => warn!(id, "EVIDENCE: the bundle could not be written: {e:#}"),
                Err(e) => warn!(id, "EVIDENCE: {e:#}"),
            }
            match (then_kill, cut) {
                (Some(procs), Some(cut)) => cut.end(&procs),
                (Some(procs), None) => drop(mamori_response::kill(&procs)),
                // The stop failed (a client that reconnects for every file
                // had already closed the deciding connection): what is left
                // of it is ended all the same, and the cut is recorded.
                (None, Some(cut)) => cut.end(&procs),
                (None, None) => {}
            }
        });
        spawned.inspect_err(|e| warn!("EVIDENCE: cannot start the collector: {e}")).ok()
    }

    fn run(self) -> Result<PathBuf> {
        let dir = self.state.bundle(&self.incident.id);
        let key = mamori_evidence::SealKey::load_or_create(&self.state.seal_key())?;
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
        let incident = self.incident.clone();
        let (identification, notes) =
            within("evidence-identify", IDENTIFY_DEADLINE, move || identify_incident(&catalog, &incident))
                .unwrap_or_else(|e| {
                    warn!(id = self.incident.id, "EVIDENCE: {e:#}; the bundle is written without it");
                    (Identification::unknown(vec![format!("not identified: {e:#}")]), Vec::new())
                });
        extra.push((IDENTIFICATION.to_owned(), serde_json::to_vec_pretty(&identification)?));
        let notes: Vec<NoteFound> = notes.into_iter().map(|(path, text)| NoteFound { path, excerpt: text }).collect();
        extra.push((NOTES.to_owned(), serde_json::to_vec_pretty(&notes)?));
        let spec = mamori_evidence::CollectSpec {
            pids: self.incident.procs.iter().map(|k| k.pid).collect(),
            memory_cap: self.memory_cap,
            extra,
        };
        let bundle = mamori_evidence::collect(&dir, &spec, &key)?;
        Ok(bundle.dir)
    }
}

/// Runs `work` on a thread of its own and waits at most `limit` for it. A
/// thread still running then is left behind: what it may be stuck in (a read
/// from a FUSE server, a stopped process's memory) cannot be cancelled, and
/// it holds nothing the agent needs.
fn within<T: Send + 'static>(name: &str, limit: Duration, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .with_context(|| format!("cannot start {name}"))?;
    match rx.recv_timeout(limit) {
        Ok(value) => Ok(value),
        Err(mpsc::RecvTimeoutError::Timeout) => bail!("{name} did not finish within {} s", limit.as_secs()),
        Err(mpsc::RecvTimeoutError::Disconnected) => bail!("{name} failed (it panicked)"),
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
    let dir = StateDir::at(args.state).bundle(&id);
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

#[cfg(test)]
mod tests {
    use super::*;
    use mamori_store::{Action, ActorInfo, FileTouch};

    const NOTE: &str = "All your files are encrypted. Pay 1 Bitcoin to restore them; \
                        contact us by e-mail or all your data will be published.";

    fn incident(created: &[&Path]) -> Incident {
        Incident {
            id: "INC-TEST".into(),
            detected_at: "2025-01-01T00:00:00Z".into(),
            actor: ActorInfo { pid: 1, start: 1, exe: String::new(), cmdline: Vec::new(), uid: 0, started_ns: None },
            pids: Vec::new(),
            procs: vec![ProcKey { pid: 1, start: 1 }],
            action: Action::Suspended,
            score: 0.0,
            reasons: Vec::new(),
            files: created
                .iter()
                .map(|p| FileTouch { path: mamori_event::names::encode(p), op: FileOp::Create, to: None })
                .collect(),
            protected: Vec::new(),
            stop_latency_us: None,
            notes: Vec::new(),
            client: None,
        }
    }

    /// An ordinary user plants FIFOs named like notes (more of them than
    /// samples are kept) before the real note: the collector returns, and
    /// the real note is in the bundle's notes.
    #[test]
    fn planted_fifos_neither_stall_identification_nor_crowd_out_the_real_note() {
        let user = mamori_testuser::ordinary();
        let dir = tempfile::tempdir().unwrap();
        let folder = user.folder(dir.path(), "share");
        let fifos: Vec<PathBuf> = (0..SAMPLES + 1).map(|i| folder.join(format!("README_DECRYPT_{i}.txt"))).collect();
        for fifo in &fifos {
            user.run("mkfifo", &[fifo.to_str().unwrap()]);
        }
        let real = folder.join("HOW_TO_RESTORE.txt");
        user.run("sh", &["-c", &format!("printf '%s' '{NOTE}' > '{}'", real.display())]);
        let mut made: Vec<&Path> = fifos.iter().map(PathBuf::as_path).collect();
        made.push(&real);
        let inc = incident(&made);

        let identified =
            within("identify", Duration::from_secs(20), move || identify_incident(&Catalog::builtin(), &inc));
        let (_, notes) = identified.unwrap();
        assert_eq!(notes, vec![(mamori_event::names::encode(&real), NOTE.to_owned())]);
    }

    #[test]
    fn work_past_its_deadline_is_left_behind() {
        let (_hold, wait) = mpsc::channel::<()>();
        let stuck = within("stuck", Duration::from_millis(50), move || wait.recv().is_ok());
        assert!(stuck.unwrap_err().to_string().contains("did not finish"));
        assert_eq!(within("quick", Duration::from_secs(20), || 7).unwrap(), 7);
    }
}
