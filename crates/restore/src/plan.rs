//! What restoring an incident means, file by file.
//!
//! An original is a file that existed before the actor and that it changed,
//! renamed or deleted. For each one the plan names the copy to put back (the
//! earliest taken after the actor started, following its renames), or, when
//! the actor only renamed it, the name to take it back from. What the actor
//! made is removed. Decoys are left to the agent, which places them again.

use std::collections::{BTreeMap, BTreeSet};

use mamori_store::{FileOp, Incident};
use mamori_vault::{Entry, Kind};

/// A vault entry and the vault it is in: object ids restart at 1 in each
/// vault, so an entry alone does not say where its object is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate<'a> {
    pub vault: usize,
    pub entry: &'a Entry,
}

/// The kernel's name for a file that was unlinked while a descriptor of it
/// was open; a path with it is the same file as the path without.
const DELETED: &str = " (deleted)";

#[derive(Debug, Default, PartialEq)]
pub struct Plan<'a> {
    /// Original paths and the copy to put back there.
    pub put_back: Vec<(String, Candidate<'a>)>,
    /// Originals the actor renamed without changing them and of which the
    /// vault holds no copy: (original path, the name it has now).
    pub rename_back: Vec<(String, String)>,
    /// Files the actor made (encrypted copies, notes) that are to go.
    pub remove: Vec<String>,
    /// Originals for which there is neither a copy nor a name to take back.
    pub missing: Vec<String>,
    /// Decoys the actor touched: not the user's files; the agent places them again.
    pub decoys: Vec<String>,
    /// Originals another client changed after the actor (a file share's
    /// honest user saving over what the attacker encrypted): left as they
    /// are, with the copy from before the actor that could be put back.
    pub changed_since: Vec<(String, Candidate<'a>)>,
    /// Originals whose name the actor renamed away and did not use again:
    /// whatever is under that name at restore time is someone else's, made
    /// since (a file share's honest user saving anew), and is kept.
    pub vacated: BTreeSet<String>,
}

impl Plan<'_> {
    /// The user's files the incident is about: every one must be back for
    /// the restore to have succeeded.
    pub fn user_files(&self) -> usize {
        self.put_back.len() + self.rename_back.len() + self.missing.len()
    }
}

/// Works out the plan from the incident's file operations and every entry of
/// the vaults. Of those, the ones the actor's own opens made the vault take
/// are originals too, which covers files it changed while no agent followed
/// its every step (an agent restarted mid-attack sees only the end).
pub fn plan<'a>(inc: &Incident, all: &[Candidate<'a>], is_decoy: &dyn Fn(&str) -> bool) -> Plan<'a> {
    let started = inc.actor.started_ns.unwrap_or(0);
    let mut by_path: BTreeMap<&str, Vec<Candidate<'a>>> = BTreeMap::new();
    for c in all {
        by_path.entry(c.entry.meta.path.as_str()).or_default().push(*c);
    }
    let mut originals = BTreeSet::new();
    for c in all {
        let e = c.entry;
        if e.kind != Kind::Pin && e.taken_ns >= started && e.by.is_some_and(|p| inc.procs.contains(&p)) {
            originals.insert(e.meta.path.as_str());
        }
    }
    let mut made = BTreeSet::new();
    let mut deleted = BTreeSet::new();
    let mut renamed: BTreeMap<&str, &str> = BTreeMap::new();
    for f in &inc.files {
        match f.op {
            FileOp::Create => {
                made.insert(f.path.as_str());
            }
            FileOp::Rename => {
                originals.insert(f.path.as_str());
                if let Some(to) = f.to.as_deref() {
                    made.insert(to);
                    renamed.insert(f.path.as_str(), to);
                }
            }
            FileOp::Delete => {
                deleted.insert(f.path.as_str());
                originals.insert(f.path.as_str());
            }
            FileOp::Write | FileOp::Truncate => {
                originals.insert(f.path.as_str());
            }
        }
    }
    // A file the actor made and then renamed is not an original either, nor
    // is the kernel's name of an unlinked file whose own name is listed.
    let listed = originals.clone();
    let phantom = |p: &str| p.strip_suffix(DELETED).is_some_and(|own| listed.contains(own) || made.contains(own));
    let originals: BTreeSet<&str> = originals.into_iter().filter(|p| !made.contains(p) && !phantom(p)).collect();

    let mut plan = Plan::default();
    let mut kept_as_original = BTreeSet::new();
    for &orig in &originals {
        if is_decoy(orig) {
            plan.decoys.push(orig.to_owned());
            continue;
        }
        // Follow the actor's renames: the content may have been kept under a later name.
        let mut candidates = Vec::new();
        let mut path = orig;
        let mut seen = BTreeSet::new();
        while seen.insert(path) {
            candidates.extend(by_path.get(path).into_iter().flatten().copied());
            match renamed.get(path) {
                Some(next) => path = next,
                None => break,
            }
        }
        if renamed.contains_key(orig) {
            plan.vacated.insert(orig.to_owned());
        }
        if let Some(c) = choose(&candidates, started) {
            if inc.client.is_some() && changed_by_another(inc, by_path.get(orig).map(Vec::as_slice).unwrap_or_default())
            {
                plan.changed_since.push((orig.to_owned(), c));
                continue;
            }
            plan.put_back.push((orig.to_owned(), c));
        } else if path != orig && made.contains(path) && !deleted.contains(path) {
            // Renamed and never opened: what is under the last name is the
            // original content, untouched.
            plan.rename_back.push((orig.to_owned(), path.to_owned()));
            kept_as_original.insert(path);
        } else {
            plan.missing.push(orig.to_owned());
        }
    }
    plan.remove = made
        .iter()
        .copied()
        .filter(|p| !originals.contains(p) && !kept_as_original.contains(p) && !phantom(p))
        .map(str::to_owned)
        .collect();
    plan
}

