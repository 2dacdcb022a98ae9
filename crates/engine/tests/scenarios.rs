//! The engine on synthetic traces of attacks and of ordinary work.

mod support;

use mamori_engine::{replay, Config, Engine, Verdict};
use mamori_event::{FileOp, Indicator, OpenMode, Reason};
use support::*;

fn verdicts(t: &Trace) -> Vec<Verdict> {
    replay(Config::default(), &t.events)
}

/// The indicators a verdict rests on, in its order.
fn found(v: &Verdict) -> Vec<Indicator> {
    v.reasons
        .iter()
        .filter_map(|r| match r {
            Reason::Found(f) => Some(f.indicator),
            Reason::Unlisted { .. } | Reason::Text(_) => None,
        })
        .collect()
}

/// A shell session (pid 100) that starts `exe` as pid 200.
fn session(t: &mut Trace, exe: &str) -> mamori_event::ProcKey {
    t.proc(100, Some(1), 100, "/usr/bin/bash");
    t.proc(200, Some(100), 100, exe)
}

#[test]
fn in_place_encryption_is_stopped_on_the_third_file() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..10 {
        t.rewrite(p, &format!("/data/doc{i}.txt"), &prose(i, 20_000), &random_bytes(i, 20_000));
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].actor, p);
    assert_eq!(v[0].damaged_files, 3);
    assert_eq!(found(&v[0])[0], Indicator::FormatLost, "{:?}", v[0].reasons);
    assert!(v[0].files.iter().any(|f| f.path == "/data/doc0.txt" && f.op == FileOp::Write));
}

#[test]
fn a_close_seen_before_the_rename_that_preceded_it_is_still_judged() {
    // open X, write, rename X -> X.lock, close: the close names X.lock but
    // can reach the engine before the rename does (another kernel queue).
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..10 {
        let (x, locked) = (format!("/data/r{i}.txt"), format!("/data/r{i}.txt.lock9q"));
        t.open(p, &x, OpenMode::Write, &prose(i, 9000));
        t.close_write(p, &locked, &random_bytes(i, 9000));
        t.rename(p, &x, &locked);
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(found(&v[0])[0], Indicator::FormatLost, "content, not only renames: {:?}", v[0].reasons);
    assert!(v[0].damaged_files <= 3, "{}", v[0].damaged_files);
}

#[test]
fn a_child_per_file_is_judged_as_its_parent_and_the_shell_is_spared() {
    let mut t = Trace::default();
    let parent = session(&mut t, "/tmp/evil");
    for i in 0..6 {
        let child = t.proc(300 + i, Some(200), 100, "/tmp/evil");
        t.rewrite(child, &format!("/data/f{i}.txt"), &prose(i as u64, 8000), &random_bytes(i as u64, 8000));
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].actor, parent, "the parent, not a child or the shell");
}

/// With decoys (the default), the first copy a program starts meets a decoy
/// and crosses alone: the program that started it is the attacker, in the
/// same session or across a `setsid`; the login shell never is.
#[test]
fn a_copy_that_hits_a_decoy_first_is_judged_as_the_program_that_started_it() {
    for own_session in [false, true] {
        let mut t = Trace::default();
        t.canary("/data/.0-contracts.pdf");
        let parent = session(&mut t, "/tmp/evil");
        let child = t.proc(300, Some(200), if own_session { 300 } else { 100 }, "/tmp/evil");
        t.rewrite(child, "/data/.0-contracts.pdf", &prose(1, 8000), &random_bytes(1, 8000));
        let v = verdicts(&t);
        assert_eq!(v.len(), 1, "{v:#?}");
        assert_eq!(v[0].actor, parent, "own session: {own_session}");
    }
}

