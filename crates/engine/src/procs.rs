//! The process table and the actor boundary: which processes are one actor,
//! so that evidence is credited to all of it.
//!
//! An actor is a process with its descendants (ransomware that forks a child
//! per file is still one actor), up to its session leader; and, across
//! sessions, every process of one user running one executable whose session
//! is that program's own (ransomware that starts each file's work with
//! `setsid` is still one actor). Two users, or one user's different
//! programs, are never one actor. A process in a session led by another
//! program (a login shell, a terminal) is left to that session, which
//! already gathers its work: crediting every event a third time doubled the
//! engine's cost. For the same reason a kin is credited only once a second
//! session of it appears, and then starts with the first one's evidence.
//!
//! A server that serves each remote client in a process of its own (Samba's
//! smbd forks one per connection) is the other boundary: the sensor names
//! the client in such a process's [`ProcInfo::client`], and evidence stops
//! there, at the client, which stands for all of its connections (a client
//! that reconnects is still one actor). The server that started the
//! process, shared by every client, is never credited. A new kind of server
//! needs no change here, only a sensor that names its clients
//! (`crates/served`).

use std::hash::{Hash, Hasher};

use mamori_event::{ProcInfo, ProcKey};
use rustc_hash::{FxHashMap, FxHasher};

use crate::recent::Recent;

/// How far up the tree evidence is credited. Deeper chains are cut.
const MAX_DEPTH: usize = 12;

/// Whom evidence is credited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ActorId {
    /// A process and its descendants in its session.
    Proc(ProcKey),
    /// Every process of one user and executable (`kin` hashes both). The
    /// round moves on when one is judged, so that whoever runs the same
    /// program afterwards (an administrator's `mamori restore` is the
    /// simulator's own executable) is not held to be the attacker.
    Kin { kin: u64, round: u32 },
    /// Every connection of one remote client (`client` hashes server and
    /// address). A verdict on it stands until absolved: the client's next
    /// connection joins it.
    Client(u64),
}

struct Entry {
    info: ProcInfo,
    /// Hash of (uid, exe); none when the executable could not be read, as
    /// unreadable executables have nothing in common.
    kin: Option<u64>,
    /// Hash of the remote client it serves (server and address), if any.
    client: Option<u64>,
}

#[derive(Default)]
pub(crate) struct Procs {
    table: Recent<ProcKey, Entry>,
    rounds: FxHashMap<u64, u32>,
    /// The processes of judged kin and client actors, and the actor each belongs to.
    judged: FxHashMap<ProcKey, ActorId>,
    /// Per kin, the first session leader running it, until a second shows
    /// that the program spans sessions (then `None`).
    leaders: FxHashMap<u64, Option<ProcKey>>,
    /// Processes a verdict is never raised to (the agent's ancestors: a
    /// `mamori demo` runs the simulator and the agent alike).
    spared: Vec<ProcKey>,
}

impl Procs {
    pub(crate) fn with_capacity(generation: usize) -> Procs {
        Procs { table: Recent::new(generation), ..Procs::default() }
    }

    /// Adds a process. When it is the second session of its kin, returns
    /// the first session's leader and the kin actor, which takes over what
    /// that session did so far.
    pub(crate) fn insert(&mut self, info: ProcInfo) -> Option<(ProcKey, ActorId)> {
        let kin = (!info.exe.is_empty()).then(|| {
            let mut h = FxHasher::default();
            (info.uid, &info.exe).hash(&mut h);
            h.finish()
        });
        // A client whose address is unknown is only this connection.
        let client = info.client.as_ref().map(|c| {
            let mut h = FxHasher::default();
            (&c.server, &c.address).hash(&mut h);
            if c.address.is_empty() {
                info.key.hash(&mut h);
            }
            h.finish()
        });
        let key = info.key;
        let leader = info.sid == key.pid;
        self.table.insert(key, Entry { info, kin, client });
        let kin = kin.filter(|_| leader)?;
        match self.leaders.get(&kin) {
            None => {
                self.leaders.insert(kin, Some(key));
                None
            }
            Some(Some(first)) if *first != key => {
                let first = *first;
                self.leaders.insert(kin, None);
                Some((first, self.kin_actor(first, kin)))
            }
            Some(_) => None,
        }
    }

    pub(crate) fn get(&self, key: &ProcKey) -> Option<&ProcInfo> {
        self.table.get(key).map(|e| &e.info)
    }

