//! `mamori run`: the agent. Wires the sensor's events into the engine, and
//! the engine's verdicts into the response and the incident store.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mamori_alert::Cause;
use mamori_engine::{Engine, Verdict};
use mamori_event::ProcKey;
use mamori_event::{names, Event, EventKind};
use mamori_sensor::{Decision, Handler, Opened, Sensor, SensorConfig};
use mamori_store::{Action, ActorInfo, AgentLock, AgentStatus, ClientCut, CutKind, CutStep, Incident, Store};
use tracing::{error, info, warn};

use crate::alerting::Alerts;
use crate::canary;
use crate::clients;
use crate::evidence::{self, Recent};
use crate::handshake;
use crate::isolation;
use crate::settings::{ClientsSection, EvidenceSection, IsolateSection, Policy, Settings};
use crate::state::StateDir;
use crate::vaults::{self, Vaults};

#[derive(clap::Args)]
pub struct RunArgs {
    /// A folder to protect (repeatable).
    #[arg(long, value_name = "DIR")]
    pub protect: Vec<PathBuf>,
    /// State directory (incidents, status). Default /var/lib/mamori.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Configuration file (TOML). See mamori.example.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also write every event seen to this trace file (JSON lines), for `mamori replay`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

pub fn run(args: RunArgs) -> Result<ExitCode> {
    let settings = Settings::load(args.config.as_deref())?;
    let state = settings.state_dir(args.state.as_deref());
    let mut protect = args.protect.clone();
    protect.extend(settings.agent.protect.iter().cloned());
    let protect = canonical_folders(&protect)?;
    let (state_dir, store) = StateDir::for_agent(state)?;
    let state = state_dir.path().to_path_buf();
    let lock = AgentLock::acquire(&state)?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }

    let canaries = if settings.canary.enabled { canary::place(&protect, &settings.canary.names)? } else { Vec::new() };
    let vaults = if settings.vault.enabled { Some(Vaults::open(&state, &protect, &settings.vault)?) } else { None };
    let exclude = vec![state.clone()];
    let guard = if vaults.is_some() { vaults::vault_dirs(&state, &protect)? } else { Vec::new() };
    let unmarked = guard.iter().map(|vault| vault.join(mamori_vault::STAGING)).collect();
    let mut sensor = Sensor::new(SensorConfig { protect: protect.clone(), exclude, guard, unmarked })
        .context("cannot start the sensor")?;
    // Listening before protection is reported active: a restore started
    // once `mamori status` says so finds the socket.
    let settled = Arc::new(handshake::Settled::default());
    let handshake = handshake::Listener::start(&state, sensor.trusted(), settled.clone())?;
    let record = match &args.record {
        Some(path) => Some(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create trace file {}", path.display()))?,
        )),
        None => None,
    };
    let alerts = Alerts::start(&settings.alerts, &state).context("cannot start the alert outputs")?;
    let keeper =
        settings.canary.enabled.then(|| canary::Keeper::new(protect.clone(), settings.canary.names.clone(), &canaries));
    let mut agent = Agent::new(settings, store, lock, state_dir, protect.clone(), record, vaults)?;
    agent.decoys = keeper;
    agent.alerts = alerts;
    agent.settled = settled;
    for path in &canaries {
        agent.inject(EventKind::Canary { path: names::encode(path) })?;
    }
    agent.load_trusts()?;
    agent.publish(true);
    info!(
        folders = protect.len(),
        dirs = sensor.stats().dirs_marked,
        decoys = canaries.len(),
        state = %state.display(),
        "protection active"
    );
    let result = sensor.run(&mut agent, &stop);
    // Closing the fanotify groups first lets through any open a bundle
    // writer still waits on (its ransom notes are under the protected folders).
    drop(sensor);
    drop(handshake);
    // Bounded, well inside the service's TimeoutStopSec: a bundle still
    // being written is left to finish if it can (its actor stays suspended).
    let deadline = Instant::now() + STOP_WAIT;
    while agent.collectors.iter().any(|c| !c.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for collector in agent.collectors.drain(..) {
        if collector.is_finished() {
            let _ = collector.join();
        } else {
            warn!("an evidence bundle was still being written when the agent stopped; it may be incomplete");
        }
    }
    agent.publish(false);
    if let Some(alerts) = agent.alerts.take() {
        alerts.stop(match &result {
            Ok(()) => "the agent was asked to stop".to_owned(),
            Err(e) => format!("the sensor failed: {e}"),
        });
    }
    agent.flush_record()?;
    result.context("the sensor failed")?;
    info!("agent stopped");
    Ok(ExitCode::SUCCESS)
}