/// `mamori demo` starts the simulator and the agent: the demo, the agent's
/// parent, runs the simulator's executable but is never the one judged.
#[test]
fn a_verdict_is_never_raised_to_a_spared_process() {
    let mut t = Trace::default();
    t.canary("/data/.0-contracts.pdf");
    let demo = session(&mut t, "/usr/local/bin/mamori");
    let sim = t.proc(300, Some(200), 100, "/usr/local/bin/mamori");
    t.rewrite(sim, "/data/.0-contracts.pdf", &prose(1, 8000), &random_bytes(1, 8000));
    let mut engine = mamori_engine::Engine::new(Config::default());
    engine.spare(&[demo]);
    let v: Vec<_> = t.events.iter().filter_map(|e| engine.process(e)).collect();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].actor, sim);
}

#[test]
fn a_script_that_hits_a_decoy_never_stops_the_login_shell() {
    let mut t = Trace::default();
    t.canary("/data/.0-contracts.pdf");
    let shell = t.proc(100, Some(1), 100, "/usr/bin/bash");
    let script = t.proc(200, Some(100), 100, "/usr/bin/bash");
    t.rewrite(script, "/data/.0-contracts.pdf", &prose(1, 8000), &random_bytes(1, 8000));
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].actor, script, "the script's shell, not the login shell {shell:?}");
}

/// Each file's work in a session of its own (`setsid`), by children of one
/// executable: one actor, judged as the parent that started them, with every
/// child the engine saw among the processes to stop.
#[test]
fn a_session_per_file_is_judged_as_one_actor() {
    let mut t = Trace::default();
    let parent = session(&mut t, "/tmp/evil");
    let mut children = Vec::new();
    for i in 0..10 {
        let pid = 300 + i;
        let child = t.proc(pid, Some(200), pid, "/tmp/evil");
        children.push(child);
        t.rewrite(child, &format!("/data/f{i}.txt"), &prose(i as u64, 8000), &random_bytes(i as u64, 8000));
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].actor, parent, "the parent that started the sessions");
    assert_eq!(v[0].procs[0], parent);
    let stopped: Vec<_> = children.iter().filter(|c| v[0].procs.contains(c)).collect();
    assert_eq!(stopped.len(), 3, "every child that had worked so far: {:?}", v[0].procs);
    assert!(!v[0].procs.contains(&key(100)), "not the shell");
}

/// Sessions whose parent is gone (reparented to init) share no ancestor:
/// the verdict lists each of them, and the next one to appear is refused.
#[test]
fn sessions_without_a_common_parent_are_one_actor_too() {
    let mut t = Trace::default();
    for i in 0..3 {
        let pid = 300 + i;
        let p = t.proc(pid, Some(1), pid, "/tmp/evil");
        t.rewrite(p, &format!("/data/f{i}.txt"), &prose(i as u64, 8000), &random_bytes(i as u64, 8000));
    }
    let late = t.proc(400, Some(1), 400, "/tmp/evil");
    let mut engine = Engine::new(Config::default());
    let v: Vec<_> = t.events.iter().filter_map(|ev| engine.process(ev)).collect();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].procs.len(), 3, "{:?}", v[0].procs);
    assert!((300..303).all(|pid| v[0].procs.contains(&key(pid))));
    assert_eq!(engine.touched(v[0].actor).map(<[_]>::len), Some(3), "the incident's files");
    assert!(engine.is_judged(key(301)));
    // A process of the same program started afterwards, by someone else, is
    // not the attacker: an administrator's restore can be the same executable.
    assert!(!engine.is_judged(late));
}

/// Two users running the same program, or one user running two programs,
/// are never one actor: two files each, in separate sessions, stay below a verdict.
#[test]
fn other_users_and_other_programs_are_other_actors() {
    let mut t = Trace::default();
    let runs = [(1000, "/usr/bin/ccrypt"), (1001, "/usr/bin/ccrypt"), (1000, "/usr/bin/gpg")];
    for (n, (uid, exe)) in runs.into_iter().enumerate() {
        for i in 0..2 {
            let pid = 300 + 10 * n as u32 + i;
            let p = t.proc_of(uid, pid, Some(1), pid, exe);
            let f = 10 * n as u64 + i as u64;
            t.rewrite(p, &format!("/data/f{f}.txt"), &prose(f, 8000), &random_bytes(f, 8000));
        }
    }
    assert!(verdicts(&t).is_empty());
}

