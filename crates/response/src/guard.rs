//! Which processes mamori must never signal.
//!
//! Stopping init, a kernel thread, the agent itself or anything the agent
//! depends on (its ancestors: a service manager, a shell, an ssh session)
//! would turn a defence into an outage, whatever the engine believes.

use mamori_event::ProcKey;

/// Processes that must never be signalled: pid 1, kernel threads (pid 2 and
/// its children), this process and this process's ancestors.
#[derive(Debug, Clone)]
pub struct Guard {
    me: u32,
    ancestors: Vec<ProcKey>,
}

impl Guard {
    /// Captures this process's ancestry now; ancestors that appear later (a
    /// re-parenting after an ancestor exits) can only be pid 1 or a
    /// subreaper that is already an ancestor.
    pub fn new() -> Guard {
        let me = std::process::id();
        let mut ancestors = Vec::new();
        let mut pid = mamori_proc::read_stat(me).map_or(0, |s| s.ppid);
        // The chain ends at pid 0; the bound only protects against a loop from a racing re-read.
        while pid > 0 && ancestors.len() < 4096 {
            let Some(st) = mamori_proc::read_stat(pid) else { break };
            ancestors.push(st.key());
            pid = st.ppid;
        }
        Guard { me, ancestors }
    }

    /// The agent's ancestors, which no verdict may name.
    pub fn ancestors(&self) -> &[ProcKey] {
        &self.ancestors
    }

    pub fn allows(&self, key: ProcKey) -> bool {
        if key.pid <= 2 || key.pid == self.me || self.ancestors.contains(&key) {
            return false;
        }
        // Kernel threads are children of kthreadd (pid 2).
        !matches!(mamori_proc::read_stat(key.pid), Some(st) if st.ppid == 2)
    }
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new()
    }
}