/// Every folder must exist and be a directory; paths are made absolute so
/// that incidents and trust entries name them unambiguously.
pub fn canonical_folders(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if dirs.is_empty() {
        bail!(
            "nothing to protect: give at least one --protect DIR (or `protect` in the [agent] section of the config)"
        );
    }
    let mut out = Vec::new();
    for dir in dirs {
        let canon = dir
            .canonicalize()
            .with_context(|| format!("cannot protect {}: it does not exist or cannot be reached", dir.display()))?;
        if !canon.is_dir() {
            bail!("cannot protect {}: it is not a directory", dir.display());
        }
        if !out.contains(&canon) {
            out.push(canon);
        }
    }
    Ok(out)
}

struct Agent {
    engine: Engine,
    store: Store,
    lock: AgentLock,
    state: StateDir,
    policy: Policy,
    evidence: EvidenceSection,
    isolate: IsolateSection,
    clients: ClientsSection,
    /// Cuts of remote clients finished on other threads, to write into their incidents.
    cut_updates: (std::sync::mpsc::Sender<clients::Update>, std::sync::mpsc::Receiver<clients::Update>),
    /// Recent events, for the timeline of an incident's bundle.
    recent: Recent,
    /// Bundles being written.
    collectors: Vec<std::thread::JoinHandle<()>>,
    guard: mamori_response::Guard,
    protected: Vec<PathBuf>,
    record: Option<BufWriter<File>>,
    started_at: String,
    incidents: u64,
    trusts_seen: usize,
    last_publish: Instant,
    last_trust_check: Instant,
    vaults: Option<Vaults>,
    /// Puts decoys back (`None` with decoys off).
    decoys: Option<canary::Keeper>,
    last_expire: Instant,
    /// Incidents of this run: operations in flight when the actor was
    /// stopped still land, and restore must know of them.
    open_incidents: Vec<OpenIncident>,
    /// The alert outputs (`None` with none configured).
    alerts: Option<Alerts>,
    /// Told at each tick, for the commands waiting to see its events handled.
    settled: Arc<handshake::Settled>,
    /// Queue overflows already told.
    overflows_told: u64,
    /// Each protected folder as it was at the start (device, inode): one
    /// removed or replaced is no longer watched.
    folders: Vec<(PathBuf, u64, u64)>,
    last_folder_check: Instant,
}

/// An incident of this run, followed as its actor's last operations land.
struct OpenIncident {
    id: String,
    root: ProcKey,
    /// How many files and processes it lists.
    files: usize,
    procs: usize,
    /// Its actor is a remote client, whose new connections join it.
    client: bool,
}

/// How long a stopping agent waits for evidence bundles being written.
const STOP_WAIT: Duration = Duration::from_secs(5);
const PUBLISH_EVERY: Duration = Duration::from_secs(1);
const TRUST_EVERY: Duration = Duration::from_secs(2);
const EXPIRE_EVERY: Duration = Duration::from_secs(60);
const FOLDERS_EVERY: Duration = Duration::from_secs(5);

impl Agent {
    fn new(
        settings: Settings,
        store: Store,
        lock: AgentLock,
        state: StateDir,
        protected: Vec<PathBuf>,
        record: Option<BufWriter<File>>,
        vaults: Option<Vaults>,
    ) -> Result<Agent> {
        let incidents = store.incidents()?.len() as u64;
        let folders = protected
            .iter()
            .map(|p| {
                let meta = p.metadata().with_context(|| format!("cannot read {}", p.display()))?;
                Ok((p.clone(), meta.dev(), meta.ino()))
            })
            .collect::<Result<Vec<_>>>()?;
        let guard = mamori_response::Guard::new();
        let mut engine = Engine::new(settings.engine());
        engine.spare(guard.ancestors());
        Ok(Agent {
            engine,
            store,
            lock,
            state,
            policy: settings.response.policy,
            evidence: settings.evidence.clone(),
            isolate: settings.isolate.clone(),
            clients: settings.clients.clone(),
            cut_updates: std::sync::mpsc::channel(),
            recent: Recent::default(),
            collectors: Vec::new(),
            guard,
            protected,
            record,
            started_at: now_rfc3339(),
            incidents,
            trusts_seen: 0,
            last_publish: Instant::now(),
            last_trust_check: Instant::now(),
            vaults,
            decoys: None,
            last_expire: Instant::now(),
            open_incidents: Vec::new(),
            alerts: None,
            settled: Arc::default(),
            overflows_told: 0,
            folders,
            last_folder_check: Instant::now(),
        })
    }