#[test]
fn the_shell_is_not_judged_later_for_what_its_child_did() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..3 {
        t.rewrite(p, &format!("/data/a{i}.txt"), &prose(i, 8000), &random_bytes(i, 8000));
    }
    let shell = key(100);
    for i in 0..3 {
        t.rewrite(shell, &format!("/data/b{i}.txt"), &prose(i, 8000), &prose(i + 1, 8000));
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].actor, p);
}

#[test]
fn what_a_stopped_actor_still_had_in_flight_is_not_held_against_its_shell() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..12 {
        t.rewrite(p, &format!("/data/a{i}.txt"), &prose(i, 8000), &random_bytes(i, 8000));
    }
    // The shell's next command touches a file: not a reason to judge the shell.
    t.open(key(100), "/data/a0.txt", OpenMode::Read, &random_bytes(0, 8000));
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].actor, p);
}

#[test]
fn write_new_then_delete_is_stopped() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..10 {
        let orig = format!("/data/photo{i}.txt");
        t.open(p, &orig, OpenMode::Read, &prose(i, 30_000));
        t.write_new(p, &format!("{orig}.enc"), &random_bytes(i, 30_512));
        t.delete(p, &orig);
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].damaged_files <= 3);
    assert!(found(&v[0]).contains(&Indicator::ReplacedByCiphertext), "{:?}", v[0].reasons);
}

/// Everything read first, then replaced: reads of held files come without
/// facts, which come with the deletes (the vault reads them from the held
/// descriptors). The originals are recognised as before; without the
/// delete's facts they would not be.
#[test]
fn originals_read_without_facts_are_weighed_by_their_deletes() {
    let trace = |facts_at_delete: bool| {
        let mut t = Trace::default();
        let p = session(&mut t, "/tmp/evil");
        let orig = |i| format!("/data/photo{i}.txt");
        for i in 0..10 {
            t.read_held(p, &orig(i));
        }
        for i in 0..10 {
            t.write_new(p, &format!("{}.enc", orig(i)), &random_bytes(i, 30_512));
            if facts_at_delete {
                t.delete_held(p, &orig(i), &prose(i, 30_000));
            } else {
                t.delete(p, &orig(i));
            }
        }
        verdicts(&t)
    };
    let v = trace(true);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].damaged_files <= 3, "{}", v[0].damaged_files);
    assert!(found(&v[0]).contains(&Indicator::ReplacedByCiphertext), "{:?}", v[0].reasons);
    let blind = trace(false);
    assert!(blind.iter().all(|v| !found(v).contains(&Indicator::ReplacedByCiphertext)), "{blind:#?}");
}

/// The same for a ciphertext renamed over its original.
#[test]
fn originals_read_without_facts_are_weighed_by_the_rename_over_them() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..10 {
        t.read_held(p, &format!("/data/doc{i}.txt"));
    }
    for i in 0..10 {
        let (path, tmp) = (format!("/data/doc{i}.txt"), format!("/data/.doc{i}.tmp"));
        t.write_new(p, &tmp, &random_bytes(i, 30_000));
        t.rename_over_held(p, &tmp, &path, &prose(i, 30_000));
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(found(&v[0]).contains(&Indicator::ReplacedByCiphertext), "{:?}", v[0].reasons);
}

#[test]
fn new_random_names_then_delete_is_stopped() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..10 {
        let orig = format!("/data/report{i}.txt");
        t.open(p, &orig, OpenMode::Read, &prose(i, 12_000));
        t.write_new(p, &format!("/data/Q7ZK2M9XW4PL{i:04}"), &random_bytes(i, 12_000));
        t.delete(p, &orig);
    }
    assert_eq!(verdicts(&t).len(), 1);
}

