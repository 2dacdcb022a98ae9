//! The evidence held against one actor: a process (and, through crediting,
//! every ancestor up to its session leader), or a user's executable across
//! sessions (see `procs.rs`).

use std::collections::VecDeque;

use mamori_event::{FileOp, FileTouch, Finding, Indicator, ProcKey, Reason};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::recent::Recent;

/// Most files an actor remembers touching; beyond this the incident says so.
const MAX_TOUCHED: usize = 20_000;
/// Most examples kept per indicator, for the reasons.
const MAX_EXAMPLES: usize = 5;

/// A new ciphertext-like file or a deleted original waiting for its pair.
#[derive(Clone)]
pub(crate) struct Pending {
    pub path: String,
    /// Hash of the folder: an encrypted copy is written beside its original.
    pub dir: u64,
    pub size: u64,
    /// A new file that is an encrypted archive: it may be far smaller than its original.
    pub archive: bool,
    pub time_ns: u64,
}

#[derive(Default, Clone)]
pub(crate) struct ActorState {
    score: f64,
    last_ns: u64,
    /// Damage credited per file (path hash), undecayed, the strongest indicator only.
    damage: FxHashMap<u64, f64>,
    damaged_dirs: FxHashSet<u64>,
    breadth: f64,
    note_score: f64,
    pub canary: bool,
    /// Opened a file that had content, or deleted or renamed one: the
    /// user's data has been within its reach, so what it writes is weighed.
    pub touched_existing: bool,
    /// Deleted, renamed or opened to write a file that had content: what it
    /// only read may be what it changes next.
    pub changed_existing: bool,
    /// Path hashes this actor opened (any mode): originals it may later replace.
    pub read: Recent<u64, ()>,
    /// Path hashes this actor created.
    pub created: Recent<u64, ()>,
    pub new_ciphertexts: VecDeque<Pending>,
    pub deleted_originals: VecDeque<Pending>,
    /// Renames by pattern (new extension), with the paths renamed.
    rename_patterns: FxHashMap<String, Vec<String>>,
    established: FxHashSet<String>,
    seen_ns: u64,
    /// Ransom-note candidates: content hash → folders (hashes) it appeared in.
    pub notes: FxHashMap<[u8; 16], FxHashSet<u64>>,
    findings: Vec<Finding>,
    touched: Vec<FileTouch>,
    touched_seen: FxHashSet<(u64, FileOp)>,
    pub touched_dropped: usize,
    pub judged: bool,
    /// The processes whose events were credited to a kin actor: what a
    /// verdict on it must stop, as they need not share a parent.
    pub members: Recent<ProcKey, ()>,
}

impl ActorState {
    fn decay_to(&mut self, now_ns: u64, half_life_ns: f64) {
        if now_ns > self.last_ns && self.last_ns != 0 {
            let dt = (now_ns - self.last_ns) as f64;
            self.score *= 0.5f64.powf(dt / half_life_ns);
        }
        self.last_ns = self.last_ns.max(now_ns);
    }

    /// Adds `delta` points at `now_ns`, after decaying what was there.
    fn add(&mut self, delta: f64, now_ns: u64, half_life_ns: f64) {
        self.decay_to(now_ns, half_life_ns);
        self.score += delta;
    }

    /// Whether anything at all counts against this actor (undecayed).
    pub fn has_evidence(&self) -> bool {
        self.score >= 1.0 || !self.damage.is_empty() || self.canary
    }

    pub fn score_at(&mut self, now_ns: u64, half_life_ns: f64) -> f64 {
        self.decay_to(now_ns, half_life_ns);
        self.score
    }

    /// Records a rename to `pattern`; returns the files that now count as
    /// part of an established pattern (all of them when it just became one).
    pub fn rename(&mut self, pattern: &str, to: &str, cluster: usize) -> Vec<String> {
        if self.established.contains(pattern) {
            return vec![to.to_owned()];
        }
        let renamed = self.rename_patterns.entry(pattern.to_owned()).or_default();
        renamed.push(to.to_owned());
        if renamed.len() < cluster {
            if renamed.len() > MAX_EXAMPLES * 100 {
                renamed.remove(0);
            }
            return Vec::new();
        }
        let all = std::mem::take(renamed);
        self.rename_patterns.remove(pattern);
        self.established.insert(pattern.to_owned());
        all
    }

    pub fn seen(&mut self, now_ns: u64) {
        self.seen_ns = self.seen_ns.max(now_ns);
    }

    pub fn idle_since(&self, now_ns: u64, idle_ns: u64) -> bool {
        now_ns.saturating_sub(self.seen_ns) >= idle_ns
    }

    pub fn damaged_files(&self) -> usize {
        self.damage.len()
    }