    /// An event that comes from the agent, not the kernel (decoys, trust).
    fn inject(&mut self, kind: EventKind) -> Result<()> {
        let ev = Event { time_ns: now_ns(), proc: None, kind };
        self.record(&ev);
        self.engine.process(&ev);
        Ok(())
    }

    fn record(&mut self, ev: &Event) {
        if let Some(out) = &mut self.record {
            let line = serde_json::to_string(ev).expect("events always serialise");
            if let Err(e) = writeln!(out, "{line}") {
                error!("cannot write the trace, recording stops: {e}");
                self.record = None;
            }
        }
    }

    fn flush_record(&mut self) -> Result<()> {
        if let Some(out) = &mut self.record {
            out.flush().context("cannot write the trace")?;
        }
        Ok(())
    }

    /// Programs trusted after a false positive: tell the engine, and forgive
    /// the actor of the incident that was resumed.
    fn load_trusts(&mut self) -> Result<()> {
        let trusts = self.store.trusts()?;
        for t in trusts.iter().skip(self.trusts_seen) {
            if let Err(why) = self.honoured(t) {
                warn!(exe = %t.exe, dir = %t.dir, "trust not honoured: {why}");
                continue;
            }
            info!(exe = %t.exe, dir = %t.dir, "trusting program for folder");
            self.inject(EventKind::Trust { exe: t.exe.clone(), dir: t.dir.clone() })?;
            if let Some(inc) = t.incident.as_deref().and_then(|id| self.store.incident(id).ok().flatten()) {
                if let Some(root) = inc.procs.first() {
                    self.engine.absolve(*root);
                }
            }
        }
        self.trusts_seen = trusts.len();
        Ok(())
    }

    /// Whether trust `t` still names the one program that was trusted. A
    /// program inside a protected folder is never honoured: users write
    /// there, and this thread must not open protected files (see `canary::Keeper`).
    fn honoured(&self, t: &mamori_store::Trust) -> std::result::Result<(), String> {
        let exe = &names::decode(&t.exe);
        if self.protected.iter().any(|p| exe.starts_with(p)) {
            return Err("the program lies in a protected folder".into());
        }
        if let Some(why) = crate::trust::refusal(exe) {
            return Err(why);
        }
        let Some(want) = &t.exe_hash else {
            return Err("recorded without the program's hash (by an older mamori): resume the incident again".into());
        };
        match crate::trust::exe_hash(exe) {
            Ok(have) if have == *want => Ok(()),
            Ok(_) => Err("the program was changed since it was trusted".into()),
            Err(e) => Err(format!("cannot read the program: {e}")),
        }
    }

    fn publish(&mut self, active: bool) {
        let stats = self.engine.stats();
        let status = AgentStatus {
            pid: std::process::id(),
            started_at: self.started_at.clone(),
            protected: self.protected.iter().map(names::encode).collect(),
            active,
            events: stats.events,
            overflows: stats.overflows,
            incidents: self.incidents,
            updated_at: now_rfc3339(),
            vault: self.vaults.as_ref().map(Vaults::status),
        };
        if let Err(e) = self.lock.publish(&status) {
            warn!("cannot publish the agent status: {e}");
        }
        self.last_publish = Instant::now();
    }