/// Qlocker: a password-protected archive per file, then the original
/// deleted. Prose compresses, so the archives are far smaller than their originals.
#[test]
fn password_protected_archives_replacing_originals_are_stopped() {
    let mut t = Trace::default();
    let p = session(&mut t, "/usr/bin/7z");
    for i in 0..10 {
        let orig = format!("/data/doc{i}.txt");
        t.open(p, &orig, OpenMode::Read, &prose(i, 30_000));
        t.write_new(p, &format!("{orig}.zip"), &zip_of(&random_bytes(i, 9_000), true));
        t.delete(p, &orig);
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].damaged_files <= 3, "{}", v[0].damaged_files);
    assert_eq!(found(&v[0])[0], Indicator::ReplacedByCiphertext, "{:?}", v[0].reasons);
}

/// People archive files and delete the originals (`zip -m`): without a
/// password an archive is no ciphertext.
#[test]
fn ordinary_archives_replacing_originals_are_benign() {
    let mut t = Trace::default();
    let p = session(&mut t, "/usr/bin/zip");
    for i in 0..30 {
        let orig = format!("/data/doc{i}.txt");
        t.open(p, &orig, OpenMode::Read, &prose(i, 30_000));
        t.write_new(p, &format!("{orig}.zip"), &zip_of(&random_bytes(i, 9_000), false));
        t.delete(p, &orig);
    }
    assert!(verdicts(&t).is_empty());
}

#[test]
fn base64_of_ciphertext_is_stopped() {
    use std::fmt::Write;
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..10 {
        let raw = random_bytes(i, 9000);
        let hex = raw.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        t.rewrite(p, &format!("/data/n{i}.txt"), &prose(i, 18_000), hex.as_bytes());
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1);
    assert!(v[0].damaged_files <= 3);
}

#[test]
fn xor_with_one_byte_is_stopped_although_entropy_stays_low() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..10 {
        // An uncompressed PDF: a recognised format with low entropy.
        let before = pdf(i, 12_000);
        let after: Vec<u8> = before.iter().map(|b| b ^ 0x5a).collect();
        t.rewrite(p, &format!("/data/x{i}.pdf"), &before, &after);
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].damaged_files <= 3);
}

#[test]
fn documents_overwritten_with_zeros_are_stopped() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/wiper");
    for i in 0..10 {
        let path = format!("/data/w{i}.pdf");
        let before = pdf(i, 12_000);
        t.rewrite(p, &path, &before, &vec![0u8; before.len()]);
        t.delete(p, &path);
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].damaged_files <= 3, "{}", v[0].damaged_files);
    assert_eq!(found(&v[0])[0], Indicator::ContentDestroyed, "{:?}", v[0].reasons);
}

/// The close's facts are computed on another thread, so the delete that
/// follows can reach the engine first.
#[test]
fn a_wipe_whose_close_arrives_after_the_delete_is_still_judged() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/wiper");
    for i in 0..10 {
        let path = format!("/data/w{i}.txt");
        t.open(p, &path, OpenMode::Write, &prose(i, 9000));
        t.delete(p, &path);
        t.close_write(p, &path, &[0u8; 9000]);
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].damaged_files <= 3);
}

/// A file made anew where one was deleted has no before: it is not judged
/// against the deleted one's content.
#[test]
fn a_file_recreated_after_a_delete_is_not_compared_with_the_old_one() {
    let mut t = Trace::default();
    let p = session(&mut t, "/usr/bin/make");
    for i in 0..10 {
        let path = format!("/data/build/out{i}.pdf");
        t.open(p, &path, OpenMode::Write, &pdf(i, 9000));
        t.close_write(p, &path, &pdf(i + 1, 9000));
        t.open(p, &path, OpenMode::Write, &pdf(i + 1, 9000));
        t.delete(p, &path);
        t.create(p, &path);
        t.close_write(p, &path, b"");
    }
    assert!(verdicts(&t).is_empty());
}

#[test]
fn text_overwritten_with_one_repeated_byte_is_stopped() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/wiper");
    for i in 0..10 {
        t.rewrite(p, &format!("/data/t{i}.txt"), &prose(i, 9000), &vec![0xffu8; 9000]);
    }
    assert_eq!(verdicts(&t).len(), 1);
}

#[test]
fn documents_truncated_to_nothing_are_stopped() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/wiper");
    for i in 0..10 {
        let path = format!("/data/e{i}.pdf");
        t.open(p, &path, OpenMode::Truncate, &pdf(i, 12_000));
        t.close_write(p, &path, b"");
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].damaged_files <= 3);
}