    /// Credits damage to one file: only the strongest indicator per file
    /// counts, so one file rewritten in three suspicious ways is still one file.
    #[allow(clippy::too_many_arguments)]
    pub fn damage_file(
        &mut self,
        path_hash: u64,
        dir_hash: u64,
        path: &str,
        indicator: Indicator,
        weight: f64,
        now_ns: u64,
        half_life_ns: f64,
        breadth: (f64, f64),
    ) {
        let old = self.damage.get(&path_hash).copied().unwrap_or(0.0);
        if weight > old {
            self.damage.insert(path_hash, weight);
            self.add(weight - old, now_ns, half_life_ns);
            self.example(indicator, path);
        }
        if self.damaged_dirs.insert(dir_hash) {
            let (per_dir, max) = breadth;
            let target = (per_dir * (self.damaged_dirs.len() as f64 - 1.0)).min(max);
            if target > self.breadth {
                let delta = target - self.breadth;
                self.breadth = target;
                self.add(delta, now_ns, half_life_ns);
                self.example(Indicator::Breadth, path);
            }
        }
    }

    /// Raises the ransom-note indicator to `target` points.
    pub fn note(&mut self, target: f64, path: &str, now_ns: u64, half_life_ns: f64) {
        if target > self.note_score {
            let delta = target - self.note_score;
            self.note_score = target;
            self.add(delta, now_ns, half_life_ns);
        }
        self.example(Indicator::RansomNote, path);
    }

    pub fn hit_canary(&mut self, weight: f64, path: &str, now_ns: u64, half_life_ns: f64) {
        self.tripwire(Indicator::Canary, weight, path, now_ns, half_life_ns);
    }

    pub fn hit_guard(&mut self, weight: f64, path: &str, now_ns: u64, half_life_ns: f64) {
        self.tripwire(Indicator::VaultTouched, weight, path, now_ns, half_life_ns);
    }

    /// A decoy or the vault: one touch is enough for a verdict.
    fn tripwire(&mut self, indicator: Indicator, weight: f64, path: &str, now_ns: u64, half_life_ns: f64) {
        if !self.canary {
            self.canary = true;
            self.add(weight, now_ns, half_life_ns);
        }
        self.example(indicator, path);
    }

    fn example(&mut self, indicator: Indicator, path: &str) {
        let slot = match self.findings.iter().position(|f| f.indicator == indicator) {
            Some(i) => &mut self.findings[i],
            None => {
                self.findings.push(Finding { indicator, files: 0, examples: Vec::new() });
                self.findings.last_mut().expect("just pushed")
            }
        };
        if !slot.examples.iter().any(|p| p == path) {
            slot.files += 1;
            if slot.examples.len() < MAX_EXAMPLES {
                slot.examples.push(path.to_owned());
            }
        }
    }

    /// Records a file operation once per file and kind. The paths are copied
    /// only when kept: every ancestor of a busy program is told of each of
    /// its files, most of them already known or past the cap.
    pub fn touch(&mut self, path_hash: u64, op: FileOp, path: &str, to: Option<&str>) {
        // Past the cap only a count grows: a busy program that lives for
        // weeks (a file server, a backup job) must not grow the set forever.
        if self.touched.len() >= MAX_TOUCHED {
            if !self.touched_seen.contains(&(path_hash, op)) {
                self.touched_dropped += 1;
            }
        } else if self.touched_seen.insert((path_hash, op)) {
            self.touched.push(FileTouch { path: path.to_owned(), op, to: to.map(str::to_owned) });
        }
    }

    pub fn touched(&self) -> &[FileTouch] {
        &self.touched
    }

    /// One reason per indicator, in the order first found, then how many
    /// operations the list of touched files left out. Data, not words: the
    /// report and the terminal word them in the reader's language.
    pub fn reasons(&self) -> Vec<Reason> {
        let mut out: Vec<Reason> = self.findings.iter().cloned().map(Reason::Found).collect();
        if self.touched_dropped > 0 {
            out.push(Reason::Unlisted { unlisted: self.touched_dropped });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_touches_are_counted_not_remembered() {
        let mut a = ActorState::default();
        for i in 0..MAX_TOUCHED as u64 + 100 {
            a.touch(i, FileOp::Create, &format!("/d/f{i}"), None);
        }
        assert_eq!(a.touched().len(), MAX_TOUCHED);
        assert_eq!(a.touched_dropped, 100);
        assert_eq!(a.touched_seen.len(), MAX_TOUCHED, "the set stays bounded");
        // A listed file touched again is not a further operation.
        a.touch(0, FileOp::Create, "/d/f0", None);
        assert_eq!(a.touched_dropped, 100);
    }
}
