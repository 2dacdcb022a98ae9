//! The process table: who is whose parent, so that evidence can be credited
//! to a whole process tree (ransomware that forks a child per file is still
//! one actor).

use mamori_event::{ProcInfo, ProcKey};

use crate::recent::Recent;

/// How far up the tree evidence is credited. Deeper chains are cut.
const MAX_DEPTH: usize = 12;

#[derive(Default)]
pub(crate) struct Procs {
    table: Recent<ProcKey, ProcInfo>,
}

impl Procs {
    pub(crate) fn with_capacity(generation: usize) -> Procs {
        Procs { table: Recent::new(generation) }
    }

    pub(crate) fn insert(&mut self, info: ProcInfo) {
        self.table.insert(info.key, info);
    }

    pub(crate) fn get(&self, key: &ProcKey) -> Option<&ProcInfo> {
        self.table.get(key)
    }

    /// The processes credited with an event of `key`: the process itself and
    /// its ancestors up to and including its session leader. Never pid 1, and
    /// never past a session boundary, so a login shell's other jobs and the
    /// service manager are not lumped together with the attacker.
    pub(crate) fn chain(&self, key: ProcKey, out: &mut Vec<ProcKey>) {
        out.clear();
        let mut cur = Some(key);
        while let Some(k) = cur {
            if k.pid <= 1 || out.len() == MAX_DEPTH || out.contains(&k) {
                break;
            }
            out.push(k);
            let Some(info) = self.table.get(&k) else {
                break;
            };
            if info.sid == k.pid {
                break;
            }
            cur = info.parent;
        }
    }
}