    /// Adds to each incident of this run the files its actor touched after the verdict.
    /// A judged client's new connections (made before its block took, or
    /// from behind it) are stopped and ended like its first, and join its
    /// incident; so do the steps of its cut finished on other threads.
    fn complete_incidents(&mut self) {
        let mut cuts: Vec<clients::Update> = self.cut_updates.1.try_iter().collect();
        for open in &mut self.open_incidents {
            let (id, root) = (&open.id, open.root);
            let touched = self.engine.touched(root).filter(|t| t.len() != open.files);
            let members = if open.client { self.engine.members(root) } else { Vec::new() };
            let cut = cuts.iter().position(|(i, _)| i == id).map(|at| cuts.swap_remove(at).1);
            if touched.is_none() && cut.is_none() && members.len() <= open.procs {
                continue;
            }
            let Ok(Some(mut inc)) = self.store.incident(id) else { continue };
            let mut changed = cut.is_some();
            if let Some(cut) = cut {
                let reconnected =
                    inc.client.take().into_iter().flat_map(|c| c.steps).filter(|s| s.kind == CutKind::Reconnected);
                let mut steps: Vec<CutStep> = cut.steps.into_iter().chain(reconnected).collect();
                steps.sort_by(|a, b| a.at.cmp(&b.at));
                inc.client = Some(ClientCut { steps, ..cut });
            }
            if let Some(client) = &mut inc.client {
                let joined: Vec<ProcKey> = members.into_iter().filter(|k| !inc.procs.contains(k)).collect();
                for key in joined {
                    let ended = end_connection(key, &self.guard);
                    client.steps.push(clients::step(CutKind::Reconnected, ended));
                    inc.procs.push(key);
                    inc.pids.push(key.pid);
                    changed = true;
                }
            }
            if let Some(touched) = touched {
                inc.files = touched.to_vec();
                changed = true;
            }
            if !changed {
                continue;
            }
            match self.store.update_incident(&inc) {
                Ok(()) => (open.files, open.procs) = (inc.files.len(), inc.procs.len()),
                Err(e) => warn!("cannot update incident {id}: {e}"),
            }
        }
    }

    /// A client an administrator unblocked may work again: its verdict is
    /// forgotten, and its incident is no longer followed.
    fn forgive_unblocked(&mut self) {
        let store = &self.store;
        let engine = &mut self.engine;
        self.open_incidents.retain(|OpenIncident { id, root, client, .. }| {
            // Only a client is ever unblocked: no other incident is read.
            let unblocked = *client
                && store
                    .incident(id)
                    .ok()
                    .flatten()
                    .and_then(|i| i.client)
                    .is_some_and(|c| c.steps.iter().any(|s| s.kind == CutKind::Unblocked));
            if unblocked {
                info!(id, "client unblocked: its verdict is lifted");
                engine.absolve(*root);
            }
            !unblocked
        });
    }

    /// Notes in each incident of this run that before-images stopped being
    /// kept since it was written: what the responder restores may lack them.
    fn note_vault_alerts(&mut self) {
        let Some(vaults) = &mut self.vaults else { return };
        let alerts = vaults.take_alerts();
        if alerts.is_empty() {
            return;
        }
        if let Some(tell) = &mut self.alerts {
            tell.degraded(Cause::VaultSkipped, alerts.join("\n"));
        }
        for OpenIncident { id, .. } in &self.open_incidents {
            let Ok(Some(mut inc)) = self.store.incident(id) else { continue };
            inc.notes.extend(alerts.iter().cloned());
            if let Err(e) = self.store.update_incident(&inc) {
                warn!("cannot update incident {id}: {e}");
            }
        }
    }

    /// Tells of a queue overflow or a protected folder gone (the vault's
    /// skipped copies are told as they are noted).
    fn tell_degraded(&mut self) {
        let Some(alerts) = &mut self.alerts else { return };
        let overflows = self.engine.stats().overflows;
        if overflows > self.overflows_told {
            self.overflows_told = overflows;
            alerts.degraded(
                Cause::QueueOverflow,
                format!("the kernel's event queue overflowed {overflows} time(s) since the agent started"),
            );
        }
        if self.last_folder_check.elapsed() < FOLDERS_EVERY {
            return;
        }
        self.last_folder_check = Instant::now();
        for (path, dev, ino) in &self.folders {
            let now = std::fs::symlink_metadata(path).map(|m| (m.dev(), m.ino()));
            if now.as_ref().ok() != Some(&(*dev, *ino)) {
                let why = match now {
                    Err(e) => format!("{}: {e}", path.display()),
                    Ok(_) => format!("{} was replaced by another folder, which is not watched", path.display()),
                };
                alerts.degraded(Cause::FolderGone, format!("{why}; restart mamori once the folder is back"));
            }
        }
    }

    /// Releases old copies, except those of files an incident names.
    fn expire(&mut self) {
        let Some(vaults) = &mut self.vaults else { return };
        let needed: std::collections::HashSet<String> = match self.store.incidents() {
            Ok(incs) => incs
                .into_iter()
                .flat_map(|i| i.files.into_iter().flat_map(|f| std::iter::once(f.path).chain(f.to)))
                .collect(),
            // Without the incidents we cannot know what is needed: keep everything.
            Err(_) => return,
        };
        vaults.expire(now_ns(), &|path| needed.contains(path));
    }

