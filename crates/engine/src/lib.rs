//! mamori's detection engine: events in, verdicts out.
//!
//! The engine is pure: it does no I/O, reads no clock and uses no randomness,
//! so a recorded trace replays to the same verdicts on any machine. The
//! sensor does the looking (paths, processes, content facts); the engine only
//! weighs what it is told.
//!
//! Evidence about a file is credited to the process that touched it, to
//! each of its ancestors up to its session leader, and to its kin: every
//! process of the same user and executable, across sessions (`procs.rs`).
//! A verdict names the deepest of those whose score crosses the threshold,
//! so a ransomware binary that forks one child per file is judged as the
//! parent, the shell that started it is left alone, and one that starts
//! each file's work in a session of its own is judged as all of them. A
//! server's process for one remote client (a Samba smbd child) is credited
//! to that client alone, across its connections, never to the server.

mod actor;
pub mod config;
mod judge;
mod procs;
mod recent;

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use mamori_event::{ContentFacts, Event, EventKind, FileOp, FileTouch, Indicator, OpenMode, ProcInfo, ProcKey, Reason};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde::{Deserialize, Serialize};

use actor::{ActorState, Pending};
pub use config::Config;
use procs::{ActorId, Procs};
use recent::Recent;

/// A config that cannot be used, with the key that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid config: `{key}` {problem} (got {value})")]
    Invalid { key: &'static str, problem: &'static str, value: String },
}

/// The engine's judgement that an actor is ransomware.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The root of the offending process tree.
    pub actor: ProcKey,
    pub actor_info: Option<ProcInfo>,
    /// The process whose event tipped the balance.
    pub trigger: Option<ProcKey>,
    /// Every process known to be part of the actor, `actor` first: the
    /// response stops each one's tree. More than `actor` when the actor
    /// spans sessions (one user's executable started with `setsid` per
    /// file), whose processes need not descend from `actor`.
    #[serde(default)]
    pub procs: Vec<ProcKey>,
    pub time_ns: u64,
    pub score: f64,
    pub damaged_files: usize,
    /// One per indicator found, in the order first found.
    pub reasons: Vec<Reason>,
    pub files: Vec<FileTouch>,
}

/// Counters that tell whether the engine is seeing what it should.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    pub events: u64,
    pub unattributed: u64,
    pub overflows: u64,
    pub verdicts: u64,
}

/// How much the engine remembers; bounded so a long-running agent stays flat.
const PROC_GENERATION: usize = 32 * 1024;
const FILE_GENERATION: usize = 32 * 1024;
/// Full before-facts can hold hundreds of block samples: keep fewer.
const BEFORE_GENERATION: usize = 2048;
/// The race it covers spans a handful of events.
const UNJUDGED_GENERATION: usize = 256;
/// How often (in events) idle actors are swept, and how long idle means.
const SWEEP_EVERY: u64 = 8192;
const IDLE_NS: u64 = 120_000_000_000;

/// What the engine remembers of any file it saw opened: enough to tell,
/// when it is deleted or replaced, whether something of value was lost.
#[derive(Clone, Copy)]
struct Seen {
    meaningful: bool,
    size: u64,
}

impl Seen {
    fn of(facts: &ContentFacts) -> Seen {
        Seen { meaningful: facts.kind.is_meaningful(), size: facts.size }
    }
}

/// The detection engine. Feed it events with [`Engine::process`].
pub struct Engine {
    cfg: Config,
    half_life_ns: f64,
    procs: Procs,
    actors: FxHashMap<ActorId, ActorState>,
    /// Full facts of files opened for writing, until they are closed.
    befores: Recent<u64, ContentFacts>,
    /// A summary of every file opened recently.
    seen: Recent<u64, Seen>,
    /// Close-after-write facts that found no before-image under their path:
    /// the file was renamed after the close and the rename is not processed
    /// yet (the two come from different kernel queues). Judged at the rename.
    unjudged: Recent<u64, ContentFacts>,
    /// The latest content written to a path, summarised: is it ciphertext-like, and its size.
    written: Recent<u64, (bool, u64)>,
    canaries: FxHashSet<u64>,
    trusts: Vec<(String, String)>,
    stats: EngineStats,
    chain: Vec<ActorId>,
}