    /// The actors credited with an event of `key`: the process itself, its
    /// ancestors up to and including its session leader (never pid 1, and
    /// never past a session boundary, so a login shell's other jobs and the
    /// service manager are not lumped together with the attacker), then,
    /// when the topmost of those runs the same program, its kin, last, so
    /// that a process tree crossing the threshold is judged as itself first.
    /// A process serving a remote client ends the walk with that client,
    /// standing in for the process itself.
    pub(crate) fn chain(&self, key: ProcKey, out: &mut Vec<ActorId>) {
        out.clear();
        let (mut kin, mut top) = (None, None);
        let mut cur = Some(key);
        while let Some(k) = cur {
            if k.pid <= 1 || out.len() == MAX_DEPTH || out.contains(&ActorId::Proc(k)) {
                break;
            }
            let entry = self.table.get(&k);
            if let Some(client) = entry.and_then(|e| e.client) {
                out.push(ActorId::Client(client));
                return;
            }
            out.push(ActorId::Proc(k));
            let Some(e) = entry else {
                break;
            };
            if k == key {
                kin = e.kin;
            }
            top = e.kin;
            if e.info.sid == k.pid {
                break;
            }
            cur = e.info.parent;
        }
        let shared = |kin: &u64| self.leaders.get(kin) == Some(&None);
        if let Some(kin) = kin.filter(|kin| top == Some(*kin) && shared(kin)) {
            out.push(self.kin_actor(key, kin));
        }
    }

    /// The kin actor of `key`, whose kin is `kin`. A process that runs its
    /// parent's executable belongs where its parent does, so a judged
    /// actor's own children stay in it while newcomers start a new round.
    fn kin_actor(&self, key: ProcKey, kin: u64) -> ActorId {
        let round = ActorId::Kin { kin, round: self.rounds.get(&kin).copied().unwrap_or(0) };
        // Every event asks: the walk is only needed once a kin was judged.
        if self.judged.is_empty() {
            return round;
        }
        let mut cur = key;
        for _ in 0..MAX_DEPTH {
            if let Some(id) = self.judged.get(&cur) {
                return *id;
            }
            match self.same_kin_parent(cur, kin) {
                Some(parent) => cur = parent,
                None => break,
            }
        }
        round
    }

    fn same_kin_parent(&self, key: ProcKey, kin: u64) -> Option<ProcKey> {
        let parent = self.table.get(&key)?.info.parent?;
        (parent.pid > 1 && self.table.get(&parent)?.kin == Some(kin)).then_some(parent)
    }

    /// The copy of `key`'s program that started it: while its parent runs
    /// the same executable as the same user and leads no session (a login
    /// shell does, and is never stopped for a script it runs), that parent.
    /// A program that starts a copy of itself per file, or a session per
    /// file, is one attacker, whichever copy crossed the threshold first.
    pub(crate) fn program_root(&self, key: ProcKey) -> ProcKey {
        self.same_program_top(key, |parent| {
            !self.spared.contains(&parent) && self.table.get(&parent).is_some_and(|e| e.info.sid != parent.pid)
        })
    }

    pub(crate) fn spare(&mut self, keys: &[ProcKey]) {
        self.spared.extend_from_slice(keys);
    }

    /// The process that stands for `key`'s kin actor: its highest ancestor
    /// running the same executable, which started the rest (stopping its
    /// tree stops them), or `key` itself.
    pub(crate) fn kin_root(&self, key: ProcKey) -> ProcKey {
        self.same_program_top(key, |_| true)
    }

    /// `key`'s highest ancestor running the same executable as the same
    /// user, climbing only to parents `may_climb` allows.
    fn same_program_top(&self, key: ProcKey, may_climb: impl Fn(ProcKey) -> bool) -> ProcKey {
        let Some(kin) = self.table.get(&key).and_then(|e| e.kin) else {
            return key;
        };
        let mut root = key;
        for _ in 0..MAX_DEPTH {
            match self.same_kin_parent(root, kin) {
                Some(parent) if may_climb(parent) => root = parent,
                _ => break,
            }
        }
        root
    }

    /// Records a verdict on a kin or client actor, whose processes need
    /// not descend from one another. A kin's processes stay in it, anyone
    /// else of that kin starts afresh; a client stays judged.
    pub(crate) fn judge_group(&mut self, id: ActorId, procs: &[ProcKey]) {
        if let ActorId::Kin { kin, round } = id {
            self.rounds.insert(kin, round + 1);
        }
        self.judged.extend(procs.iter().map(|&k| (k, id)));
    }

    /// The judged kin or client actor that `key` stands for, if any.
    pub(crate) fn judged_group(&self, key: ProcKey) -> Option<ActorId> {
        self.judged.get(&key).copied()
    }

    /// The process of `key`'s chain that serves a remote client, if any:
    /// what stands for the client actor in a verdict.
    pub(crate) fn serving(&self, key: ProcKey) -> Option<ProcKey> {
        let mut cur = key;
        for _ in 0..MAX_DEPTH {
            let e = self.table.get(&cur)?;
            if e.client.is_some() {
                return Some(cur);
            }
            cur = e.info.parent.filter(|p| p.pid > 1)?;
        }
        None
    }
}