    /// Stops each root's tree; the processes of all, roots first.
    fn suspend(&self, roots: &[ProcKey]) -> Result<mamori_response::Suspension, mamori_response::ResponseError> {
        let mut all: Option<mamori_response::Suspension> = None;
        let mut failed = None;
        for &root in roots {
            match (mamori_response::suspend_tree(root, &self.guard), &mut all) {
                (Ok(s), None) => all = Some(s),
                (Ok(s), Some(all)) => {
                    all.procs.extend(s.procs);
                    all.stop_only = all.stop_only.take().or(s.stop_only);
                }
                // A connection that ended on its own needs no stop.
                (Err(e), _) => failed = failed.or(Some(e)),
            }
        }
        match (all, failed) {
            (Some(all), _) => Ok(all),
            (None, Some(e)) => Err(e),
            (None, None) => Err(mamori_response::ResponseError::Gone(
                roots.first().copied().unwrap_or(ProcKey { pid: 0, start: 0 }),
            )),
        }
    }

    /// Stops the actor at once, then writes the incident down.
    fn respond(&mut self, verdict: Verdict, deciding_event_ns: u64) {
        let client = verdict.actor_info.as_ref().and_then(|i| i.client.clone());
        // A client's every connection is a process of its own, not a tree.
        let roots = if client.is_some() { verdict.procs.clone() } else { vec![verdict.actor] };
        let stopped = self.suspend(&roots);
        let latency_us = now_ns().saturating_sub(deciding_event_ns) / 1000;
        let mut notes = Vec::new();
        let stopped = stopped.map(|s| {
            if let Some(e) = s.stop_only {
                warn!("the actor is held by SIGSTOP alone, which any process of its user can undo with SIGCONT: {e}");
                notes.push(format!("held by SIGSTOP alone, not frozen (a SIGCONT from its user resumes it): {e}"));
            }
            s.procs
        });
        let mut cut = client.map(|client| {
            let mut steps = Vec::new();
            let stopped_pids = stopped.as_ref().map(|p| p.iter().map(|k| k.pid.to_string()).collect::<Vec<_>>());
            steps.push(clients::step(
                CutKind::Stopped,
                stopped_pids
                    .map(|p| format!("server process(es) {} stopped", p.join(", ")))
                    .map_err(|e| anyhow::anyhow!("{e}")),
            ));
            let server = verdict.actor_info.as_ref().and_then(|i| i.parent);
            let places: Vec<ProcKey> =
                std::iter::once(verdict.actor).chain(verdict.procs.iter().copied()).chain(server).collect();
            let blocked = clients::block(&client, &places, &self.clients);
            // The master outlives the connection: where `unblock` finds the block.
            if let (Ok(_), Some(server)) = (&blocked, verdict.actor_info.as_ref().and_then(|i| i.parent)) {
                if let Err(e) = self.state.note_blocked_in(server) {
                    warn!("{e:#}");
                }
            }
            steps.push(clients::step(CutKind::Blocked, blocked));
            clients::Cut {
                incident: String::new(),
                cut: ClientCut { client, server: verdict.actor_info.as_ref().and_then(|i| i.parent), steps },
                settings: self.clients.clone(),
                updates: self.cut_updates.0.clone(),
            }
        });
        // With the kill policy, the bundle is collected first: a killed
        // process takes its evidence with it. A client's server processes
        // are always ended once it is written: the client is cut off by
        // then, and ending them closes the files it held open.
        let mut then_kill = None;
        let policy = if cut.is_some() { Policy::Kill } else { self.policy };
        let (action, procs) = match stopped {
            Ok(procs) => match policy {
                Policy::Suspend => (Action::Suspended, procs),
                Policy::Kill if self.evidence.enabled => {
                    then_kill = Some(procs.clone());
                    (Action::Killed, procs)
                }
                // Without a bundle to wait for, the cut's own thread ends them.
                Policy::Kill if cut.is_some() => (Action::Killed, procs),
                Policy::Kill => {
                    let killed = mamori_response::kill(&procs);
                    if let Some(e) = killed.cgroup {
                        warn!("{e}");
                    }
                    (Action::Killed, killed.procs)
                }
            },
            Err(e) => {
                notes.push(format!("could not stop the actor: {e}"));
                (Action::Failed, Vec::new())
            }
        };
        if self.engine.stats().overflows > 0 {
            notes.push(format!(
                "the kernel event queue overflowed {} time(s) since the agent started: some file operations may be missing",
                self.engine.stats().overflows
            ));
        }
        // Alerts raised until now go to the incidents already open; this
        // one gets the whole tally instead.
        self.note_vault_alerts();
        notes.extend(self.vaults.as_ref().and_then(Vaults::skip_summary));
        let info = verdict.actor_info.clone();
        let incident = Incident {
            id: self.store.next_incident_id().unwrap_or_else(|_| format!("INC-{}", now_ns())),
            detected_at: rfc3339(verdict.time_ns),
            actor: ActorInfo {
                pid: verdict.actor.pid,
                start: verdict.actor.start,
                exe: info.as_ref().map(|i| i.exe.clone()).unwrap_or_default(),
                cmdline: info.as_ref().map(|i| i.cmdline.clone()).unwrap_or_default(),
                uid: info.as_ref().map_or(u32::MAX, |i| i.uid),
                // A client's first connection may be older than the one that crossed.
                started_ns: roots.iter().filter_map(|k| mamori_proc::started_ns(k.start)).min(),
            },
            pids: procs.iter().map(|k| k.pid).collect(),
            procs: {
                let mut procs = if procs.is_empty() { vec![verdict.actor] } else { procs };
                // A client's connections that ended before the verdict are
                // still its: restore looks for what their opens kept.
                if cut.is_some() {
                    procs.extend(verdict.procs.iter().filter(|k| !procs.contains(k)).copied().collect::<Vec<_>>());
                }
                procs
            },
            action,
            score: verdict.score,
            reasons: verdict.reasons,
            files: verdict.files,
            protected: self.protected.iter().map(names::encode).collect(),
            stop_latency_us: Some(latency_us),
            notes,
            client: cut.as_ref().map(|c| c.cut.clone()),
        };
        warn!(
            id = %incident.id,
            pid = incident.actor.pid,
            exe = %incident.actor.exe,
            action = ?incident.action,
            processes = incident.pids.len(),
            latency_us,
            "RANSOMWARE STOPPED: {}",
            incident.reasons.first().map(crate::ui::reason).unwrap_or_default()
        );
        let mut incident = incident;
        if self.isolate.on_incident {
            incident.notes.push(isolation::on_incident(&self.isolate));
        }
        if let Err(e) = self.store.add_incident(&incident) {
            error!("cannot store incident {}: {e}", incident.id);
        }
        if let Some(alerts) = &self.alerts {
            alerts.incident(&incident);
        }
        if let Some(cut) = &mut cut {
            cut.incident = incident.id.clone();
        }
        if self.evidence.enabled {
            self.collectors.retain(|c| !c.is_finished());
            let collector = evidence::Job {
                state: self.state.clone(),
                timeline: self.recent.of_actor(verdict.actor, &incident.procs),
                incident: incident.clone(),
                memory_cap: self.evidence.memory_image.then(|| self.evidence.memory_cap_mib.saturating_mul(1 << 20)),
                then_kill,
                cut,
            }
            .spawn();
            self.collectors.extend(collector);
        } else if let Some(cut) = cut {
            cut.spawn(incident.procs.clone());
        }
        self.open_incidents.push(OpenIncident {
            id: incident.id.clone(),
            root: verdict.actor,
            files: incident.files.len(),
            procs: incident.procs.len(),
            client: incident.client.is_some(),
        });
        self.incidents += 1;
        self.publish(true);
    }
}

