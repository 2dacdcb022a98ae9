//! The process table and the actor boundary: which processes are one actor,
//! so that evidence is credited to all of it.
//!
//! An actor is a process with its descendants (ransomware that forks a child
//! per file is still one actor), up to its session leader; and, across
//! sessions, every process of one user running one executable (ransomware
//! that starts each file's work with `setsid` is still one actor). Two
//! users, or one user's different programs, are never one actor.

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
}

struct Entry {
    info: ProcInfo,
    /// Hash of (uid, exe); none when the executable could not be read, as
    /// unreadable executables have nothing in common.
    kin: Option<u64>,
}

#[derive(Default)]
pub(crate) struct Procs {
    table: Recent<ProcKey, Entry>,
    rounds: FxHashMap<u64, u32>,
    /// The processes of judged kin actors, and the actor each belongs to.
    judged: FxHashMap<ProcKey, ActorId>,
}

impl Procs {
    pub(crate) fn with_capacity(generation: usize) -> Procs {
        Procs { table: Recent::new(generation), ..Procs::default() }
    }

    pub(crate) fn insert(&mut self, info: ProcInfo) {
        let kin = (!info.exe.is_empty()).then(|| {
            let mut h = FxHasher::default();
            (info.uid, &info.exe).hash(&mut h);
            h.finish()
        });
        self.table.insert(info.key, Entry { info, kin });
    }

    pub(crate) fn get(&self, key: &ProcKey) -> Option<&ProcInfo> {
        self.table.get(key).map(|e| &e.info)
    }

    /// The actors credited with an event of `key`: the process itself, its
    /// ancestors up to and including its session leader (never pid 1, and
    /// never past a session boundary, so a login shell's other jobs and the
    /// service manager are not lumped together with the attacker), then its
    /// kin, last, so that a process tree crossing the threshold is judged as
    /// itself before its kin is.
    pub(crate) fn chain(&self, key: ProcKey, out: &mut Vec<ActorId>) {
        out.clear();
        let mut cur = Some(key);
        while let Some(k) = cur {
            if k.pid <= 1 || out.len() == MAX_DEPTH || out.contains(&ActorId::Proc(k)) {
                break;
            }
            out.push(ActorId::Proc(k));
            let Some(e) = self.table.get(&k) else {
                break;
            };
            if e.info.sid == k.pid {
                break;
            }
            cur = e.info.parent;
        }
        out.extend(self.kin_of(key));
    }

    /// The kin actor of `key`. A process that runs its parent's executable
    /// belongs where its parent does, so a judged actor's own children stay
    /// in it while newcomers start a new round.
    fn kin_of(&self, key: ProcKey) -> Option<ActorId> {
        let kin = self.table.get(&key)?.kin?;
        let mut cur = key;
        for _ in 0..MAX_DEPTH {
            if let Some(id) = self.judged.get(&cur) {
                return Some(*id);
            }
            match self.same_kin_parent(cur, kin) {
                Some(parent) => cur = parent,
                None => break,
            }
        }
        Some(ActorId::Kin { kin, round: self.rounds.get(&kin).copied().unwrap_or(0) })
    }

    fn same_kin_parent(&self, key: ProcKey, kin: u64) -> Option<ProcKey> {
        let parent = self.table.get(&key)?.info.parent?;
        (parent.pid > 1 && self.table.get(&parent)?.kin == Some(kin)).then_some(parent)
    }

    /// The process that stands for `key`'s kin actor: its highest ancestor
    /// running the same executable, which started the rest (stopping its
    /// tree stops them), or `key` itself.
    pub(crate) fn kin_root(&self, key: ProcKey) -> ProcKey {
        let Some(kin) = self.table.get(&key).and_then(|e| e.kin) else {
            return key;
        };
        let mut root = key;
        for _ in 0..MAX_DEPTH {
            match self.same_kin_parent(root, kin) {
                Some(parent) => root = parent,
                None => break,
            }
        }
        root
    }

    /// Records a verdict on a kin actor: its processes stay in it, anyone
    /// else of that kin starts afresh.
    pub(crate) fn judge_kin(&mut self, id: ActorId, procs: &[ProcKey]) {
        if let ActorId::Kin { kin, round } = id {
            self.rounds.insert(kin, round + 1);
            self.judged.extend(procs.iter().map(|&k| (k, id)));
        }
    }

    /// The judged kin actor that `key` stands for, if any.
    pub(crate) fn judged_kin(&self, key: ProcKey) -> Option<ActorId> {
        self.judged.get(&key).copied()
    }
}