/// `>` redirection and editors truncate and then write real content; log
/// rotation empties text logs. Neither destroys a document.
#[test]
fn truncating_and_rewriting_or_emptying_logs_is_benign() {
    let mut t = Trace::default();
    let p = session(&mut t, "/usr/bin/bash");
    for i in 0..30 {
        let doc = format!("/data/d{i}.pdf");
        t.open(p, &doc, OpenMode::Truncate, &pdf(i, 12_000));
        t.close_write(p, &doc, &pdf(i + 1, 12_500));
        let log = format!("/data/logs/app{i}.log");
        t.open(p, &log, OpenMode::Truncate, &prose(i, 40_000));
        t.close_write(p, &log, b"");
    }
    assert!(verdicts(&t).is_empty());
}

#[test]
fn renames_to_one_new_extension_are_stopped() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..10 {
        t.rename(p, &format!("/data/d{i}.docx"), &format!("/data/d{i}.docx.qz7k"));
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1);
    assert!(found(&v[0]).contains(&Indicator::ExtensionRename), "{:?}", v[0].reasons);
    assert!(v[0].files.iter().any(|f| f.op == FileOp::Rename && f.to.as_deref() == Some("/data/d0.docx.qz7k")));
}

/// Every file renamed before any is opened: stopped on the renames alone,
/// with each rename in the incident so that restore can undo it.
#[test]
fn renaming_every_file_before_opening_any_is_stopped_during_the_renames() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..40 {
        t.rename(p, &format!("/data/d{}/f{i}.pdf", i % 4), &format!("/data/d{}/f{i}.pdf.locked", i % 4));
    }
    let renames = t.events.len();
    for i in 0..40 {
        let path = format!("/data/d{}/f{i}.pdf.locked", i % 4);
        t.rewrite(p, &path, &pdf(i, 9000), &random_bytes(i, 9000));
    }
    let mut engine = Engine::new(Config::default());
    let stopped = t.events.iter().position(|ev| engine.process(ev).is_some());
    assert!(stopped.is_some_and(|at| at < renames), "stopped at event {stopped:?} of {renames} renames");
    let files = engine.touched(p).unwrap();
    assert!(files.iter().all(|f| f.op == FileOp::Rename && f.to.as_deref().is_some_and(|to| to.ends_with(".locked"))));
    assert!(files.len() <= 12, "{} renames before the stop", files.len());
}

#[test]
fn a_touched_canary_is_an_immediate_verdict() {
    let mut t = Trace::default();
    t.canary("/data/.~mamori-decoy.docx");
    let p = session(&mut t, "/tmp/evil");
    t.open(p, "/data/.~mamori-decoy.docx", OpenMode::Write, &prose(1, 5000));
    let v = verdicts(&t);
    assert_eq!(v.len(), 1);
    assert_eq!(found(&v[0])[0], Indicator::Canary, "{:?}", v[0].reasons);
}

#[test]
fn reading_a_canary_is_not_a_verdict() {
    let mut t = Trace::default();
    t.canary("/data/.~mamori-decoy.docx");
    let p = session(&mut t, "/usr/bin/rsync");
    t.open(p, "/data/.~mamori-decoy.docx", OpenMode::Read, &prose(1, 5000));
    assert!(verdicts(&t).is_empty());
}

#[test]
fn ransom_notes_add_up_with_damage() {
    let note = b"Your files are encrypted. Send 1 BTC to recover them. Contact us at ...".repeat(10);
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for d in 0..8 {
        t.write_new(p, &format!("/data/dir{d}/README_RESTORE.txt"), &note);
    }
    assert!(verdicts(&t).is_empty(), "notes alone are not enough");
    t.rewrite(p, "/data/dir0/a.txt", &prose(1, 9000), &random_bytes(1, 9000));
    t.rewrite(p, "/data/dir0/b.txt", &prose(2, 9000), &random_bytes(2, 9000));
    let v = verdicts(&t);
    assert_eq!(v.len(), 1);
    assert!(found(&v[0]).contains(&Indicator::RansomNote), "{:?}", v[0].reasons);
}

