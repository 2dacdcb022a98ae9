//! Alerts from the real agent: an incident reaches the webhook and the ECS
//! file; a webhook that was down for the whole incident gets it, once, when
//! it comes back; a dead output does not hold up the stop nor the others; a
//! restore tells that it finished; `mamori alert test` says which output works.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// An HTTP endpoint that records each POST's body.
struct Hook {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
}

impl Hook {
    fn on(port: u16) -> Hook {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Some(body) = read_request(stream) {
                    seen.lock().unwrap().push(body);
                }
            }
        });
        Hook { port, bodies }
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().iter().map(|b| serde_json::from_str(b).unwrap()).collect()
    }

    /// Waits (bounded) until `n` bodies mention `needle`.
    fn wait_for(&self, needle: &str, n: usize, limit: Duration) -> Vec<String> {
        let start = Instant::now();
        loop {
            let got: Vec<String> = self.bodies.lock().unwrap().iter().filter(|b| b.contains(needle)).cloned().collect();
            if got.len() >= n || start.elapsed() > limit {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Reads one request (headers, then Content-Length bytes, bounded) and answers 200.
fn read_request(mut stream: TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_lowercase();
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while buf.len() < header_end + len.min(1 << 20) {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").ok()?;
    Some(String::from_utf8_lossy(&buf[header_end..header_end + len]).into_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn ecs_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn an_incident_reaches_the_webhook_and_the_ecs_file_and_a_dead_output_holds_up_nothing() {
    let ws = Workspace::new();
    let hook = Hook::on(0);
    let ecs = ws.tmp.path().join("log/alerts.json");
    // An output that accepts and never answers, and one on a closed port.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = format!(
        "[canary]\nenabled = false\n[alerts]\nretry_max_seconds = 2\n\
         [alerts.webhook]\nurl = \"http://127.0.0.1:{}/hook\"\n\
         [alerts.ecs]\npath = \"{}\"\n\
         [alerts.elasticsearch]\nurl = \"http://127.0.0.1:{}\"\ntimeout_seconds = 3\n\
         [alerts.cef]\nurl = \"tcp://127.0.0.1:{}\"\n",
        hook.port,
        ecs.display(),
        hang.local_addr().unwrap().port(),
        free_port(),
    );
    let (agent, _sim, inc) = ws.attacked(30, Some(&config), "overwrite");
    let id = inc["id"].as_str().unwrap();
    assert!(
        inc["stop_latency_us"].as_u64().unwrap() < 1_000_000,
        "the stop waited on something: {inc:#}\n{}",
        agent.log()
    );

    let got = hook.wait_for(id, 1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "the webhook did not get {id} exactly once:\n{}", agent.log());
    let start = Instant::now();
    let doc = loop {
        if let Some(doc) = ecs_lines(&ecs).into_iter().find(|d| d.to_string().contains(id)) {
            break doc;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no ECS line for {id}:\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(doc["event"]["kind"], "alert", "{doc:#}");
    assert_eq!(doc["threat"]["technique"]["id"], "T1486", "{doc:#}");
    assert_eq!(doc["process"]["pid"], inc["actor"]["pid"], "{doc:#}");

    // Stopping is told too (protection degraded), to the outputs that work.
    let log = agent.stop();
    let stopping = hook.wait_for("agent_stopping", 1, Duration::from_secs(5));
    assert_eq!(stopping.len(), 1, "the agent's stop was not told:\n{log}");
    assert!(log.contains("alert not sent"), "the dead outputs were not reported:\n{log}");
}

#[test]
fn a_webhook_down_for_the_whole_incident_gets_it_once_when_back() {
    let ws = Workspace::new();
    let port = free_port();
    let config = format!(
        "[canary]\nenabled = false\n[alerts]\nretry_max_seconds = 1\n\
         [alerts.webhook]\nurl = \"http://127.0.0.1:{port}/hook\"\n"
    );
    let (agent, _sim, inc) = ws.attacked(30, Some(&config), "overwrite");
    let id = inc["id"].as_str().unwrap().to_owned();
    ws.kill(&inc);
    // A second incident while still down: both must come, in order.
    std::fs::create_dir_all(ws.data.join("more")).unwrap();
    let out = mamori(&["sim", "corpus", ws.data.join("more").to_str().unwrap(), "--docs", "20", "--large", "0"]);
    assert!(out.status.success());
    let mut sim = Started(
        std::process::Command::new(BIN)
            .args(["sim", "run", "overwrite"])
            .arg(ws.data.join("more"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while ws.incidents().len() < 2 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let incs = ws.incidents();
    assert_eq!(incs.len(), 2, "{incs:#?}\n{}", agent.log());
    ws.kill(&incs[1]);
    let _ = sim.0.wait();
    let second = incs[1]["id"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_secs(2));
    let state = ws.state.to_str().unwrap();
    let said = String::from_utf8_lossy(&mamori(&["status", "--state", state]).stdout).into_owned();
    assert!(said.contains("alerts: webhook: 2 event(s) waiting"), "{said}");

    let hook = Hook::on(port);
    let got = hook.wait_for(&second, 1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "{second} did not arrive once the webhook was back:\n{}", agent.log());
    std::thread::sleep(Duration::from_secs(2));
    let texts: Vec<String> = hook.bodies().iter().map(Value::to_string).collect();
    let first_at = texts.iter().position(|t| t.contains(&id));
    let second_at = texts.iter().position(|t| t.contains(&second));
    assert!(first_at.is_some() && first_at < second_at, "not in order: {texts:#?}");
    assert_eq!(texts.iter().filter(|t| t.contains(&id)).count(), 1, "{id} twice: {texts:#?}");
    assert_eq!(texts.iter().filter(|t| t.contains(&second)).count(), 1, "{second} twice: {texts:#?}");
    let said = String::from_utf8_lossy(&mamori(&["status", "--state", state]).stdout).into_owned();
    assert!(said.contains("alerts:    webhook: all sent"), "{said}");
}

#[test]
fn a_restore_tells_that_it_finished_through_the_agents_outputs() {
    let ws = Workspace::new();
    let hook = Hook::on(0);
    let config =
        format!("[canary]\nenabled = false\n[alerts.webhook]\nurl = \"http://127.0.0.1:{}/hook\"\n", hook.port);
    let (agent, _sim, inc) = ws.attacked(30, Some(&config), "overwrite");
    ws.kill(&inc);
    let id = inc["id"].as_str().unwrap();
    // Without --config: the outputs are those the agent runs with.
    let out = mamori(&["restore", id, "--state", ws.state.to_str().unwrap()]);
    assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stdout));
    let got = hook.wait_for("restore", 2, Duration::from_secs(10));
    let finished: Vec<&String> = got.iter().filter(|b| b.contains("restore-finished") && b.contains(id)).collect();
    assert_eq!(finished.len(), 1, "{got:#?}\n{}", agent.log());
}

#[test]
fn alert_test_says_which_output_works() {
    let ws = Workspace::new();
    let hook = Hook::on(0);
    let dead = free_port();
    let config = ws.config(&format!(
        "[alerts.webhook]\nurl = \"http://127.0.0.1:{}/hook\"\n[alerts.syslog]\nurl = \"tcp://127.0.0.1:{dead}\"\ntimeout_seconds = 2\n",
        hook.port
    ));
    let out = mamori(&["alert", "test", "--config", config.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.lines().any(|l| l.starts_with("ok") && l.contains("webhook")), "{said}");
    assert!(
        said.lines().any(|l| l.starts_with("FAILED") && l.contains("syslog") && l.contains(&dead.to_string())),
        "{said}"
    );
    assert_eq!(hook.wait_for("test", 1, Duration::from_secs(5)).len(), 1, "{said}");

    let none = ws.config("[canary]\nenabled = false\n");
    let out = mamori(&["alert", "test", "--config", none.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no output"), "{out:?}");
}

#[test]
fn a_protected_folder_moved_away_is_told_as_protection_degraded() {
    let ws = Workspace::new();
    let hook = Hook::on(0);
    ws.corpus(5, 0);
    let config = ws.config(&format!(
        "[canary]\nenabled = false\n[alerts.webhook]\nurl = \"http://127.0.0.1:{}/hook\"\n",
        hook.port
    ));
    let agent = ws.start_agent(Some(&config));
    let moved = ws.tmp.path().join("data.moved");
    std::fs::rename(&ws.data, &moved).unwrap();
    std::fs::create_dir(&ws.data).unwrap();
    let got = hook.wait_for("folder_gone", 1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "no alert for the folder replaced:\n{}", agent.log());
    assert!(got[0].contains(ws.data.to_str().unwrap()), "{}", got[0]);
    // Told once per cause, not at every look.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(hook.wait_for("folder_gone", 2, Duration::ZERO).len(), 1);
}

#[test]
fn a_copy_not_kept_for_lack_of_space_is_told_as_protection_degraded() {
    let ws = Workspace::new();
    let hook = Hook::on(0);
    let big = ws.data.join("ledger.csv");
    std::fs::write(&big, "date,amount\n".repeat(200_000)).unwrap();
    let config = ws.config(&format!(
        "[canary]\nenabled = false\n[vault]\nbudget_mib = 1\nper_user_budget_percent = 100\n\
         [alerts.webhook]\nurl = \"http://127.0.0.1:{}/hook\"\n",
        hook.port
    ));
    let agent = ws.start_agent(Some(&config));
    std::fs::write(&big, "date,amount\n2026-12-04,1\n").unwrap();
    let got = hook.wait_for("vault_skipped", 1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "no alert for the copy not kept:\n{}", agent.log());
    assert!(got[0].contains("uid 0") && got[0].contains("stopped being kept"), "{}", got[0]);
}
