//! `mamori audit` as a user runs it: mamori's own checks against a real
//! agent, the exit status, the reports, and new findings told once through
//! a real alert output (the ECS file). Each audit runs in a network
//! namespace of its own (`unshare --net`), where nothing listens, so the
//! host's own services do not change what these tests see.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Workspace, BIN};
use serde_json::Value;

fn audit(args: &[&str]) -> Output {
    Command::new("unshare").args(["--net", "--", BIN, "audit"]).args(args).output().expect("run unshare")
}

/// The findings of mamori's own checks, as (check, severity, target, detail).
fn mamori_findings(out: &Output) -> Vec<(String, String, String, String)> {
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(!json.is_empty(), "no JSON: {}", String::from_utf8_lossy(&out.stderr));
    common::audit_findings(&json).into_iter().filter(|f| f.0.starts_with("mamori.")).collect()
}

fn alerted(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"]["action"] == "audit-finding")
        .map(|v| v.to_string())
        .collect()
}

#[test]
fn the_audit_finds_what_mamori_leaves_unprotected_and_tells_each_finding_once() {
    let ws = Workspace::new();
    let other = ws.tmp.path().join("accounts");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("ledger.xlsx"), b"numbers").unwrap();
    let alerts = ws.tmp.path().join("alerts.json");
    let config = ws.config(&format!(
        "[agent]\nprotect = [\"{data}\"]\n[audit]\ndata_folders = [\"{data}\", \"{other}\", \"{empty}\"]\n\
         [alerts.ecs]\npath = \"{alerts}\"\n",
        data = ws.data.display(),
        other = other.display(),
        empty = ws.tmp.path().join("does-not-exist").display(),
        alerts = alerts.display()
    ));
    let (cfg, state) = (config.to_str().unwrap(), ws.state.to_str().unwrap());

    // No agent yet: it is the worst finding, with the folder outside protection.
    let out = audit(&["--json", "--config", cfg, "--state", state]);
    assert_eq!(out.status.code(), Some(5), "high findings exit 5: {}", String::from_utf8_lossy(&out.stderr));
    let found = mamori_findings(&out);
    assert!(
        found
            .iter()
            .any(|f| (f.0.as_str(), f.1.as_str(), f.2.as_str()) == ("mamori.agent_not_running", "high", "mamori")),
        "{found:?}"
    );
    let unprotected: Vec<_> = found.iter().filter(|f| f.0 == "mamori.unprotected_folder").collect();
    assert_eq!(unprotected.len(), 1, "only the folder with data outside protection: {found:?}");
    assert_eq!(unprotected[0].2, other.display().to_string());
    assert!(!found.iter().any(|f| f.0 == "mamori.no_alerts"), "an output is configured: {found:?}");
    let told = alerted(&alerts);
    assert!(told.iter().any(|a| a.contains("mamori.agent_not_running")), "{told:?}");
    assert!(told.iter().any(|a| a.contains("mamori.unprotected_folder")), "{told:?}");

    // The same findings again: nobody is told twice.
    let out = audit(&["--json", "--config", cfg, "--state", state]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(alerted(&alerts).len(), told.len(), "nothing new, nothing told");

    // With the agent running, its own finding goes; the decoys it placed are found.
    let agent = ws.start_agent(Some(&config));
    let out = audit(&["--json", "--only", "mamori", "--config", cfg, "--state", state]);
    let found = mamori_findings(&out);
    assert!(!found.iter().any(|f| f.0 == "mamori.agent_not_running"), "{found:?}");
    assert!(!found.iter().any(|f| f.0 == "mamori.decoys_missing"), "{found:?}");
    assert!(found.iter().any(|f| f.0 == "mamori.unprotected_folder"), "{found:?}");
    agent.stop();
}

#[test]
fn the_report_is_written_in_the_language_and_format_asked() {
    let ws = Workspace::new();
    let config = ws.config(&format!("[agent]\nprotect = [\"{}\"]\n", ws.data.display()));
    let out_file = ws.tmp.path().join("audit.html");
    let (cfg, state) = (config.to_str().unwrap(), ws.state.to_str().unwrap());
    let args = ["--only", "mamori", "--format", "html", "--lang", "ja", "--config", cfg, "--state", state];
    let out = audit(&[&args[..], &["--out", out_file.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty(), "the report went to the file");
    let html = std::fs::read_to_string(&out_file).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<html lang=\"ja\">"));
    assert!(html.contains("mamori のエージェントが動いていない"), "{html}");
    assert!(html.contains("通知先が設定されていない"), "no [alerts] here: {html}");
    // On the terminal: plain text, in the language asked.
    let out = audit(&["--only", "mamori", "--lang", "en", "--config", cfg, "--state", state]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Ransomware readiness audit: ") && text.contains("\n  Fix: "), "{text}");
    // A partial run is not remembered: a later full run still tells everything.
    assert!(!ws.state.join("audit/last.json").exists());
}

#[test]
fn a_bad_audit_table_is_refused_with_the_key_named() {
    let ws = Workspace::new();
    let config = ws.config("[[audit.restic]]\nrepository = \"/srv/backup\"\npasword_file = \"/etc/p\"\n");
    let out = audit(&["--json", "--config", config.to_str().unwrap(), "--state", ws.state.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "a config error, as for every command");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pasword_file"), "{err}");
}

#[test]
fn an_ordinary_user_is_told_to_run_it_as_root() {
    let user = mamori_testuser::ordinary();
    let out = user.command(BIN).args(["audit", "--json", "--state", "/nonexistent"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run it as root"), "{err}");
    assert!(out.stdout.is_empty(), "no partial audit");
}

/// The audit keeps records in the state directory as root: one another
/// user can change (a link planted at `audit/last.json.tmp`, a FIFO at
/// `audit/last.json`) is refused before anything is read or written there.
#[test]
fn a_state_directory_others_can_change_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    let state = ws.tmp.path().join("shared-state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = audit(&["--json", "--only", "backups", "--state", state.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unsafe state directory"), "{err}");
    assert!(out.stdout.is_empty(), "no partial audit");
    assert!(std::fs::read_dir(&state).unwrap().next().is_none(), "nothing was written there");
    // Only mamori's facts or the exposure: nothing is kept, the state is only read.
    let out = audit(&["--json", "--only", "exposure", "--state", state.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}