#[test]
fn low_and_slow_still_accumulates() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..5 {
        t.rewrite(p, &format!("/data/s{i}.txt"), &prose(i, 9000), &random_bytes(i, 9000));
        t.wait_secs(20);
    }
    assert_eq!(verdicts(&t).len(), 1);
}

#[test]
fn damage_hours_apart_fades_away() {
    let mut t = Trace::default();
    let p = session(&mut t, "/usr/bin/ccrypt");
    for i in 0..5 {
        t.rewrite(p, &format!("/data/s{i}.txt"), &prose(i, 9000), &random_bytes(i, 9000));
        t.wait_secs(4 * 3600);
    }
    assert!(verdicts(&t).is_empty());
}

#[test]
fn a_trusted_program_is_not_judged_in_its_folder() {
    let mut t = Trace::default();
    t.trust("/usr/bin/gpg", "/data/secrets");
    let p = session(&mut t, "/usr/bin/gpg");
    for i in 0..10 {
        t.rewrite(p, &format!("/data/secrets/s{i}.txt"), &prose(i, 9000), &random_bytes(i, 9000));
    }
    assert!(verdicts(&t).is_empty());
    for i in 0..10 {
        t.rewrite(p, &format!("/data/other/s{i}.txt"), &prose(i, 9000), &random_bytes(i, 9000));
    }
    assert_eq!(verdicts(&t).len(), 1, "trust is for that folder only");
}

#[test]
fn trust_never_covers_a_decoy() {
    let mut t = Trace::default();
    t.canary("/data/secrets/.0-contracts.pdf");
    t.trust("/usr/bin/gpg", "/data/secrets");
    let p = session(&mut t, "/usr/bin/gpg");
    t.rewrite(p, "/data/secrets/s0.txt", &prose(0, 9000), &random_bytes(0, 9000));
    t.rename(p, "/data/secrets/.0-contracts.pdf", "/data/secrets/.0-contracts.pdf.gpg");
    assert_eq!(verdicts(&t).len(), 1, "a trusted program that renames a decoy is still stopped");
}

#[test]
fn editor_safe_save_is_benign() {
    let mut t = Trace::default();
    let p = session(&mut t, "/usr/bin/vim");
    for i in 0..50 {
        let path = format!("/data/notes{i}.md");
        let tmp = format!("/data/.notes{i}.md.swp");
        t.open(p, &path, OpenMode::Read, &prose(i, 6000));
        t.write_new(p, &tmp, &prose(i + 1, 6100));
        t.rename(p, &tmp, &path);
    }
    assert!(verdicts(&t).is_empty());
}

#[test]
fn a_vm_writing_random_blocks_into_one_image_is_benign() {
    let mut t = Trace::default();
    let p = session(&mut t, "/usr/bin/qemu-system-x86_64");
    let mut image = vec![0u8; 2 << 20];
    for i in 0..40u64 {
        let before = image.clone();
        let at = (i as usize * 37_000) % (image.len() - 4096);
        image[at..at + 4096].copy_from_slice(&random_bytes(i, 4096));
        t.rewrite(p, "/data/vm/disk.img", &before, &image);
    }
    assert!(verdicts(&t).is_empty());
}

#[test]
fn git_objects_beside_a_checkout_that_replaces_files_is_benign() {
    // git writes zlib objects (random-looking, new) under .git/objects and,
    // on checkout, deletes and rewrites work-tree files it read before.
    let mut t = Trace::default();
    let p = session(&mut t, "/usr/bin/git");
    for i in 0..30 {
        let file = format!("/repo/src/f{i}.txt");
        t.open(p, &file, OpenMode::Read, &prose(i, 3000));
        t.write_new(p, &format!("/repo/.git/objects/{i:02x}/{i:038x}"), &random_bytes(i, 3000));
        t.delete(p, &file);
        t.write_new(p, &file, &prose(i + 1, 3000));
    }
    assert!(verdicts(&t).is_empty());
}

