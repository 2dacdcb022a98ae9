//! Who the agent lets use its vault and work in the protected folders on
//! its behalf: only a root process that announced itself on the agent's
//! socket, for as long as it holds the connection; never a process merely
//! running mamori's executable.

mod common;
// The client a restore calls, exactly as the binary has it.
#[path = "../src/handshake.rs"]
#[allow(dead_code)]
mod handshake;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const HELPER_STATE: &str = "MAMORI_TEST_HELPER_STATE";
const HELPER_DATA: &str = "MAMORI_TEST_HELPER_DATA";

fn random(len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut buf).unwrap();
    buf
}

/// What a restore does, run by this test binary as a child when the
/// environment names an agent: announces itself, reads the vault, puts a
/// decoy back, deletes files and writes many that look encrypted.
#[test]
#[ignore = "run as a child process by a_process_that_announced_itself_restores_unjudged"]
fn helper_works_on_the_agents_behalf() {
    let (Ok(state), Ok(data)) = (std::env::var(HELPER_STATE), std::env::var(HELPER_DATA)) else { return };
    let (state, data) = (PathBuf::from(state), PathBuf::from(data));
    let ticket = handshake::announce(&state, "restore INC-TEST").unwrap().expect("an agent listens");
    assert!(!std::fs::read(state.join("vault/objects/1")).unwrap().is_empty());
    std::fs::write(data.join(".0-contracts.pdf"), random(4096)).unwrap();
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    for (i, path) in files.iter().filter(|p| !p.ends_with(".0-contracts.pdf")).enumerate() {
        if i % 2 == 0 {
            std::fs::remove_file(path).unwrap();
        } else {
            std::fs::write(path, random(8192)).unwrap();
        }
    }
    for i in 0..40 {
        std::fs::write(data.join(format!("restored-{i}.bin")), random(8192)).unwrap();
    }
    drop(ticket);
}

#[test]
fn a_process_that_announced_itself_restores_unjudged() {
    let ws = Workspace::new();
    ws.corpus(20, 0);
    let agent = ws.start_agent(None);
    assert!(ws.data.join(".0-contracts.pdf").exists(), "decoys are placed");
    ws.fill_the_vault(&agent);
    let mut helper = Started(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "helper_works_on_the_agents_behalf", "--include-ignored", "--test-threads=1"])
            .env(HELPER_STATE, &ws.state)
            .env(HELPER_DATA, &ws.data)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = helper.0.try_wait().unwrap() {
            break status;
        }
        // Suspended, it would never end.
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the restore never ended: {:#?}\n{}",
            ws.incidents(),
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "the restore failed:\n{}", agent.log());
    // Anything of it still queued would have been judged by now.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(ws.incidents(), Vec::<serde_json::Value>::new(), "{}", agent.log());
    let log = agent.stop();
    assert!(log.contains("works on the agent's behalf"), "{log}");
}

#[test]
fn mamoris_executable_run_by_a_process_that_did_not_announce_itself_is_refused_and_stopped() {
    let ws = Workspace::new();
    ws.corpus(10, 0);
    let agent = ws.start_agent(Some(&ws.config("[canary]\nenabled = false\n")));
    ws.fill_the_vault(&agent);
    let lib = mamori_testuser::peek_library(ws.tmp.path());
    let object = ws.state.join("vault/objects/1");
    let mut peek = Started(
        Command::new(BIN)
            .args(["status", "--state"])
            .arg(&ws.state)
            .env("LD_PRELOAD", &lib)
            .env("PEEK", &object)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let incidents = ws.wait_for_incident(&mut peek.0, Duration::from_secs(60));
    assert_eq!(incidents.len(), 1, "{}", agent.log());
    let inc = &incidents[0];
    assert!(inc["reasons"].to_string().contains(r#""indicator":"vault-touched""#), "{inc:#}");
    assert_eq!(inc["actor"]["pid"].as_u64(), Some(peek.0.id() as u64), "{inc:#}");
    assert_eq!(Path::new(inc["actor"]["exe"].as_str().unwrap()), Path::new(BIN).canonicalize().unwrap());
    ws.kill(inc);
    let mut said = String::new();
    let _ = peek.0.stderr.take().unwrap().read_to_string(&mut said);
    assert!(!said.contains("peek: opened"), "it read the vault: {said}");
    agent.stop();
}

#[test]
fn only_roots_processes_are_admitted() {
    let ws = Workspace::new();
    let agent = ws.start_agent(None);
    let sock = ws.state.join(handshake::SOCKET);
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sock), 0o600, "the socket is root's alone");
    assert_eq!(mode(&ws.state) & 0o077, 0, "in a folder that is root's alone");
    // Both opened up, so that only the agent's own check stands in the way.
    std::fs::set_permissions(&ws.state, std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let client = "import socket, sys\n\
                  s = socket.socket(socket.AF_UNIX)\n\
                  s.settimeout(10)\n\
                  s.connect(sys.argv[1])\n\
                  try: s.sendall(b'restore INC-0001\\n')\n\
                  except BrokenPipeError: pass\n\
                  print(s.recv(200).decode(), end='')\n";
    let out = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3", "-c", client])
        .arg(&sock)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("refused"), "{out:?}\n{}", agent.log());
    // Nor does a restore trust a socket others could have made.
    let err = handshake::announce(&ws.state, "restore INC-0001").unwrap_err();
    assert!(err.to_string().contains("root's alone"), "{err:#}");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&ws.state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let log = agent.stop();
    assert!(log.contains("not of root's"), "{log}");
    assert!(!log.contains("works on the agent's behalf"), "{log}");
    assert!(!sock.exists(), "the agent removes its socket when it stops");
    // No agent, no one to stop a restore.
    assert!(handshake::announce(&ws.state, "restore INC-0001").unwrap().is_none());
}
