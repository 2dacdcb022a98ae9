//! The vault under real attacks: large files kept by range, an agent
//! killed with SIGKILL in the middle of an attack, and a user flooding it.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use common::*;
use mamori_sim::Snapshot;
use serde_json::Value;

/// Decoys off (behaviour alone), and every file kept by range, whatever its size.
const BY_RANGE: &str = "[canary]\nenabled = false\n[vault]\nrange_copy_from_mib = 0\n";

fn restore(ws: &Workspace, inc: &Value) -> String {
    let out = mamori(&["restore", inc["id"].as_str().unwrap(), "--state", ws.state.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "restore failed:\n{said}");
    said
}

/// The vault's entries, from its log. Only with no agent running: the
/// agent stops any other process that reads its vault.
fn vault_entries(ws: &Workspace) -> Vec<Value> {
    let log = std::fs::read_to_string(ws.state.join("vault/entries.log")).unwrap_or_default();
    log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Reads every file under `dir` once, as a backup's pass would.
fn read_everything(dir: &std::path::Path) {
    let read = std::process::Command::new("sh")
        .args(["-c", "find . -type f -exec cat {} + > /dev/null"])
        .current_dir(dir)
        .status();
    assert!(read.unwrap().success());
}

/// Runs `family` with every file opened to write kept by range where its
/// open flags allow it, restores, and checks that nothing differs. Returns
/// the workspace and the vault's entries from before the restore.
fn attack_by_range(family: &str, reads_first: usize) -> (Workspace, Vec<Value>) {
    let ws = Workspace::new();
    ws.corpus(60, 2);
    let agent = ws.start_agent(Some(&ws.config(BY_RANGE)));
    let before = Snapshot::take(&ws.data).unwrap();
    for _ in 0..reads_first {
        read_everything(&ws.data);
    }
    let mut sim = ws.simulate(family);
    let incidents = ws.wait_for_incident(&mut sim.0, Duration::from_secs(300));
    assert_eq!(incidents.len(), 1, "{family}: {incidents:#?}\n{}", agent.log());
    ws.kill(&incidents[0]);
    let _ = sim.0.wait();
    agent.stop();
    let entries = vault_entries(&ws);
    let said = restore(&ws, &incidents[0]);
    assert_eq!(before.diff(&Snapshot::take(&ws.data).unwrap()), Default::default(), "{family}:\n{said}");
    (ws, entries)
}

fn by_range(family: &str) {
    let (ws, entries) = attack_by_range(family, 0);
    let ranges: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "ranges").collect();
    assert!(!ranges.is_empty(), "{family}: no file was kept by range");
    // What a file kept by range costs: the blocks kept, not its size.
    let (mut size, mut used) = (0, 0);
    for e in &ranges {
        let object = ws.state.join("vault/objects").join(e["object"].as_str().unwrap());
        size += e["meta"]["size"].as_u64().unwrap();
        used += object.metadata().unwrap().blocks() * 512;
    }
    record_result("ranges.txt", &format!("{family} files={} size={size} kept_bytes={used}", ranges.len()));
}

#[test]
fn large_files_written_in_place_are_kept_by_range_and_restored() {
    by_range("intermittent");
}

/// A file read again unchanged keeps the ignore mark its first read left
/// (no second mark): its writes must still be announced once a writer
/// comes, and every other file's rewrite still copied first.
#[test]
fn files_read_twice_then_written_in_place_are_kept_and_restored() {
    let (_, entries) = attack_by_range("intermittent", 2);
    assert!(entries.iter().any(|e| e["kind"] == "ranges"), "no file was kept by range: {entries:#?}");
}

#[test]
fn large_files_written_through_mmap_are_kept_by_range_and_restored() {
    by_range("mmap");
}

/// An open through io_uring shows the agent no flags (the opener is in
/// `io_uring_enter`, not `openat`), so it may have truncated: such files are
/// copied whole, never kept by range, and the writes come from io_uring's
/// worker threads. Everything must come back all the same.
#[test]
fn large_files_opened_through_io_uring_are_copied_whole_and_restored() {
    let (_ws, entries) = attack_by_range("io-uring", 0);
    let kinds: Vec<&str> = entries.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.contains(&"copy"), "{kinds:?}");
    assert!(!kinds.contains(&"ranges"), "{kinds:?}");
}