#[test]
fn a_backup_tool_writing_many_encrypted_files_is_benign() {
    let mut t = Trace::default();
    let p = session(&mut t, "/usr/bin/restic");
    for i in 0..200 {
        t.open(p, &format!("/data/docs/d{i}.txt"), OpenMode::Read, &prose(i, 5000));
        t.write_new(p, &format!("/data/repo/data/{:02x}/{i:064x}", i % 256), &random_bytes(i, 5000));
    }
    assert!(verdicts(&t).is_empty());
}

#[test]
fn replay_is_deterministic() {
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..20 {
        t.rewrite(p, &format!("/data/d{}/f{i}.txt", i % 4), &prose(i, 9000), &random_bytes(i, 9000));
    }
    let a = verdicts(&t);
    let b = verdicts(&t);
    assert_eq!(a, b);
    assert_eq!(a.len(), 1);
}

#[test]
fn unattributed_events_are_counted_not_judged() {
    let mut t = Trace::default();
    t.events.push(mamori_event::Event {
        time_ns: 1,
        proc: None,
        kind: mamori_event::EventKind::Delete { path: "/data/x".into(), dir: false, before: None },
    });
    let mut engine = Engine::new(Config::default());
    for ev in &t.events {
        assert!(engine.process(ev).is_none());
    }
    assert_eq!(engine.stats().unattributed, 1);
}

/// What a process creates is weighed once it, or an ancestor it is credited
/// to, has had an existing file within reach (opened one with content,
/// deleted or renamed one), or has evidence against it; a program that only
/// ever made new files is spared the cost.
#[test]
fn new_files_are_weighed_once_existing_files_were_within_reach() {
    let engine_after = |t: &Trace| {
        let mut engine = Engine::new(Config::default());
        for ev in &t.events {
            engine.process(ev);
        }
        engine
    };
    let mut t = Trace::default();
    let writer = session(&mut t, "/usr/bin/python3");
    for i in 0..3 {
        t.write_new(writer, &format!("/data/new{i}.bin"), &random_bytes(i, 4096));
    }
    assert!(!engine_after(&t).weighs_new_files(writer), "only new files so far");
    t.open(writer, "/data/report.txt", OpenMode::Read, &prose(1, 4096));
    let engine = engine_after(&t);
    assert!(engine.weighs_new_files(writer), "it read an existing file");
    let child = t.proc(300, Some(200), 100, "/usr/bin/gzip");
    assert!(engine_after(&t).weighs_new_files(child), "credited to a parent that read one");
    let elsewhere = t.proc(400, None, 400, "/usr/bin/python3");
    assert!(!engine_after(&t).weighs_new_files(elsewhere), "another session");
    t.delete(elsewhere, "/data/old.log");
    assert!(engine_after(&t).weighs_new_files(elsewhere), "it deleted a file");
}

/// A Samba master (pid 50, its own session) and one smbd child per client
/// connection.
fn samba(t: &mut Trace) -> mamori_event::ProcKey {
    t.proc(50, Some(1), 50, "/usr/sbin/smbd")
}