/// Whether someone other than the actor opened the file to write after the
/// actor last did: its content now is theirs, not the actor's. Only asked
/// for a client actor, all of whose processes (every connection) the
/// incident lists; a local actor's children that exited before the stop
/// are not listed, and their copies must not count as someone else's.
fn changed_by_another(inc: &Incident, entries: &[Candidate<'_>]) -> bool {
    let ours = |c: &&Candidate<'_>| c.entry.by.is_some_and(|p| inc.procs.contains(&p));
    let Some(last) = entries.iter().filter(ours).map(|c| c.entry.taken_ns).max() else { return false };
    entries.iter().any(|c| c.entry.kind != Kind::Pin && c.entry.taken_ns > last && c.entry.by.is_some() && !ours(&c))
}

/// The content from just before the actor's first change: the earliest
/// copy (whole or by range) taken after the actor started (its own first
/// open kept it), or else the latest one from before. Copies win over pins,
/// which only hold the inode as it is now.
fn choose<'a>(candidates: &[Candidate<'a>], started_ns: u64) -> Option<Candidate<'a>> {
    let pick = |kinds: &[Kind]| {
        let of_kind = || candidates.iter().copied().filter(|c| kinds.contains(&c.entry.kind));
        of_kind()
            .filter(|c| c.entry.taken_ns >= started_ns)
            .min_by_key(|c| c.entry.taken_ns)
            .or_else(|| of_kind().filter(|c| c.entry.taken_ns < started_ns).max_by_key(|c| c.entry.taken_ns))
    };
    pick(&[Kind::Copy, Kind::Ranges]).or_else(|| pick(&[Kind::Pin]))
}

#[cfg(test)]
mod tests {
    use mamori_event::ProcKey;
    use mamori_store::{ActorInfo, FileTouch};
    use mamori_vault::Meta;

    use super::*;

    const ACTOR: ProcKey = ProcKey { pid: 42, start: 7 };
    const STARTED: u64 = 1_000;

    fn incident(files: &[(FileOp, &str, Option<&str>)]) -> Incident {
        let files =
            files.iter().map(|(op, path, to)| FileTouch { path: (*path).into(), op: *op, to: to.map(Into::into) });
        Incident {
            id: "INC-0001".into(),
            detected_at: String::new(),
            actor: ActorInfo {
                pid: ACTOR.pid,
                start: ACTOR.start,
                exe: "/x".into(),
                cmdline: Vec::new(),
                uid: 1000,
                started_ns: Some(STARTED),
            },
            pids: vec![ACTOR.pid],
            procs: vec![ACTOR],
            action: mamori_store::Action::Suspended,
            score: 100.0,
            reasons: Vec::new(),
            files: files.collect(),
            protected: vec!["/d".into()],
            stop_latency_us: None,
            notes: Vec::new(),
            client: None,
        }
    }