#[test]
fn an_agent_killed_mid_attack_restarts_and_the_restore_is_complete() {
    let ws = Workspace::new();
    ws.corpus(40, 0);
    let cfg = ws.config("[canary]\nenabled = false\n");
    let first = ws.start_agent(Some(&cfg));
    let before = Snapshot::take(&ws.data).unwrap();
    // One file every two seconds: the agent can be killed between two of them.
    let mut sim = ws.simulate("slow");
    let pid = sim.0.id() as i32;
    let start = Instant::now();
    while before.diff(&Snapshot::take(&ws.data).unwrap()).touched() == 0 {
        assert!(start.elapsed() < Duration::from_secs(60), "the attack never started\n{}", first.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Hold the attacker (our own child, by pid) while no agent runs: the
    // kernel lets everything through when the agent is gone.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let mut first = first;
    unsafe { libc::kill(first.child.id() as i32, libc::SIGKILL) };
    first.child.wait().unwrap();
    assert!(ws.incidents().is_empty(), "detected before the kill; the test needs an attack in progress");
    // What the first agent kept for the attacker survived its death.
    assert!(vault_entries(&ws).iter().any(|e| e["kind"] == "copy" && e["by"]["pid"] == pid));

    let second = ws.start_agent(Some(&cfg));
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let incidents = ws.wait_for_incident(&mut sim.0, Duration::from_secs(120));
    assert_eq!(incidents.len(), 1, "{incidents:#?}\n{}", second.log());
    ws.kill(&incidents[0]);
    let _ = sim.0.wait();

    let said = restore(&ws, &incidents[0]);
    assert_eq!(before.diff(&Snapshot::take(&ws.data).unwrap()), Default::default(), "{said}\n{}", second.log());
    second.stop();
}

/// Runs `script` with `sh` as the test user, in `dir`.
fn as_user(dir: &std::path::Path, script: &str) {
    let out = mamori_testuser::ordinary().command("sh").args(["-c", script]).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Issue 14, item 20: an ordinary user rewriting one file again and again
/// (a new size each time, so each open to write is a new copy) used to fill
/// the whole vault budget, and then nobody's files were copied until the
/// retention freed it. Now it spends its own share only: root's file, and a
/// root-owned file the same user then writes, are still copied and restore.
#[test]
fn a_user_flooding_the_vault_spends_only_its_own_share() {
    let ws = Workspace::new();
    let user = mamori_testuser::ordinary();
    let uid = user.uid;
    // The user must reach its folder; the state stays root's alone.
    std::fs::set_permissions(ws.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = user.folder(&ws.data, "home");
    let text = |tag: &str| tag.repeat(384 * 1024 / tag.len()).into_bytes();
    let (mine, shared) = (ws.data.join("root.txt"), ws.data.join("shared.txt"));
    std::fs::write(&mine, text("root's own notes\n")).unwrap();
    std::fs::write(&shared, text("a shared list\n")).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o666)).unwrap();
    // 4 MiB in all, 1 MiB per owner: the flood below writes 10 MiB.
    let cfg = ws.config("[canary]\nenabled = false\n[vault]\nbudget_mib = 4\nper_user_budget_percent = 25\n");
    let agent = ws.start_agent(Some(&cfg));

    as_user(
        &home,
        "i=0; while [ $i -lt 40 ]; do yes \"line $i\" | head -c $((262144 + i)) > big.log; i=$((i + 1)); done",
    );
    std::fs::write(&mine, b"root changed it").unwrap();
    as_user(&ws.data, "echo 'the user changed it' > shared.txt");

    // The status lists the user whose copies were skipped: from the first
    // one published after the writes above (once a second).
    let published = || std::fs::read_to_string(ws.state.join("agent.json")).unwrap();
    let before = published();
    let start = Instant::now();
    while published() == before {
        assert!(start.elapsed() < Duration::from_secs(10), "no status published\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = mamori(&["status", "--state", ws.state.to_str().unwrap()]);
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(status.contains(&format!("uid {uid}:")), "no skips listed for uid {uid}:\n{status}");
    assert!(status.contains("over an owner's share"), "{status}");
    assert!(!status.contains("uid 0:"), "root's copies were skipped:\n{status}");
    let log = agent.stop();
    // Said once for the user and its reason, not once per file skipped.
    let alerts: Vec<&str> = log.lines().filter(|l| l.contains("VAULT ALERT")).collect();
    assert_eq!(alerts.len(), 1, "{log}");
    assert!(alerts[0].contains(&format!("uid {uid}")), "{log}");

    let entries = vault_entries(&ws);
    let copies_of = |path: &std::path::Path| {
        entries.iter().filter(|e| e["kind"] == "copy" && e["meta"]["path"] == path.to_str().unwrap()).count()
    };
    assert!(copies_of(&home.join("big.log")) <= 4, "the flood kept more than its share");
    // Restore both root-owned files from their copies, as `mamori restore` would.
    let limits =
        mamori_vault::Limits { budget_bytes: 0, user_budget_bytes: 0, free_floor_bytes: 0, retention_ns: u64::MAX };
    let vault = mamori_vault::Vault::open_read_only(&ws.state.join("vault"), limits).unwrap();
    for (path, tag) in [(&mine, "root's own notes\n"), (&shared, "a shared list\n")] {
        let copy =
            vault.entries_for_path(path.to_str().unwrap()).into_iter().find(|e| e.kind == mamori_vault::Kind::Copy);
        let copy = copy.unwrap_or_else(|| panic!("{} was not copied:\n{log}", path.display()));
        vault.restore_to(copy, path).unwrap();
        assert_eq!(std::fs::read(path).unwrap(), text(tag), "{}", path.display());
    }
}

/// A file only read is held open, not copied: when the attacker that read
/// it deletes it (an encrypted copy beside it, the original unlinked), the
/// vault copies it from the held descriptor (once the attacker has deleted
/// a file, what it reads next is pinned on disk), and the restore brings back
/// every deleted original bit for bit, though no read wrote to disk.
#[test]
fn files_read_then_deleted_come_back_from_the_held_descriptors() {
    let ws = Workspace::new();
    ws.corpus(40, 0);
    let agent = ws.start_agent(Some(&ws.config("[canary]\nenabled = false\n")));
    let before = Snapshot::take(&ws.data).unwrap();
    // A backup's pass: everything read, nothing written to the vault.
    read_everything(&ws.data);
    let start = Instant::now();
    let vault = loop {
        let st: Value =
            serde_json::from_slice(&std::fs::read(ws.state.join("agent.json")).unwrap_or_default()).unwrap_or_default();
        if st["vault"]["held_files"].as_u64().unwrap_or(0) >= 40 {
            break st["vault"].clone();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the files read are not held: {st}\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(vault["entries"], 0, "reading wrote to the vault: {vault}");
    let mut sim = ws.simulate("new-then-delete");
    let incidents = ws.wait_for_incident(&mut sim.0, Duration::from_secs(120));
    assert_eq!(incidents.len(), 1, "{incidents:#?}\n{}", agent.log());
    ws.kill(&incidents[0]);
    let _ = sim.0.wait();
    agent.stop();
    let entries = vault_entries(&ws);
    let deleted: Vec<String> = incidents[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["op"] == "delete")
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    assert!(!deleted.is_empty(), "the attacker deleted nothing: {:#?}", incidents[0]);
    // Its first reads came without content facts (it had changed nothing
    // yet): the originals were weighed by the facts their deletes carried,
    // read from the held descriptors.
    let reasons = &incidents[0]["reasons"];
    let replaced = reasons.as_array().unwrap().iter().find(|r| r["indicator"] == "replaced-by-ciphertext");
    let examples = replaced.map(|r| r["examples"].to_string()).unwrap_or_default();
    assert!(examples.contains(&format!("{:?}", deleted[0])), "{} is not among {reasons:#}", deleted[0]);
    // Its first reads were held; once it had deleted a file, what it read
    // next was pinned on disk at the open.
    let mut from_held = 0;
    for path in &deleted {
        let kept = entries
            .iter()
            .find(|e| e["meta"]["path"] == path.as_str())
            .unwrap_or_else(|| panic!("{path} was not kept: {entries:#?}"));
        from_held += usize::from(kept["kind"] == "copy");
    }
    assert!(from_held > 0, "no deleted file was copied from its held descriptor: {entries:#?}");
    let said = restore(&ws, &incidents[0]);
    assert_eq!(before.diff(&Snapshot::take(&ws.data).unwrap()), Default::default(), "{said}");
}