#[test]
fn an_smb_client_is_judged_across_its_connections_and_never_the_server() {
    let mut t = Trace::default();
    let master = samba(&mut t);
    let honest = t.served(60, 50, "10.0.0.3");
    let first = t.served(61, 50, "10.0.0.2");
    for i in 0..2 {
        t.rewrite(first, &format!("/share/doc{i}.txt"), &prose(i, 20_000), &random_bytes(i, 20_000));
        t.rewrite(honest, &format!("/share/own{i}.txt"), &prose(i + 50, 20_000), &prose(i + 60, 21_000));
    }
    // The client reconnects (a new smbd child) and goes on.
    let second = t.served(62, 50, "10.0.0.2");
    for i in 2..10 {
        t.rewrite(second, &format!("/share/doc{i}.txt"), &prose(i, 20_000), &random_bytes(i, 20_000));
    }
    let mut engine = Engine::new(Config::default());
    let v: Vec<Verdict> = t.events.iter().filter_map(|ev| engine.process(ev)).collect();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].actor, second, "the connection that crossed stands for the client");
    assert_eq!(v[0].procs, vec![second, first], "both connections are the client");
    assert_eq!(v[0].actor_info.as_ref().and_then(|i| i.client.as_ref()).map(|c| c.address.as_str()), Some("10.0.0.2"));
    let paths: Vec<&str> = v[0].files.iter().map(|f| f.path.as_str()).collect();
    assert!(paths.contains(&"/share/doc0.txt"), "the first connection's work is in it: {paths:?}");
    assert!(!paths.iter().any(|p| p.contains("own")), "the honest client's work is not: {paths:?}");
    assert!(!engine.is_suspect(master), "the server shared by every client holds nothing");
    assert!(!engine.is_suspect(honest), "the other client holds nothing");
    // A third connection of the judged client is the judged actor at once.
    let mut late = Trace { now: t.now, ..Trace::default() };
    let third = late.served(63, 50, "10.0.0.2");
    late.rewrite(third, "/share/doc11.txt", &prose(11, 20_000), &random_bytes(11, 20_000));
    for ev in &late.events {
        assert!(engine.process(ev).is_none(), "its reconnection joins the verdict, no second incident");
    }
    assert!(engine.is_judged(third));
    assert_eq!(engine.members(second), vec![second, first, third]);
    assert!(engine.touched(second).unwrap().iter().any(|f| f.path == "/share/doc11.txt"));
}

#[test]
fn two_clients_each_below_the_threshold_are_not_added_up() {
    let mut t = Trace::default();
    samba(&mut t);
    // Each client damages two files: the server, shared by both, would have crossed.
    for (n, address) in ["10.0.0.2", "10.0.0.3", "10.0.0.4"].iter().enumerate() {
        let p = t.served(60 + n as u32, 50, address);
        for i in 0..2u64 {
            let i = i + 10 * n as u64;
            t.rewrite(p, &format!("/share/doc{i}.txt"), &prose(i, 20_000), &random_bytes(i, 20_000));
        }
    }
    assert_eq!(verdicts(&t), vec![]);
}

#[test]
fn connections_of_unknown_address_are_each_their_own_and_never_the_server() {
    let mut t = Trace::default();
    let master = samba(&mut t);
    let a = t.served(60, 50, "");
    let b = t.served(61, 50, "");
    for i in 0..2u64 {
        t.rewrite(a, &format!("/share/a{i}.txt"), &prose(i, 20_000), &random_bytes(i, 20_000));
        t.rewrite(b, &format!("/share/b{i}.txt"), &prose(i + 9, 20_000), &random_bytes(i + 9, 20_000));
    }
    assert_eq!(verdicts(&t), vec![], "two unknown connections are not one client");
    for i in 2..6u64 {
        t.rewrite(a, &format!("/share/a{i}.txt"), &prose(i, 20_000), &random_bytes(i, 20_000));
    }
    let mut engine = Engine::new(Config::default());
    let v: Vec<Verdict> = t.events.iter().filter_map(|ev| engine.process(ev)).collect();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].procs, vec![a]);
    assert!(!engine.is_suspect(master), "the server holds nothing");
    assert!(!engine.is_judged(b), "the other unknown connection is not judged with it");
}

#[test]
fn ciphertext_behind_another_formats_header_is_stopped() {
    // Compressed documents (random bytes stand for deflated data) rewritten
    // in place as ciphertext behind a gzip header: still a recognised
    // format, and as random as before. It was never judged at all.
    let mut t = Trace::default();
    let p = session(&mut t, "/tmp/evil");
    for i in 0..10 {
        let after = [b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03".as_slice(), &random_bytes(100 + i, 20_000)].concat();
        t.rewrite(p, &format!("/data/report{i}.zip"), &zip_of(&random_bytes(i, 20_000), false), &after);
    }
    let v = verdicts(&t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].damaged_files, 3);
    assert_eq!(found(&v[0])[0], Indicator::FormatLost, "{:?}", v[0].reasons);
}
