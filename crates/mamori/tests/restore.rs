//! `mamori restore` after real attacks by an ordinary user: it must bring
//! every user file back, never be turned into a root write elsewhere, and
//! never hang.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use mamori_sim::Snapshot;
use mamori_testuser::User;

/// A workspace whose data folder belongs to the test user, attacked by the
/// simulator running as that user, until the incident.
fn attacked_by_user(config: &str, family: &str) -> (Workspace, Agent, Started, serde_json::Value, User, Snapshot) {
    let user = mamori_testuser::ordinary();
    let ws = Workspace::new();
    std::fs::set_permissions(ws.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    ws.corpus(60, 0);
    let chown = Command::new("chown").arg("-R").arg(format!("{}:{}", user.uid, user.gid)).arg(&ws.data).status();
    assert!(chown.unwrap().success());
    let cfg = ws.config(config);
    let agent = ws.start_agent(Some(&cfg));
    let before = Snapshot::take(&ws.data).unwrap();
    let mut sim = ws.simulate_as(&user, family);
    let mut incidents = ws.wait_for_incident(&mut sim.0, Duration::from_secs(120));
    assert_eq!(incidents.len(), 1, "{family}: {incidents:#?}\n{}", agent.log());
    (ws, agent, sim, incidents.remove(0), user, before)
}

/// Runs `mamori restore`, failing the test if it has not ended within a minute.
fn restore(ws: &Workspace, id: &str, extra: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(["restore", id, "--state", ws.state.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("restore hung: {:?}", child.wait_with_output().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn said(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn a_directory_swapped_for_a_link_after_the_incident_takes_no_root_write() {
    let (ws, agent, _sim, inc, user, _before) = attacked_by_user("[canary]\nenabled = false\n", "overwrite");
    ws.kill(&inc);
    // A folder holding a file the attacker changed becomes a link to a
    // directory only root may write.
    let touched = inc["files"].as_array().unwrap().iter().find_map(|f| {
        let dir = Path::new(f["path"].as_str()?).parent()?.to_path_buf();
        (dir != ws.data).then_some(dir)
    });
    let dir = touched.unwrap_or_else(|| panic!("the attack touched no file in a subfolder: {inc:#}"));
    let outside = ws.tmp.path().join("root-only");
    std::fs::create_dir(&outside).unwrap();
    user.run("mv", &[dir.to_str().unwrap(), &format!("{}.moved", dir.display())]);
    user.run("ln", &["-s", outside.to_str().unwrap(), dir.to_str().unwrap()]);

    let out = restore(&ws, inc["id"].as_str().unwrap(), &[]);
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "restore wrote through the link:\n{}", said(&out));
    assert!(!out.status.success(), "files under the link could not be restored, yet it says success:\n{}", said(&out));
    assert!(said(&out).contains("symbolic link"), "{}", said(&out));
    agent.stop();
}

#[test]
fn decoys_hit_by_the_attacker_neither_fail_nor_hang_the_restore() {
    let (ws, agent, _sim, inc, _user, before) = attacked_by_user("", "rename-first");
    let reasons = inc["reasons"].to_string();
    assert!(reasons.contains(r#""indicator":"canary""#), "the attack meets the decoys first: {reasons}");
    ws.kill(&inc);
    let out = restore(&ws, inc["id"].as_str().unwrap(), &[]);
    assert!(out.status.success(), "{}\n{}", said(&out), agent.log());
    assert!(said(&out).contains("decoy"), "the decoys are accounted for: {}", said(&out));
    // The agent puts the decoys back itself.
    let start = Instant::now();
    let diff = loop {
        let diff = before.diff(&Snapshot::take(&ws.data).unwrap());
        if diff == Default::default() || start.elapsed() > Duration::from_secs(20) {
            break diff;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(diff, Default::default(), "{}\n{}", said(&out), agent.log());
    assert!(ws.incidents().len() == 1, "the restore itself was taken for an attack:\n{}", agent.log());
    agent.stop();
}
