//! The agent's life cycle and its commands: status, decoys, resume, kill,
//! the kill policy, and clear errors on bad input.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn status_follows_the_agent() {
    let ws = Workspace::new();
    let state = ws.state.to_str().unwrap();
    assert!(!mamori(&["status", "--state", state]).status.success());
    let agent = ws.start_agent(None);
    let out = mamori(&["status", "--state", state]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("protection active"));
    agent.stop();
    assert!(!mamori(&["status", "--state", state]).status.success(), "status must fail once the agent ended");
}

#[test]
fn a_touched_decoy_stops_the_attack_at_once() {
    let ws = Workspace::new();
    let (agent, _sim, incident) = ws.attacked(40, None, "overwrite");
    assert!(ws.data.join(".0-contracts.pdf").exists(), "decoys are placed");
    let reasons = incident["reasons"].to_string();
    assert!(reasons.contains(r#""indicator":"canary""#), "{reasons}");
    ws.kill(&incident);
    agent.stop();
}

#[test]
fn resume_continues_the_program_and_trusts_it_for_that_folder() {
    let ws = Workspace::new();
    let (agent, mut sim, incident) = ws.attacked(30, Some("[canary]\nenabled = false\n"), "overwrite");
    let id = incident["id"].as_str().unwrap();
    let out = mamori(&["resume", id, "--state", ws.state.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Resumed and trusted, the program runs to its end (some files were
    // refused while it was judged, so it may report errors, but it ends).
    let status = sim.0.wait().unwrap();
    assert!(status.code().is_some(), "the resumed program ended on its own: {status}");
    let after = ws.incidents();
    assert_eq!(after.len(), 1, "no second incident for a trusted program: {after:#?}");
    assert_eq!(after[0]["action"], "resumed");
    agent.stop();
}

#[test]
fn the_kill_policy_kills_the_actor() {
    let ws = Workspace::new();
    let (agent, mut sim, incident) =
        ws.attacked(30, Some("[canary]\nenabled = false\n[response]\npolicy = \"kill\"\n"), "overwrite");
    assert_eq!(incident["action"], "killed");
    let status = sim.0.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    agent.stop();
}

#[test]
fn incidents_json_has_the_documented_fields() {
    let ws = Workspace::new();
    let (agent, sim, incident) = ws.attacked(30, None, "truncate");
    let inc = &incident;
    for key in ["id", "detected_at", "actor", "pids", "action", "reasons", "files"] {
        assert!(!inc[key].is_null(), "missing {key}: {inc:#}");
    }
    for key in ["pid", "exe", "cmdline", "uid"] {
        assert!(!inc["actor"][key].is_null(), "missing actor.{key}: {inc:#}");
    }
    assert!(
        jiff::Timestamp::strptime("%Y-%m-%dT%H:%M:%S%.fZ", inc["detected_at"].as_str().unwrap()).is_ok()
            || inc["detected_at"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok()
    );
    assert_eq!(inc["actor"]["pid"].as_u64(), Some(sim.0.id() as u64));
    let file = &inc["files"][0];
    assert!(file["path"].as_str().unwrap().starts_with(ws.data.to_str().unwrap()));
    assert!(file["op"].is_string());
    // Restart: incidents persist.
    agent.stop();
    let agent = ws.start_agent(None);
    assert_eq!(ws.incidents().len(), 1);
    ws.kill(inc);
    agent.stop();
}

#[test]
fn bad_input_gets_a_clear_error() {
    let ws = Workspace::new();
    let missing = ws.tmp.path().join("no-such-folder");
    let out = mamori(&["run", "--protect", missing.to_str().unwrap(), "--state", ws.state.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-folder") && err.contains("does not exist"), "{err}");

    let cfg = ws.config("[detect]\nthreshold = -3\n");
    let out = mamori(&[
        "run",
        "--protect",
        ws.data.to_str().unwrap(),
        "--state",
        ws.state.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("detect.threshold"), "{err}");

    std::fs::create_dir_all(&ws.state).unwrap();
    std::fs::write(ws.state.join("mamori.db"), b"this is not a database, it is a corrupt file").unwrap();
    let out = mamori(&["incidents", "--state", ws.state.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mamori.db"), "{err}");
}

#[test]
fn the_simulator_refuses_an_unmarked_folder() {
    let ws = Workspace::new();
    std::fs::write(ws.data.join("precious.txt"), b"do not touch").unwrap();
    let out = mamori(&["sim", "run", "overwrite", ws.data.to_str().unwrap()]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read(ws.data.join("precious.txt")).unwrap(), b"do not touch");
}

#[test]
fn record_then_replay_gives_the_same_verdict() {
    let ws = Workspace::new();
    ws.corpus(30, 0);
    let trace = ws.tmp.path().join("attack.trace");
    let cfg = ws.config("[canary]\nenabled = false\n");
    let mut agent = Command::new(BIN);
    agent
        .args(["run", "--protect", ws.data.to_str().unwrap(), "--state", ws.state.to_str().unwrap()])
        .args(["--config", cfg.to_str().unwrap(), "--record", trace.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let agent = Started(agent.spawn().unwrap());
    let start = std::time::Instant::now();
    while !mamori(&["status", "--state", ws.state.to_str().unwrap()]).status.success() {
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut sim = ws.simulate("overwrite");
    let incidents = ws.wait_for_incident(&mut sim.0, Duration::from_secs(120));
    assert_eq!(incidents.len(), 1);
    unsafe { libc::kill(agent.0.id() as i32, libc::SIGTERM) };
    let mut agent = agent;
    assert!(agent.0.wait().unwrap().success());
    let out = mamori(&["replay", trace.to_str().unwrap(), "--json", "--config", cfg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verdicts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let verdicts = verdicts.as_array().unwrap();
    assert_eq!(verdicts.len(), 1, "{verdicts:#?}");
    assert_eq!(verdicts[0]["actor"]["pid"], incidents[0]["actor"]["pid"]);
    ws.kill(&incidents[0]);
}

#[test]
fn restore_dry_run_changes_nothing_and_to_dir_leaves_the_originals() {
    let ws = Workspace::new();
    ws.corpus(30, 0);
    let cfg = ws.config("[canary]\nenabled = false\n");
    let agent = ws.start_agent(Some(&cfg));
    let before = mamori_sim::Snapshot::take(&ws.data).unwrap();
    let mut sim = ws.simulate("overwrite");
    let incidents = ws.wait_for_incident(&mut sim.0, Duration::from_secs(120));
    assert_eq!(incidents.len(), 1, "{}", agent.log());
    ws.kill(&incidents[0]);
    let _ = sim.0.wait();
    let (id, state) = (incidents[0]["id"].as_str().unwrap(), ws.state.to_str().unwrap());
    let attacked = mamori_sim::Snapshot::take(&ws.data).unwrap();
    assert_ne!(before.diff(&attacked), Default::default(), "the attack changed something");

    let out = mamori(&["restore", id, "--state", state, "--dry-run"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("restore "), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(attacked.diff(&mamori_sim::Snapshot::take(&ws.data).unwrap()), Default::default(), "dry run");

    let elsewhere = ws.tmp.path().join("recovered");
    let out = mamori(&["restore", id, "--state", state, "--to", elsewhere.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        attacked.diff(&mamori_sim::Snapshot::take(&ws.data).unwrap()),
        Default::default(),
        "originals untouched"
    );
    // What came back elsewhere is exactly the pre-attack content of the files hit.
    let recovered = mamori_sim::Snapshot::take(&elsewhere).unwrap();
    assert!(!recovered.is_empty());
    let full = before.diff(&recovered);
    assert_eq!(full.changed, 0, "every recovered file has its original content");
    assert_eq!(full.added, 0);
    agent.stop();
}

#[test]
fn another_process_touching_the_vault_is_stopped() {
    let ws = Workspace::new();
    ws.corpus(10, 0);
    let cfg = ws.config("[canary]\nenabled = false\n");
    let agent = ws.start_agent(Some(&cfg));
    ws.fill_the_vault(&agent);
    let first = ws.state.join("vault/objects/1");
    let mut thief = Started(
        Command::new("sh")
            .arg("-c")
            .arg(format!("exec 3< {}; sleep 60", first.display()))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let incidents = ws.wait_for_incident(&mut thief.0, Duration::from_secs(60));
    assert_eq!(incidents.len(), 1, "{}", agent.log());
    assert!(incidents[0]["reasons"].to_string().contains(r#""indicator":"vault-touched""#), "{:#}", incidents[0]);
    // Stopped before its open was refused: it never held the before-image.
    let held = std::fs::read_link(format!("/proc/{}/fd/3", thief.0.id()));
    assert!(held.is_err(), "the thief holds {held:?}");
    ws.kill(&incidents[0]);
    agent.stop();
}
