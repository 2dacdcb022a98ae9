//! The responder's case, end to end: the bundle written at a real incident,
//! its export and verification, the report, the timeline exports, family
//! identification and network isolation through the command line.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const CONFIG: &str = "[canary]\nenabled = false\n[evidence]\nmemory_image = true\nmemory_cap_mib = 64\n";

/// Waits for the bundle of `id` to be sealed.
fn bundle(ws: &Workspace, id: &str) -> PathBuf {
    let dir = ws.state.join("evidence").join(id);
    let start = Instant::now();
    while !dir.join("seal.json").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no sealed bundle in {}", dir.display());
        std::thread::sleep(Duration::from_millis(100));
    }
    dir
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn an_incident_leaves_a_sealed_bundle_and_any_changed_byte_is_named() {
    let ws = Workspace::new();
    let (agent, sim, inc) = ws.attacked(40, Some(CONFIG), "notes-during");
    let id = inc["id"].as_str().unwrap();
    let dir = bundle(&ws, id);
    let state = ws.state.to_str().unwrap();

    // What a responder needs first is there.
    let procs: Vec<Value> = serde_json::from_slice(&std::fs::read(dir.join("processes.json")).unwrap()).unwrap();
    let actor = procs.iter().find(|p| p["pid"] == sim.0.id()).expect("the attacker's process is in the bundle");
    assert_eq!(actor["exe_sha256"].as_str().map(str::len), Some(64), "{actor:#}");
    assert!(dir.join("network.json").exists() && dir.join("host.json").exists() && dir.join("maps").is_dir());
    assert!(dir.join("memory").is_dir(), "memory image asked for but not taken");
    let timeline = std::fs::read_to_string(dir.join("timeline.jsonl")).unwrap();
    assert!(timeline.lines().count() >= 3, "{timeline}");
    let notes: Vec<Value> = serde_json::from_slice(&std::fs::read(dir.join("notes.json")).unwrap()).unwrap();
    assert!(!notes.is_empty(), "the simulator's ransom notes were not found");
    let identified: Value = serde_json::from_slice(&std::fs::read(dir.join("identification.json")).unwrap()).unwrap();
    assert_eq!(identified["family"], Value::Null, "the simulator is no known family: {identified:#}");

    let out = mamori(&["evidence", "verify", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));

    // Exported as a folder and as an archive, both verify.
    let copy = ws.tmp.path().join("export");
    let out = mamori(&["evidence", "--state", state, id, "--out", copy.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let archive = ws.tmp.path().join("case.tar.zst");
    let out = mamori(&["evidence", "--state", state, id, "--out", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(mamori(&["evidence", "verify", archive.to_str().unwrap()]).status.success());

    // Any byte of any file changed: verification fails and names the file.
    let files = files_under(&copy);
    assert!(files.len() >= 8, "{files:?}");
    for file in &files {
        let mut bytes = std::fs::read(file).unwrap();
        let at = bytes.len() / 2;
        if bytes.is_empty() {
            bytes.push(b'x');
        } else {
            bytes[at] ^= 0x01;
        }
        let original = std::fs::read(file).unwrap();
        std::fs::write(file, &bytes).unwrap();
        let out = mamori(&["evidence", "verify", copy.to_str().unwrap()]);
        std::fs::write(file, &original).unwrap();
        let name = file.strip_prefix(&copy).unwrap().to_str().unwrap();
        assert_eq!(out.status.code(), Some(1), "{name} changed but the bundle verified:\n{}", text(&out));
        assert!(text(&out).contains(name), "{name} not named:\n{}", text(&out));
    }
    assert!(mamori(&["evidence", "verify", copy.to_str().unwrap()]).status.success());
    agent.stop();
}

#[test]
fn the_report_and_timelines_tell_the_incident() {
    let ws = Workspace::new();
    let (agent, _sim, inc) = ws.attacked(30, Some("[canary]\nenabled = false\n"), "overwrite");
    let id = inc["id"].as_str().unwrap();
    bundle(&ws, id);
    let state = ws.state.to_str().unwrap();
    ws.kill(&inc);
    assert!(mamori(&["restore", id, "--state", state]).status.success());

    for (lang, words) in
        [("ja", ["概要", "個人情報保護委員会"]), ("en", ["Summary", "Personal Information Protection Commission"])]
    {
        for format in ["md", "html"] {
            let out = mamori(&["report", "--state", state, id, "--lang", lang, "--format", format]);
            assert!(out.status.success(), "{}", text(&out));
            let report = String::from_utf8(out.stdout).unwrap();
            assert!(report.contains(id), "{lang}/{format}: no incident id");
            assert!(report.contains(inc["actor"]["exe"].as_str().unwrap()), "{lang}/{format}: no executable");
            for w in words {
                assert!(report.contains(w), "{lang}/{format}: no {w:?}");
            }
        }
    }

    let out = mamori(&["timeline", "--state", state, id, "--format", "timesketch"]);
    assert!(out.status.success(), "{}", text(&out));
    let rows: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(rows.len() >= 3);
    for row in &rows {
        for col in ["message", "datetime", "timestamp_desc"] {
            assert!(row[col].is_string(), "{col} missing in {row}");
        }
    }
    let out = mamori(&["timeline", "--state", state, id, "--format", "ecs"]);
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let alert = lines.last().unwrap();
    assert_eq!(alert["event"]["kind"], "alert", "{alert:#}");
    assert_eq!(alert["threat"]["technique"]["id"][0], "T1486");
    agent.stop();
}

#[test]
fn identify_names_a_known_family_and_never_guesses() {
    let ws = Workspace::new();
    let akira = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/ransomware-notes/akira/akira_readme.txt");
    let note = ws.tmp.path().join("readme.txt");
    std::fs::copy(akira, &note).expect("the shared ransom notes (../shared/data) are needed");
    let out = mamori(&["identify", "--json", note.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let id: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(id["family"], "Akira", "{id:#}");

    let plain = ws.tmp.path().join("minutes.txt");
    std::fs::write(&plain, "Minutes of the board meeting. Budget approved; the files are on the share.\n").unwrap();
    let out = mamori(&["identify", "--json", plain.to_str().unwrap()]);
    let id: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(id["family"], Value::Null, "{id:#}");
    assert_eq!(id["confidence"], "none");
}

/// A network namespace made for the test, removed when dropped.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("mamori-cli-{}", std::process::id());
        assert!(Command::new("ip").args(["netns", "add", &name]).status().unwrap().success());
        Netns(name)
    }

    fn mamori(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip").args(["netns", "exec", &self.0, BIN]).args(args).output().unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn isolate_and_undo_through_the_command_line_in_a_namespace() {
    require_root();
    let ns = Netns::new();
    let state = tempfile::tempdir().unwrap();
    let state = state.path().to_str().unwrap();
    assert_eq!(ns.mamori(&["isolate", "--status"]).status.code(), Some(1));
    let out = ns.mamori(&["isolate", "--state", state, "--allow", "192.0.2.10", "--allow", "fd00::/64"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ns.mamori(&["isolate", "--status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("192.0.2.10"), "{}", text(&out));
    let out = ns.mamori(&["isolate", "--undo", "--state", state]);
    assert!(out.status.success() && text(&out).contains("lifted"), "{}", text(&out));
    assert_eq!(ns.mamori(&["isolate", "--status"]).status.code(), Some(1));
    let out = ns.mamori(&["isolate", "--allow", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("not an IP address"), "{}", text(&out));
}

#[test]
fn an_incident_can_isolate_the_host_automatically() {
    let ws = Workspace::new();
    ws.corpus(30, 0);
    let ns = Netns::new();
    let cfg = ws.config("[canary]\nenabled = false\n[isolate]\non_incident = true\nallow = [\"192.0.2.10\"]\n");
    let agent = ws.start_agent_under(Some(&cfg), &["ip", "netns", "exec", &ns.0]);
    assert_eq!(ns.mamori(&["isolate", "--status"]).status.code(), Some(1), "isolated before any incident");
    let mut sim = ws.simulate("overwrite");
    let incidents = ws.wait_for_incident(&mut sim.0, Duration::from_secs(120));
    assert_eq!(incidents.len(), 1, "{incidents:#?}\n{}", agent.log());
    let status = ns.mamori(&["isolate", "--status"]);
    assert!(status.status.success() && text(&status).contains("192.0.2.10"), "{}", text(&status));
    let notes = incidents[0]["notes"].as_array().unwrap();
    assert!(notes.iter().any(|n| n.as_str().unwrap().starts_with("network isolation")), "{notes:?}");
    ws.kill(&incidents[0]);
    assert!(ns.mamori(&["isolate", "--undo"]).status.success());
    agent.stop();
}
