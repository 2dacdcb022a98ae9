//! The agent defending a real Samba share against SMB clients in network
//! namespaces of their own (`mamori-smblab`): an attacking client is judged
//! on its own, cut off (its next request fails), its smbd processes ended,
//! and what it did undone, while an honest client of the same share keeps
//! working; Windows-like ordinary work stays quiet.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use mamori_smblab::{Client, Lab};
use serde_json::Value;

/// Files in the share before the attack: the attacker stops long before.
const FILES: usize = 40;
/// Decoys off: the content indicators alone must catch each attack.
const NO_DECOYS: &str = "[canary]\nenabled = false\n";

/// Every regular file under `dir`, relative, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk(root, &entry.path(), out);
            } else if kind.is_file() {
                let rel = entry.path().strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(entry.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A lab whose share holds the corpus, protected by an agent.
fn defended(config: &str) -> (Lab, Workspace, Agent, BTreeMap<PathBuf, Vec<u8>>) {
    let lab = Lab::start();
    lab.seed(FILES);
    let before = snapshot(lab.share());
    let mut ws = Workspace::new();
    ws.data = lab.share().to_path_buf();
    let cfg = ws.config(config);
    let agent = ws.start_agent(Some(&cfg));
    (lab, ws, agent, before)
}

fn wait_until(what: &str, limit: Duration, agent: &Agent, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what} did not happen within {limit:?}:\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn steps(inc: &Value) -> Vec<(String, bool)> {
    inc["client"]["steps"]
        .as_array()
        .map(|s| s.iter().map(|s| (s["kind"].as_str().unwrap().to_owned(), s["ok"].as_bool().unwrap())).collect())
        .unwrap_or_default()
}

fn seconds(rfc3339: &str) -> f64 {
    let ts: jiff::Timestamp = rfc3339.parse().unwrap();
    ts.as_nanosecond() as f64 / 1e9
}

/// One attack by client 1 while client 2 works honestly all along.
fn attack(workload: &str, extra: &[&str]) {
    attack_over(workload, extra, false);
}

/// [`attack`], the attacker talking to the server over IPv6 if `v6`.
fn attack_over(workload: &str, extra: &[&str], v6: bool) {
    let (lab, ws, agent, before) = defended(NO_DECOYS);
    let attacker = if v6 { lab.client(1).over_ipv6(lab.address6()) } else { lab.client(1) };
    let attacker_address = if v6 { attacker.address6().to_string() } else { attacker.address().to_string() };
    let honest_client = lab.client(2);
    // In a folder of its own that the attacker's walk (sorted by name)
    // reaches last: a file the attacker holds open is locked for everyone
    // (a sharing violation) whatever mamori does.
    let honest = honest_client.spawn(&["honest", "--interval", "0.05", "--dir", "zz-honest"]);
    // The honest client is at work before the attack starts.
    std::thread::sleep(Duration::from_secs(1));
    let mut args = vec![workload, "--limit", "30", "--op-timeout", "10"];
    args.extend_from_slice(extra);
    let attacked = attacker.run(&args);
    let what = format!("an incident (the attack: {}, touched {})", attacked.status, attacked.touched());
    wait_until(&what, Duration::from_secs(30), &agent, || !ws.incidents().is_empty());
    // The cut is finished once the bundle is written and its processes ended.
    wait_until("the client's processes ended", Duration::from_secs(60), &agent, || {
        ws.incidents().first().is_some_and(|i| steps(i).iter().any(|(k, _)| k == "ended"))
    });
    // Long enough for the honest client to save each of its files again.
    std::thread::sleep(Duration::from_secs(4));
    let honest = honest.stop();
    let incidents = ws.incidents();
    assert_eq!(incidents.len(), 1, "one incident per attacking client: {incidents:#?}\n{}", agent.log());
    let inc = &incidents[0];

    // The client, not the server, was judged, and cut off step by step.
    let client = &inc["client"]["client"];
    assert_eq!(client["address"], attacker_address, "{inc:#}");
    assert_eq!(client["server"], "samba");
    assert_eq!(client["user"], mamori_smblab::USER, "{inc:#}");
    assert!(client["shares"].as_array().is_some_and(|s| s.iter().any(|s| s == mamori_smblab::SHARE)), "{inc:#}");
    let done = steps(inc);
    for kind in ["stopped", "blocked", "ended"] {
        assert!(done.contains(&(kind.to_owned(), true)), "{kind} missing or failed: {done:?}\n{inc:#}");
    }
    let blocked = inc["client"]["steps"].as_array().unwrap().iter().find(|s| s["kind"] == "blocked").unwrap();
    let detail = blocked["detail"].as_str().unwrap();
    assert!(detail.contains(" open connection(s) reset") && !detail.contains(" 0 open"), "{detail}");
    assert_ne!(inc["actor"]["pid"].as_u64(), Some(u64::from(lab.smbd_pid())), "the smbd master is never the actor");
    assert!(lab.smbd_children().iter().all(|pid| !incident_pids(inc).contains(pid)), "its processes are gone");

    // The attacker was stopped within a handful of files, and its next request failed fast.
    let touched = attacked.touched();
    assert!(!attacked.status.success(), "the attack ran to its end: {:#}", attacked.summary);
    let failed_at = attacked.summary["first_failure"]["t"].as_f64().expect("a failure time");
    let detected = seconds(inc["detected_at"].as_str().unwrap());
    let after_verdict = failed_at - detected;
    record_result(
        "smb.txt",
        &format!("{workload}: {touched} files done by the attacker, next request failed {after_verdict:.2} s after the verdict"),
    );
    assert!(touched <= 10, "{workload}: the attacker finished {touched} files:\n{}", agent.log());
    assert!(
        after_verdict < 5.0,
        "{workload}: the attacker's request failed {after_verdict:.2} s after the verdict: {:#}\n{inc:#}\n{}",
        attacked.summary["first_failure"],
        agent.log()
    );

    // The honest client of the same share never noticed.
    assert_eq!(honest.summary["failures"], 0, "the honest client failed: {:#}", honest.summary);
    assert!(honest.summary["successes"].as_u64().unwrap() > 10, "{:#}", honest.summary);
    let honest_files: Vec<String> =
        honest.summary["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect();

    // Restore puts every file back, bit for bit, and leaves the honest client's work.
    let out = mamori(&["restore", inc["id"].as_str().unwrap(), "--state", ws.state.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "restore: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let after = snapshot(lab.share());
    // The honest client's own files are its to keep as it last wrote them.
    let honest_final = |p: &Path| honest_files.iter().any(|h| Path::new(h) == p);
    let lost: Vec<&PathBuf> =
        before.iter().filter(|(p, bytes)| !honest_final(p) && after.get(*p) != Some(bytes)).map(|(p, _)| p).collect();
    assert!(lost.is_empty(), "{workload}: files not restored: {lost:?}");
    let made: Vec<&PathBuf> = after
        .keys()
        .filter(|p| !before.contains_key(*p) && !honest_final(p) && !p.to_string_lossy().contains(" (restored INC-"))
        .collect();
    assert!(made.is_empty(), "{workload}: what the attacker made is still there: {made:?}");
    for f in &honest_files {
        let Some(bytes) = after.get(Path::new(f)) else { panic!("the honest client's {f} was taken away") };
        // Each says when it was written: what the honest client saved after
        // the verdict stands, not an older copy from before the attack.
        let text = String::from_utf8_lossy(bytes);
        let written: f64 = text
            .split("written at ")
            .nth(1)
            .and_then(|t| {
                t.split('.')
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(".")
                    .trim_end_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{f} is not the honest client's text: {text:.80}"));
        assert!(written > detected, "{f}: restore put back an older copy ({written} < {detected})");
    }
    drop(attacker);
    agent.stop();
}

#[test]
fn an_in_place_overwrite_over_smb_is_stopped_and_undone() {
    attack("overwrite", &[]);
}

#[test]
fn rename_then_encrypt_over_smb_is_stopped_and_undone() {
    attack("rename-then-encrypt", &[]);
}

#[test]
fn an_encrypted_copy_then_delete_on_close_over_smb_is_stopped_and_undone() {
    attack("copy-then-delete", &[]);
}

#[test]
fn notes_in_every_folder_over_smb_are_stopped_and_undone() {
    attack("notes", &[]);
}

#[test]
fn a_slow_attack_over_smb_is_stopped_and_undone() {
    attack("slow", &["--interval", "2"]);
}

#[test]
fn an_attack_over_ipv6_is_stopped_and_undone() {
    attack_over("overwrite", &[], true);
}

/// The attack that used to cost 15 incidents: a new SMB connection (a new
/// smbd process) per file, as `smbclient` invocations in a loop make, so
/// stopping one process changes nothing. One incident, the client cut off,
/// every file back.
#[test]
fn an_attacker_that_reconnects_for_every_file_is_one_incident() {
    let (lab, ws, agent, before) = defended(NO_DECOYS);
    let attacker = lab.client(1);
    let server = lab.address().to_string();
    // Consent first: the marker must be in the share, read over SMB.
    let script = r#"
        set -u
        smb() { smbclient "//$SERVER/share" -U "$USER%$PASS" -m SMB3 -t 5 -c "$1" >/dev/null 2>&1; }
        smb "get $MARKER /dev/null" || { echo refused; exit 3; }
        done=0
        for f in $(cd "$SHARE" && find . -type f -name '*.pdf' | sed 's|^\./||' | sort | head -30); do
          size=$(stat -c %s "$SHARE/$f")
          head -c "$size" /dev/urandom > "$TMP/cipher"
          if ! smb "get "$f" /dev/null; put $TMP/cipher "$f""; then break; fi
          done=$((done + 1))
        done
        echo "$done"
    "#;
    let tmp = ws.tmp.path().join("attacker");
    std::fs::create_dir_all(&tmp).unwrap();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", attacker.namespace(), "bash", "-c", script])
        .env("SERVER", &server)
        .env("USER", mamori_smblab::USER)
        .env("PASS", mamori_smblab::PASSWORD)
        .env("MARKER", mamori_sim::MARKER)
        .env("SHARE", lab.share())
        .env("TMP", &tmp)
        .output()
        .unwrap();
    let done: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("the loop says how far it got");
    wait_until("the client's processes ended", Duration::from_secs(60), &agent, || {
        ws.incidents().first().is_some_and(|i| steps(i).iter().any(|(k, _)| k == "ended"))
    });
    std::thread::sleep(Duration::from_secs(2));
    let incidents = ws.incidents();
    assert_eq!(incidents.len(), 1, "its reconnections are one client: {incidents:#?}");
    let inc = &incidents[0];
    assert_eq!(inc["client"]["client"]["address"], attacker.address().to_string());
    record_result("smb.txt", &format!("a connection per file: {done} files done by the attacker"));
    assert!(done <= 10, "the attacker finished {done} files:\n{}", agent.log());
    assert!(inc["procs"].as_array().unwrap().len() >= 2, "each connection is in the incident: {inc:#}");
    let out = mamori(&["restore", inc["id"].as_str().unwrap(), "--state", ws.state.to_str().unwrap()]);
    assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stdout));
    let after = snapshot(lab.share());
    let lost: Vec<&PathBuf> = before.iter().filter(|(p, bytes)| after.get(*p) != Some(bytes)).map(|(p, _)| p).collect();
    assert!(lost.is_empty(), "files not restored: {lost:?}");
    agent.stop();
}

/// An agent with `config` on a lab whose client 1 attacked it and was cut
/// off, with the incident once its processes were ended.
fn cut_off(config: &str) -> (Lab, Workspace, Agent, Client, Value) {
    let (lab, ws, agent, _) = defended(config);
    let attacker = lab.client(1);
    let attacked = attacker.run(&["overwrite", "--limit", "30", "--op-timeout", "5"]);
    assert!(!attacked.status.success(), "the attack ran to its end: {:#}", attacked.summary);
    wait_until("the client's processes ended", Duration::from_secs(60), &agent, || {
        ws.incidents().first().is_some_and(|i| steps(i).iter().any(|(k, _)| k == "ended"))
    });
    let inc = ws.incidents().remove(0);
    (lab, ws, agent, attacker, inc)
}

/// With `disable_account`, the account the client logged in with is
/// disabled in Samba: a second machine with the same credentials is refused.
#[test]
fn the_account_is_disabled_when_asked() {
    let (lab, ws, agent, attacker, inc) = cut_off("[canary]\nenabled = false\n[clients]\ndisable_account = true\n");
    let inc = &inc;
    assert!(steps(inc).contains(&("account_disabled".to_owned(), true)), "{inc:#}");
    // The sealed bundle names the client and the steps taken before it was sealed.
    let bundle = ws.tmp.path().join("bundle");
    let id = inc["id"].as_str().unwrap();
    let out = mamori(&["evidence", id, "--out", bundle.to_str().unwrap(), "--state", ws.state.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sealed: Value = serde_json::from_slice(&std::fs::read(bundle.join("incident.json")).unwrap()).unwrap();
    assert_eq!(sealed["client"]["client"]["address"], attacker.address().to_string(), "{sealed:#}");
    assert_eq!(sealed["client"]["client"]["shares"][0], mamori_smblab::SHARE, "{sealed:#}");
    let sealed_steps = steps(&sealed);
    for kind in ["stopped", "blocked", "account_disabled"] {
        assert!(sealed_steps.contains(&(kind.to_owned(), true)), "{kind}: {sealed_steps:?}");
    }
    let listed = mamori(&["incidents", "--state", ws.state.to_str().unwrap()]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(&format!("SMB client {}", attacker.address())), "{listed}");
    let other_machine = lab.client(2);
    let refused = other_machine.run(&["backup-read", "--op-timeout", "10"]);
    assert!(!refused.status.success(), "a disabled account still logs in: {:#}", refused.summary);
    let why = refused.summary["first_failure"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(why.contains("DISABLED") || why.contains("LOGON") || why.contains("0xc0000072"), "{why}");
    agent.stop();
}

/// A judged client is blocked until an administrator lifts it; then it works again.
#[test]
fn an_unblocked_client_can_work_again() {
    let (_lab, ws, agent, attacker, _) = cut_off(NO_DECOYS);
    let state = ws.state.to_str().unwrap();
    let status = mamori(&["status", "--state", state]);
    let listed = String::from_utf8_lossy(&status.stdout);
    let addr = attacker.address().to_string();
    assert!(listed.contains(&format!("client blocked: {addr}")), "mamori status:\n{listed}");
    let blocked = attacker.run(&["backup-read", "--op-timeout", "5"]);
    assert!(!blocked.status.success(), "a blocked client reached the share: {:#}", blocked.summary);

    let out = mamori(&["unblock", &addr, "--state", state]);
    assert!(out.status.success(), "unblock: {}", String::from_utf8_lossy(&out.stderr));
    let status = mamori(&["status", "--state", state]);
    assert!(!String::from_utf8_lossy(&status.stdout).contains("client blocked"));
    // The agent lifts its verdict within its next check.
    std::thread::sleep(Duration::from_secs(3));
    let back = attacker.run(&["backup-read", "--op-timeout", "10"]);
    assert!(back.status.success(), "the unblocked client still fails: {:#}\n{}", back.summary, agent.log());
    assert_eq!(ws.incidents().len(), 1, "reading is not an attack");
    let again = mamori(&["unblock", &addr, "--state", state]);
    assert_eq!(again.status.code(), Some(1), "unblocking twice says it was not blocked");
    agent.stop();
}

/// Ordinary Windows-like work over SMB, under the agent with its defaults.
fn quiet(workload: &str, client: &Client, extra: &[&str], ws: &Workspace, agent: &Agent) {
    let mut args = vec![workload];
    args.extend_from_slice(extra);
    let out = client.run(&args);
    assert!(out.status.success(), "{workload}: {:#}\n{}", out.summary, out.stderr);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(ws.incidents(), Vec::<Value>::new(), "{workload} raised an incident:\n{}", agent.log());
}

#[test]
fn windows_like_work_over_smb_raises_no_incident() {
    let (lab, ws, agent, _) = defended("");
    let client = lab.client(1);
    let source = lab.documents(40);
    quiet("copy-in", &client, &["--source", source.to_str().unwrap()], &ws, &agent);
    quiet("office-save", &client, &["--limit", "20"], &ws, &agent);
    quiet("backup-read", &client, &[], &ws, &agent);
    quiet("bulk-rename", &client, &[], &ws, &agent);
    agent.stop();
}