    fn entry(id: u64, kind: Kind, path: &str, taken_ns: u64, by: Option<ProcKey>) -> Entry {
        let meta = Meta {
            path: path.into(),
            dev: 1,
            ino: id,
            size: 1,
            mode: 0o100644,
            uid: 0,
            gid: 0,
            atime_ns: 0,
            mtime_ns: 0,
            xattrs: Vec::new(),
        };
        Entry { id, kind, meta, hash: None, object: id.to_string(), taken_ns, by }
    }

    fn in_vault(vault: usize, entries: &[Entry]) -> Vec<Candidate<'_>> {
        entries.iter().map(|entry| Candidate { vault, entry }).collect()
    }

    fn no_decoys(_: &str) -> bool {
        false
    }

    #[test]
    fn what_another_client_saved_after_the_attacker_stays() {
        let other = ProcKey { pid: 77, start: 1 };
        let mut inc = incident(&[(FileOp::Write, "/d/a.doc", None), (FileOp::Write, "/d/b.doc", None)]);
        let entries = [
            entry(1, Kind::Copy, "/d/a.doc", STARTED + 5, Some(ACTOR)),
            entry(2, Kind::Copy, "/d/b.doc", STARTED + 6, Some(ACTOR)),
            // An honest client opened a.doc to write after the attacker: its copy is of the ciphertext.
            entry(3, Kind::Copy, "/d/a.doc", STARTED + 9, Some(other)),
            // Only read b.doc afterwards: b.doc is still the attacker's work.
            entry(4, Kind::Pin, "/d/b.doc", STARTED + 9, Some(other)),
        ];
        let local = plan(&inc, &in_vault(0, &entries), &no_decoys);
        assert_eq!(local.put_back.len(), 2, "a local actor's exited children are not listed: no exception");
        inc.client = Some(mamori_store::ClientCut { client: Default::default(), server: None, steps: Vec::new() });
        let plan = plan(&inc, &in_vault(0, &entries), &no_decoys);
        assert_eq!(plan.changed_since.len(), 1, "{plan:?}");
        assert_eq!(plan.changed_since[0].0, "/d/a.doc");
        assert_eq!(plan.changed_since[0].1.entry.id, 1, "the copy from before the attacker is named");
        assert_eq!(plan.put_back.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["/d/b.doc"]);
    }

    #[test]
    fn a_file_renamed_and_never_opened_is_renamed_back() {
        let inc = incident(&[
            (FileOp::Rename, "/d/a.doc", Some("/d/a.doc.locked")),
            (FileOp::Rename, "/d/b.doc", Some("/d/b.x")),
        ]);
        let entries = [entry(1, Kind::Copy, "/d/b.x", STARTED + 5, Some(ACTOR))];
        let plan = plan(&inc, &in_vault(0, &entries), &no_decoys);
        assert_eq!(plan.rename_back, vec![("/d/a.doc".to_owned(), "/d/a.doc.locked".to_owned())]);
        assert_eq!(plan.put_back.len(), 1, "b was encrypted under its new name: its copy goes back");
        assert_eq!(plan.remove, vec!["/d/b.x".to_owned()], "a.doc.locked is a.doc, not the actor's");
        assert_eq!(plan.vacated, BTreeSet::from(["/d/a.doc".to_owned(), "/d/b.doc".to_owned()]));
        assert!(plan.missing.is_empty());
        assert_eq!(plan.user_files(), 2);
    }

    #[test]
    fn a_renamed_file_the_actor_then_deleted_is_missing() {
        let inc = incident(&[(FileOp::Rename, "/d/a.doc", Some("/d/a.x")), (FileOp::Delete, "/d/a.x", None)]);
        let plan = plan(&inc, &[], &no_decoys);
        assert!(plan.rename_back.is_empty());
        assert_eq!(plan.missing, vec!["/d/a.doc".to_owned()]);
    }

    #[test]
    fn the_kernels_name_of_a_deleted_file_is_the_file() {
        let inc = incident(&[
            (FileOp::Write, "/d/a.doc", None),
            (FileOp::Delete, "/d/a.doc", None),
            (FileOp::Write, "/d/a.doc (deleted)", None),
        ]);
        let entries = [entry(1, Kind::Copy, "/d/a.doc", STARTED + 5, Some(ACTOR))];
        let plan = plan(&inc, &in_vault(0, &entries), &no_decoys);
        assert_eq!(plan.put_back.len(), 1);
        assert!(plan.missing.is_empty(), "{:?}", plan.missing);
        assert_eq!(plan.user_files(), 1);
    }

    #[test]
    fn a_file_literally_named_deleted_is_still_restored() {
        let inc = incident(&[(FileOp::Write, "/d/x (deleted)", None)]);
        let entries = [entry(1, Kind::Copy, "/d/x (deleted)", STARTED + 5, Some(ACTOR))];
        let plan = plan(&inc, &in_vault(0, &entries), &no_decoys);
        assert_eq!(plan.put_back.len(), 1);
    }

    #[test]
    fn decoys_are_not_the_users_files() {
        let inc = incident(&[
            (FileOp::Rename, "/d/.0-contracts.pdf", Some("/d/.0-contracts.pdf.locked")),
            (FileOp::Delete, "/d/.0-invoices.pdf", None),
            (FileOp::Write, "/d/a.doc", None),
        ]);
        let entries = [entry(1, Kind::Copy, "/d/a.doc", STARTED + 5, Some(ACTOR))];
        let plan = plan(&inc, &in_vault(0, &entries), &|p: &str| p.starts_with("/d/.0-"));
        assert_eq!(plan.decoys.len(), 2);
        assert!(plan.missing.is_empty() && plan.rename_back.is_empty());
        assert_eq!(plan.remove, vec!["/d/.0-contracts.pdf.locked".to_owned()], "the actor's rename of a decoy goes");
        assert_eq!(plan.user_files(), 1);
    }

    #[test]
    fn each_copy_comes_from_its_own_vault() {
        let inc = incident(&[(FileOp::Write, "/d/a.doc", None), (FileOp::Write, "/e/b.doc", None)]);
        // Object ids restart at 1 in every vault: both entries are "1".
        let first = [entry(1, Kind::Copy, "/d/a.doc", STARTED + 5, Some(ACTOR))];
        let second = [entry(1, Kind::Copy, "/e/b.doc", STARTED + 6, Some(ACTOR))];
        let all: Vec<_> = in_vault(0, &first).into_iter().chain(in_vault(1, &second)).collect();
        let plan = plan(&inc, &all, &no_decoys);
        let vaults: Vec<(&str, usize)> = plan.put_back.iter().map(|(p, c)| (p.as_str(), c.vault)).collect();
        assert_eq!(vaults, vec![("/d/a.doc", 0), ("/e/b.doc", 1)]);
    }

    #[test]
    fn the_earliest_copy_after_the_start_wins_over_pins_and_older_copies() {
        let inc = incident(&[(FileOp::Write, "/d/a.doc", None)]);
        let entries = [
            entry(1, Kind::Copy, "/d/a.doc", STARTED - 10, None),
            entry(2, Kind::Pin, "/d/a.doc", STARTED + 1, Some(ACTOR)),
            entry(3, Kind::Copy, "/d/a.doc", STARTED + 5, Some(ACTOR)),
            entry(4, Kind::Copy, "/d/a.doc", STARTED + 9, Some(ACTOR)),
        ];
        let plan = plan(&inc, &in_vault(0, &entries), &no_decoys);
        assert_eq!(plan.put_back[0].1.entry.id, 3);
    }

    #[test]
    fn what_the_actors_opens_kept_is_an_original_even_unlisted() {
        let inc = incident(&[]);
        let entries = [
            entry(1, Kind::Copy, "/d/a.doc", STARTED + 5, Some(ACTOR)),
            entry(2, Kind::Copy, "/d/b.doc", STARTED + 5, None),
        ];
        let plan = plan(&inc, &in_vault(0, &entries), &no_decoys);
        let paths: Vec<&str> = plan.put_back.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, vec!["/d/a.doc"]);
    }
}