impl Handler for Agent {
    fn event(&mut self, ev: &Event, opened: Option<Opened<'_>>) -> Decision {
        // Keep the before-image while the opener still waits: nothing is written yet.
        let mut by_range = false;
        // The event with the facts of a held file whose name it takes.
        let mut told = None;
        if let Some(vaults) = &mut self.vaults {
            let engine = &self.engine;
            let changed = |p| engine.has_changed_files(p);
            let (time_ns, proc) = (ev.time_ns, ev.proc);
            match (&ev.kind, opened) {
                (EventKind::Open { path, mode, .. }, Some(opened)) => {
                    by_range = vaults.keep(opened, path, *mode, time_ns, proc, &changed);
                }
                (EventKind::Delete { path, dir: false, before: None }, _) => {
                    let before = vaults.gone(path, time_ns, proc);
                    told =
                        before.map(|before| EventKind::Delete { path: path.clone(), dir: false, before: Some(before) });
                }
                (EventKind::Rename { from, to, dir, replaced: None }, _) => {
                    let replaced = vaults.renamed(from, to, *dir, time_ns, proc);
                    told = replaced.map(|r| EventKind::Rename {
                        from: from.clone(),
                        to: to.clone(),
                        dir: *dir,
                        replaced: Some(r),
                    });
                }
                _ => {}
            }
        }
        let told = told.map(|kind| Event { kind, ..*ev });
        let ev = told.as_ref().unwrap_or(ev);
        self.record(ev);
        if self.evidence.enabled {
            self.recent.push(ev);
        }
        if let (EventKind::Guarded { path }, None) = (&ev.kind, ev.proc) {
            // Nobody left to stop, but someone went for the backups: say so.
            warn!(path, "VAULT touched by a process that exited before it could be identified");
        }
        if let Some(verdict) = self.engine.process(ev) {
            self.respond(verdict, ev.time_ns);
        }
        match (&ev.kind, ev.proc) {
            // A stopped actor's threads may still have opens in flight: refuse them.
            (EventKind::Open { .. }, Some(key)) if self.engine.stats().verdicts > 0 && self.engine.is_judged(key) => {
                Decision::Deny
            }
            _ if by_range => Decision::AllowWatchWrites,
            _ => Decision::Allow,
        }
    }