impl Engine {
    pub fn new(cfg: Config) -> Engine {
        let half_life_ns = cfg.detect.half_life_secs * 1e9;
        Engine {
            cfg,
            half_life_ns,
            procs: Procs::with_capacity(PROC_GENERATION),
            actors: FxHashMap::default(),
            befores: Recent::new(BEFORE_GENERATION),
            seen: Recent::new(FILE_GENERATION),
            unjudged: Recent::new(UNJUDGED_GENERATION),
            written: Recent::new(FILE_GENERATION),
            canaries: FxHashSet::default(),
            trusts: Vec::new(),
            stats: EngineStats::default(),
            chain: Vec::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    pub fn proc_info(&self, key: &ProcKey) -> Option<&ProcInfo> {
        self.procs.get(key)
    }

    /// Whether this process, or an ancestor it is credited to, was already judged.
    pub fn is_judged(&self, key: ProcKey) -> bool {
        self.any_in_chain(key, |_, a| a.judged)
    }

    /// Whether this process, or an ancestor it is credited to, has anything
    /// against it: the sensor then lets it run only as fast as it is judged.
    pub fn is_suspect(&self, key: ProcKey) -> bool {
        self.any_in_chain(key, |_, a| a.judged || a.has_evidence())
    }

    /// Whether the files this process creates are worth weighing when they
    /// are closed. Not for a process that, with every ancestor it is
    /// credited to, has neither evidence against it nor ever touched a file
    /// that existed: whatever it writes is new, none of it can be the user's
    /// data encrypted, and weighing every file of a program that only
    /// creates them was a quarter of what mamori cost it. What the same
    /// program did in another session puts nothing within this one's reach.
    pub fn weighs_new_files(&self, key: ProcKey) -> bool {
        self.any_in_chain(key, |id, a| {
            a.judged || a.has_evidence() || (a.touched_existing && !matches!(id, ActorId::Kin { .. }))
        })
    }

    /// Whether this process, or an ancestor it is credited to, has evidence
    /// against it or has changed a file that existed (deleted, renamed or
    /// opened one with content to write): the files it only read are then
    /// worth keeping on disk, as it may change them next. A backup or an
    /// indexer, which only reads, never is.
    pub fn has_changed_files(&self, key: ProcKey) -> bool {
        self.any_in_chain(key, |_, a| a.judged || a.has_evidence() || a.changed_existing)
    }

    /// Whether `f` holds for this process or an ancestor it is credited to.
    fn any_in_chain(&self, key: ProcKey, f: impl Fn(ActorId, &ActorState) -> bool) -> bool {
        let mut chain = Vec::new();
        self.procs.chain(key, &mut chain);
        chain.iter().any(|id| self.actors.get(id).is_some_and(|a| f(*id, a)))
    }

    /// Weighs one event; returns a verdict when it tips an actor over the threshold.
    pub fn process(&mut self, ev: &Event) -> Option<Verdict> {
        self.stats.events += 1;
        let key = match (&ev.kind, ev.proc) {
            (EventKind::Proc(info), _) => {
                if let Some((first, kin)) = self.procs.insert(info.clone()) {
                    self.seed_kin(first, kin);
                }
                return None;
            }
            (EventKind::Canary { path }, _) => {
                self.canaries.insert(hash(path));
                return None;
            }
            (EventKind::Trust { exe, dir }, _) => {
                self.trusts.push((exe.clone(), dir.clone()));
                return None;
            }
            (EventKind::Overflow { lost }, _) => {
                self.stats.overflows += lost;
                return None;
            }
            (_, None) => {
                self.stats.unattributed += 1;
                return None;
            }
            (_, Some(key)) => key,
        };
        if self.trusted(key, &ev.kind) {
            return None;
        }
        if self.stats.events.is_multiple_of(SWEEP_EVERY) {
            self.sweep(ev.time_ns);
        }
        let mut chain = std::mem::take(&mut self.chain);
        self.procs.chain(key, &mut chain);
        // What a judged actor still does (operations in flight when it was
        // stopped) is its own: crediting it to its ancestors would judge the
        // shell that started it next.
        if let Some(pos) = chain.iter().position(|id| self.actors.get(id).is_some_and(|a| a.judged)) {
            match chain[pos] {
                ActorId::Proc(_) => chain.truncate(pos + 1),
                ActorId::Kin { .. } | ActorId::Client(_) => drop(chain.drain(..pos)),
            }
        }
        self.observe(ev, &chain);
        for id in &chain {
            if let Some(a) = self.actors.get_mut(id) {
                a.seen(ev.time_ns);
                // Most events come from a process already listed: a lookup is cheaper than a reinsert.
                if !matches!(id, ActorId::Proc(_)) && !a.members.contains(&key) {
                    a.members.insert(key, ());
                }
            }
        }
        let verdict = self.decide(key, ev.time_ns, &chain);
        self.chain = chain;
        verdict
    }

    /// A program's second session makes it a kin actor: the first
    /// session's evidence (its leader holds all of it) is the kin's start.
    /// A judged session stays its own actor; the kin starts afresh.
    fn seed_kin(&mut self, first: ProcKey, kin: ActorId) {
        let Some(state) = self.actors.get(&ActorId::Proc(first)).filter(|s| !s.judged) else {
            return;
        };
        let mut seeded = state.clone();
        seeded.members.insert(first, ());
        self.actors.entry(kin).or_insert(seeded);
    }

    fn trusted(&self, key: ProcKey, kind: &EventKind) -> bool {
        if self.trusts.is_empty() {
            return false;
        }
        let Some(info) = self.procs.get(&key) else {
            return false;
        };
        // A decoy is nobody's work: trust never covers touching one (nor the
        // vault, whose events are not listed here).
        let path = match kind {
            EventKind::Open { path, .. }
            | EventKind::CloseWrite { path, .. }
            | EventKind::Create { path, .. }
            | EventKind::Delete { path, .. } => path,
            EventKind::Rename { from, .. } if self.canaries.contains(&hash(from)) => return false,
            EventKind::Rename { to, .. } => to,
            _ => return false,
        };
        !self.canaries.contains(&hash(path))
            && self.trusts.iter().any(|(exe, dir)| *exe == info.exe && under(path, dir))
    }

    /// Turns one event into per-file findings and credits them along the chain.
    fn observe(&mut self, ev: &Event, chain: &[ActorId]) {
        let t = ev.time_ns;
        match &ev.kind {
            EventKind::Open { path, mode, before } => {
                let h = hash(path);
                if mode.writes() && self.canaries.contains(&h) {
                    self.each(chain, |a, cfg, hl| a.hit_canary(cfg.weights.canary, path, t, hl));
                }
                if let Some(before) = before {
                    self.seen.insert(h, Seen::of(before));
                    if mode.writes() {
                        self.befores.insert(h, before.clone());
                    }
                }
                let op = match mode {
                    OpenMode::Truncate => Some(FileOp::Truncate),
                    OpenMode::Write => Some(FileOp::Write),
                    OpenMode::Read | OpenMode::Unknown => None,
                };
                // Facts come with every open of a file with content to
                // change; a read may come without them (see `EventKind::Open`).
                let existing = before.is_some() || *mode == OpenMode::Read;
                let changed = before.is_some() && op.is_some();
                self.each(chain, |a, _, _| {
                    a.read.insert(h, ());
                    a.touched_existing |= existing;
                    a.changed_existing |= changed;
                    if let Some(op) = op {
                        a.touch(h, op, path, None);
                    }
                });
            }
            EventKind::CloseWrite { path, after } => self.closed_after_write(chain, path, after, t),
            EventKind::Create { path, dir } => {
                if !dir {
                    let h = hash(path);
                    self.befores.remove(&h);
                    self.each(chain, |a, _, _| {
                        a.created.insert(h, ());
                        a.touch(h, FileOp::Create, path, None);
                    });
                }
            }
            EventKind::Delete { path, dir, before } => {
                if !dir {
                    self.deleted(chain, path, before.as_ref(), t);
                }
            }
            EventKind::Rename { from, to, dir, replaced } => {
                if !dir {
                    self.renamed(chain, from, to, replaced.as_ref(), t);
                }
            }
            // Going after the copies that would undo the damage: as damning as a decoy.
            EventKind::Guarded { path } => {
                self.each(chain, |a, cfg, hl| a.hit_guard(cfg.weights.canary, path, t, hl));
            }
            EventKind::Proc(_) | EventKind::Canary { .. } | EventKind::Trust { .. } | EventKind::Overflow { .. } => {}
        }
    }

    fn closed_after_write(&mut self, chain: &[ActorId], path: &str, after: &ContentFacts, t: u64) {
        let h = hash(path);
        let cipher = judge::ciphertext_like(&self.cfg, after);
        let archive = judge::encrypted_archive(&self.cfg, after);
        self.written.insert(h, (cipher, after.size));
        if self.canaries.contains(&h) {
            self.each(chain, |a, cfg, hl| a.hit_canary(cfg.weights.canary, path, t, hl));
        }
        let finding = match self.befores.remove(&h) {
            Some(before) => judge::rewrite(&self.cfg, &before, after),
            None => {
                self.unjudged.insert(h, after.clone());
                None
            }
        };
        let dir_h = hash(judge::parent_dir(path));
        let note = after.small_hash.filter(|_| {
            matches!(after.kind, mamori_event::FileKind::Text) && after.size <= self.cfg.detect.note_max_size
        });
        let size_match = self.cfg.detect.size_match;
        self.each(chain, |a, cfg, hl| {
            a.touch(h, FileOp::Write, path, None);
            let breadth = (cfg.weights.breadth_per_dir, cfg.weights.breadth_max);
            if let Some((indicator, weight)) = finding {
                a.damage_file(h, dir_h, path, indicator, weight, t, hl, breadth);
            }
            if a.created.contains(&h) {
                if cipher {
                    let fits = |o: &Pending| size_distance(o.size, after.size, archive, size_match);
                    match take_pair(&mut a.deleted_originals, dir_h, fits) {
                        Some(orig) => {
                            let (oh, od) = (hash(&orig.path), hash(judge::parent_dir(&orig.path)));
                            let w = cfg.weights.replaced_by_ciphertext;
                            a.damage_file(oh, od, &orig.path, Indicator::ReplacedByCiphertext, w, t, hl, breadth);
                        }
                        None => push_bounded(
                            &mut a.new_ciphertexts,
                            Pending { path: path.to_owned(), dir: dir_h, size: after.size, archive, time_ns: t },
                        ),
                    }
                }
                if let Some(content) = note {
                    let dirs = a.notes.entry(content).or_default();
                    dirs.insert(dir_h);
                    let n = dirs.len();
                    if n >= cfg.detect.note_dirs {
                        let extra = (n - cfg.detect.note_dirs) as f64 * cfg.weights.ransom_note_extra_dir;
                        let target = (cfg.weights.ransom_note + extra).min(cfg.weights.ransom_note_max);
                        a.note(target, path, t, hl);
                    }
                }
            }
        });
    }

    fn deleted(&mut self, chain: &[ActorId], path: &str, facts: Option<&ContentFacts>, t: u64) {
        let h = hash(path);
        let dir_h = hash(judge::parent_dir(path));
        // What the file was when the actor last looked at it, or, read
        // without facts, as it went. Its before facts stay: the close of a
        // write to it (facts computed on another thread) can arrive after
        // the delete, as a wiper's zeros do; a file created at this path
        // drops them.
        let original = self.seen.remove(&h).or_else(|| facts.map(Seen::of));
        self.written.remove(&h);
        let canary = self.canaries.contains(&h);
        let size_match = self.cfg.detect.size_match;
        self.each(chain, |a, cfg, hl| {
            a.touch(h, FileOp::Delete, path, None);
            a.touched_existing = true;
            a.changed_existing = true;
            if canary {
                a.hit_canary(cfg.weights.canary, path, t, hl);
            }
            let Some(orig) = original.filter(|o| o.meaningful && a.read.contains(&h)) else {
                return;
            };
            let fits = |n: &Pending| size_distance(orig.size, n.size, n.archive, size_match);
            match take_pair(&mut a.new_ciphertexts, dir_h, fits) {
                Some(_) => {
                    let breadth = (cfg.weights.breadth_per_dir, cfg.weights.breadth_max);
                    let w = cfg.weights.replaced_by_ciphertext;
                    a.damage_file(h, dir_h, path, Indicator::ReplacedByCiphertext, w, t, hl, breadth);
                }
                None => push_bounded(
                    &mut a.deleted_originals,
                    Pending { path: path.to_owned(), dir: dir_h, size: orig.size, archive: false, time_ns: t },
                ),
            }
        });
    }

    fn renamed(&mut self, chain: &[ActorId], from: &str, to: &str, facts: Option<&ContentFacts>, t: u64) {
        let (fh, th) = (hash(from), hash(to));
        let canary = self.canaries.contains(&fh) || self.canaries.contains(&th);
        // The replaced file's last known facts, and what replaced it.
        let replaced = self.seen.remove(&th).or_else(|| facts.map(Seen::of));
        self.befores.remove(&th);
        let replacement = self.written.remove(&fh);
        let mut late = None;
        if let Some(before) = self.befores.remove(&fh) {
            match self.unjudged.remove(&th) {
                Some(after) => late = judge::rewrite(&self.cfg, &before, &after),
                None => self.befores.insert(th, before),
            }
        }
        if let Some(seen) = self.seen.remove(&fh) {
            self.seen.insert(th, seen);
        }
        if let Some(w) = replacement {
            self.written.insert(th, w);
        }
        let pattern = judge::rename_pattern(from, to);
        let dir_h = hash(judge::parent_dir(to));
        self.each(chain, |a, cfg, hl| {
            a.touch(fh, FileOp::Rename, from, Some(to));
            a.touched_existing = true;
            a.changed_existing = true;
            if a.read.remove(&fh).is_some() {
                a.read.insert(th, ());
            }
            if a.created.remove(&fh).is_some() {
                a.created.insert(th, ());
            }
            let breadth = (cfg.weights.breadth_per_dir, cfg.weights.breadth_max);
            if canary {
                a.hit_canary(cfg.weights.canary, to, t, hl);
            }
            if let Some((indicator, weight)) = late {
                a.damage_file(th, dir_h, to, indicator, weight, t, hl, breadth);
            }
            let over_original = replaced.is_some_and(|r| r.meaningful) && a.read.contains(&th);
            if over_original && replacement.is_some_and(|(cipher, _)| cipher) {
                let w = cfg.weights.replaced_by_ciphertext;
                a.damage_file(th, dir_h, to, Indicator::ReplacedByCiphertext, w, t, hl, breadth);
            }
            if let Some(pattern) = &pattern {
                let w = cfg.weights.extension_rename;
                for p in a.rename(pattern, to, cfg.detect.rename_cluster) {
                    let (ph, pd) = (hash(&p), hash(judge::parent_dir(&p)));
                    a.damage_file(ph, pd, &p, Indicator::ExtensionRename, w, t, hl, breadth);
                }
            }
        });
    }

    /// Applies `f` to the state of every process in the chain.
    fn each(&mut self, chain: &[ActorId], mut f: impl FnMut(&mut ActorState, &Config, f64)) {
        for id in chain {
            let state = self.actors.entry(*id).or_default();
            f(state, &self.cfg, self.half_life_ns);
        }
    }

    /// Drops actors that have been idle for a while and hold no evidence
    /// worth keeping, so memory stays flat however many processes come and go.
    fn sweep(&mut self, now_ns: u64) {
        let hl = self.half_life_ns;
        self.actors.retain(|_, a| a.judged || !a.idle_since(now_ns, IDLE_NS) || a.score_at(now_ns, hl) >= 1.0);
    }

    /// The deepest actor in the chain whose evidence crosses the threshold.
    fn decide(&mut self, trigger: ProcKey, t: u64, chain: &[ActorId]) -> Option<Verdict> {
        if chain.iter().any(|id| self.actors.get(id).is_some_and(|a| a.judged)) {
            return None;
        }
        // A copy in a session of its own has no judged program above it in
        // its chain: it is judged with the program that started it.
        if self.procs.get(&trigger).is_some_and(|info| info.sid == trigger.pid) {
            let root = ActorId::Proc(self.procs.program_root(trigger));
            if self.actors.get(&root).is_some_and(|a| a.judged) {
                return None;
            }
        }
        let (threshold, min_files, hl) = (self.cfg.detect.threshold, self.cfg.detect.min_files, self.half_life_ns);
        let pos = chain.iter().position(|id| {
            self.actors.get_mut(id).is_some_and(|a| {
                let score = a.score_at(t, hl);
                score >= threshold && (a.canary || a.damaged_files() >= min_files)
            })
        })?;
        let mut judged = chain[pos];
        // The ancestors only carried the attacker's evidence: forget it, so
        // the shell that started the attack is not judged on the next event.
        let mut carried: Vec<ActorId> = chain[pos + 1..].to_vec();
        if let ActorId::Proc(k) = judged {
            let root = ActorId::Proc(self.procs.program_root(k));
            if root != judged {
                // Judged as the copy that started it, with whichever of the
                // two holds more: an ancestor in the chain carries the child's
                // evidence already, a parent across a session boundary none.
                let child = self.actors.remove(&judged).expect("chosen from actors");
                let parents = self.actors.remove(&root).filter(|p| p.damaged_files() >= child.damaged_files());
                self.actors.insert(root, parents.unwrap_or(child));
                carried.retain(|id| *id != root);
                judged = root;
            }
        }
        let state = self.actors.get_mut(&judged).expect("chosen from actors");
        state.judged = true;
        let (actor, procs) = match judged {
            ActorId::Proc(k) => (k, vec![k]),
            ActorId::Kin { .. } | ActorId::Client(_) => {
                let root = match judged {
                    ActorId::Client(_) => self.procs.serving(trigger).unwrap_or(trigger),
                    _ => self.procs.kin_root(trigger),
                };
                let mut procs: Vec<ProcKey> = state.members.keys().copied().filter(|&k| k != root).collect();
                procs.sort_unstable();
                procs.insert(0, root);
                self.procs.judge_group(judged, &procs);
                (root, procs)
            }
        };
        let verdict = Verdict {
            actor,
            actor_info: self.procs.get(&actor).cloned(),
            trigger: Some(trigger),
            procs,
            time_ns: t,
            score: state.score_at(t, hl),
            damaged_files: state.damaged_files(),
            reasons: state.reasons(),
            files: state.touched().to_vec(),
        };
        for id in &carried {
            self.actors.remove(id);
        }
        self.stats.verdicts += 1;
        Some(verdict)
    }

    /// The actor a verdict naming `root` was about.
    fn judged_as(&self, root: ProcKey) -> ActorId {
        self.procs.judged_group(root).unwrap_or(ActorId::Proc(root))
    }

    /// Every process that acted for the actor a verdict named `root` for,
    /// including those that joined it after the verdict (a judged client's
    /// new connections), `root` first.
    pub fn members(&self, root: ProcKey) -> Vec<ProcKey> {
        let mut procs = vec![root];
        if let Some(a) = self.actors.get(&self.judged_as(root)) {
            let mut rest: Vec<ProcKey> = a.members.keys().copied().filter(|&k| k != root).collect();
            rest.sort_unstable();
            procs.extend(rest);
        }
        procs
    }

    /// Every file an actor touched so far, including what it still did after
    /// its verdict (operations already in flight when it was stopped).
    pub fn touched(&self, root: ProcKey) -> Option<&[FileTouch]> {
        self.actors.get(&self.judged_as(root)).map(ActorState::touched)
    }

    /// Processes that a verdict against a process they started is never
    /// raised to: the agent's own ancestors, which run it and may run the
    /// program it judges.
    pub fn spare(&mut self, keys: &[ProcKey]) {
        self.procs.spare(keys);
    }

    /// Forgets the evidence against an actor, after it was resumed as a false positive.
    pub fn absolve(&mut self, root: ProcKey) {
        self.actors.remove(&self.judged_as(root));
    }
}

/// Takes the pending entry in folder `dir` at the least `distance`, among
/// those that fit at all.
fn take_pair(pending: &mut VecDeque<Pending>, dir: u64, distance: impl Fn(&Pending) -> Option<u64>) -> Option<Pending> {
    let (_, _, best) = pending
        .iter()
        .enumerate()
        .filter(|(_, p)| p.dir == dir)
        .filter_map(|(i, p)| Some((distance(p)?, p.time_ns, i)))
        .min()?;
    pending.remove(best)
}

/// How far a replacement's size is from its original's, if the replacement
/// can be that original encrypted: about the same size (within `tolerance`,
/// plus room for the key blob and trailer that ransomware appends), or, for
/// an archive, compressed down to any smaller size.
fn size_distance(original: u64, replacement: u64, archive: bool, tolerance: f64) -> Option<u64> {
    let slack = (original.max(replacement) as f64 * tolerance) as u64 + 1024;
    let distance = original.abs_diff(replacement);
    (distance <= slack || (archive && replacement < original)).then_some(distance)
}

/// Most unpaired files an actor remembers; a backup tool writing thousands of
/// new encrypted files must not grow the engine without bound.
const MAX_PENDING: usize = 1024;

/// Forgets the oldest when full. A queue, because every new file of such a
/// backup tool lands here: shifting a full `Vec` cost more than weighing the file.
fn push_bounded(pending: &mut VecDeque<Pending>, entry: Pending) {
    if pending.len() == MAX_PENDING {
        pending.pop_front();
    }
    pending.push_back(entry);
}

fn hash(s: &str) -> u64 {
    let mut h = FxHasher::default();
    s.hash(&mut h);
    h.finish()
}

fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path.strip_prefix(dir).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Replays a whole trace and returns every verdict, in order.
pub fn replay<'a>(cfg: Config, events: impl IntoIterator<Item = &'a Event>) -> Vec<Verdict> {
    let mut engine = Engine::new(cfg);
    events.into_iter().filter_map(|ev| engine.process(ev)).collect()
}