    fn is_suspect(&self, proc: mamori_event::ProcKey) -> bool {
        self.engine.is_suspect(proc)
    }

    fn facts_at_read(&self, proc: Option<mamori_event::ProcKey>, meta: &std::fs::Metadata) -> bool {
        let held = self.vaults.as_ref().is_some_and(|vaults| vaults.holds_read(meta));
        !held || proc.is_some_and(|p| self.engine.has_changed_files(p))
    }

    fn watches_writes(&self, dev: u64, ino: u64) -> bool {
        self.vaults.as_ref().is_some_and(|vaults| vaults.kept_by_range(dev, ino))
    }

    fn weighs_new_files(&self, proc: mamori_event::ProcKey) -> bool {
        self.engine.weighs_new_files(proc)
    }

    fn before_write(&mut self, file: &std::fs::File, offset: u64, len: u64, reading: &mut dyn FnMut() -> bool) -> bool {
        self.vaults.as_mut().is_some_and(|vaults| vaults.keep_range(file, offset, len, reading))
    }

    fn tick(&mut self) {
        for path in self.decoys.as_mut().map(canary::Keeper::tick).unwrap_or_default() {
            info!(decoy = %path.display(), "decoy put back");
            if let Err(e) = self.inject(EventKind::Canary { path: names::encode(path) }) {
                warn!("{e:#}");
            }
        }
        self.complete_incidents();
        self.settled.tick();
        if let Some(vaults) = &mut self.vaults {
            let engine = &self.engine;
            vaults.let_go_expired(now_ns(), &|p| engine.has_changed_files(p));
            vaults.prepare();
        }
        self.note_vault_alerts();
        self.tell_degraded();
        if self.last_publish.elapsed() >= PUBLISH_EVERY {
            self.publish(true);
        }
        if self.last_expire.elapsed() >= EXPIRE_EVERY {
            self.last_expire = Instant::now();
            self.expire();
        }
        if self.last_trust_check.elapsed() >= TRUST_EVERY {
            self.last_trust_check = Instant::now();
            if let Err(e) = self.load_trusts() {
                warn!("cannot read trusted programs: {e:#}");
            }
            self.forgive_unblocked();
        }
    }
}

/// Stops and ends a judged client's new connection at once: the
/// client's case is in its first connection's bundle already.
fn end_connection(key: ProcKey, guard: &mamori_response::Guard) -> Result<String> {
    mamori_response::suspend_tree(key, guard)?;
    let ended = mamori_response::kill(&[key]);
    if ended.procs.is_empty() {
        bail!("its server process {} had already exited", key.pid);
    }
    Ok(format!("it connected again (server process {}), which was ended", key.pid))
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

pub fn rfc3339(ns: u64) -> String {
    jiff::Timestamp::from_nanosecond(ns as i128).map(|t| t.to_string()).unwrap_or_default()
}

pub fn now_rfc3339() -> String {
    rfc3339(now_ns())
}
