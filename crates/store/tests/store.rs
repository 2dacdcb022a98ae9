//! The store on real files: roundtrips, reopening, concurrent access, damage,
//! and the agent lock held by real processes.

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

use mamori_store::{
    agent_status, Action, ActorInfo, AgentLock, AgentStatus, FileOp, FileTouch, Finding, Incident, Indicator, ProcKey,
    Reason, Store, StoreError, Trust, VaultStatus, VaultUserStatus, DB_FILE,
};

fn incident(id: &str) -> Incident {
    Incident {
        id: id.to_owned(),
        detected_at: "2025-01-02T03:04:05.123456Z".to_owned(),
        actor: ActorInfo {
            pid: 4242,
            start: 987_654,
            exe: "/tmp/evil".to_owned(),
            cmdline: vec!["/tmp/evil".to_owned(), "--all".to_owned()],
            uid: 1000,
            started_ns: Some(1_735_787_045_000_000_000),
        },
        pids: vec![4242, 4243],
        procs: vec![ProcKey { pid: 4242, start: 987_654 }, ProcKey { pid: 4243, start: 987_700 }],
        action: Action::Suspended,
        score: 12.5,
        reasons: vec![
            Reason::Found(Finding {
                indicator: Indicator::FormatLost,
                files: 3,
                examples: vec!["/srv/a.docx".to_owned()],
            }),
            Reason::Unlisted { unlisted: 2 },
        ],
        files: vec![
            FileTouch { path: "/srv/a.docx".to_owned(), op: FileOp::Write, to: None },
            FileTouch { path: "/srv/b.pdf".to_owned(), op: FileOp::Rename, to: Some("/srv/b.pdf.locked".to_owned()) },
        ],
        protected: vec!["/srv".to_owned()],
        stop_latency_us: Some(1234),
        notes: vec!["queue overflow during attack".to_owned()],
        client: None,
    }
}

fn trust(exe: &str) -> Trust {
    Trust {
        exe: exe.to_owned(),
        dir: "/srv/photos".to_owned(),
        added_at: "2025-01-02T04:00:00Z".to_owned(),
        incident: Some("INC-0001".to_owned()),
        exe_hash: Some("ab".repeat(32)),
    }
}

fn status() -> AgentStatus {
    AgentStatus {
        pid: std::process::id(),
        started_at: "2025-01-02T03:00:00Z".to_owned(),
        protected: vec!["/srv".to_owned()],
        active: true,
        events: 10,
        overflows: 0,
        incidents: 1,
        updated_at: "2025-01-02T03:00:05Z".to_owned(),
        vault: Some(VaultStatus {
            entries: 3,
            bytes: 4096,
            skipped_budget: 1,
            skipped_user_budget: 2,
            skipped_floor: 0,
            held_files: 12,
            users: vec![VaultUserStatus {
                uid: 1000,
                bytes: 4096,
                skipped_budget: 1,
                skipped_user_budget: 2,
                skipped_floor: 0,
            }],
        }),
    }
}

#[test]
fn incidents_roundtrip_oldest_first_and_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.incidents().unwrap(), vec![]);
    assert_eq!(store.incident("INC-0001").unwrap(), None);

    // Ids sort the other way round from insertion, so order must come from insertion.
    let (mut b, a) = (incident("INC-0009"), incident("INC-0002"));
    store.add_incident(&b).unwrap();
    store.add_incident(&a).unwrap();
    assert_eq!(store.incidents().unwrap(), vec![b.clone(), a.clone()]);
    assert_eq!(store.incident("INC-0002").unwrap(), Some(a.clone()));

    b.action = Action::Resumed;
    b.notes.push("resumed by admin".to_owned());
    store.update_incident(&b).unwrap();
    assert_eq!(store.incident("INC-0009").unwrap(), Some(b.clone()));
    assert_eq!(store.incidents().unwrap(), vec![b, a.clone()]);

    assert!(store.add_incident(&a).is_err(), "duplicate id accepted");
    assert!(store.update_incident(&incident("INC-0404")).is_err(), "update of an unknown id accepted");
}

#[test]
fn action_serialises_lowercase() {
    let json = serde_json::to_value(incident("INC-0001")).unwrap();
    assert_eq!(json["action"], "suspended");
    assert_eq!(json["files"][0].get("to"), None);
    assert_eq!(json["files"][1]["op"], "rename");
    assert_eq!(json["reasons"][0]["indicator"], "format-lost");
    for a in [Action::Suspended, Action::Killed, Action::Resumed, Action::Failed] {
        assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
    }
}

#[test]
fn trusts_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut second = trust("/usr/bin/gpg");
    second.incident = None;
    store.add_trust(&trust("/usr/bin/convert")).unwrap();
    store.add_trust(&second).unwrap();
    assert_eq!(store.trusts().unwrap(), vec![trust("/usr/bin/convert"), second]);
}

#[test]
fn state_persists_across_reopen_and_ids_stay_unique() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    {
        let store = Store::open(&state).unwrap();
        assert_eq!(store.next_incident_id().unwrap(), "INC-0001");
        let id = store.next_incident_id().unwrap();
        assert_eq!(id, "INC-0002");
        store.add_incident(&incident(&id)).unwrap();
        store.add_trust(&trust("/usr/bin/convert")).unwrap();
    }
    assert_eq!(std::fs::metadata(&state).unwrap().permissions().mode() & 0o777, 0o700);

    let store = Store::open(&state).unwrap();
    assert_eq!(store.incidents().unwrap(), vec![incident("INC-0002")]);
    assert_eq!(store.trusts().unwrap(), vec![trust("/usr/bin/convert")]);
    // An incident added under an id the counter has not reached yet is skipped over.
    store.add_incident(&incident("INC-0004")).unwrap();
    assert_eq!(store.next_incident_id().unwrap(), "INC-0003");
    assert_eq!(store.next_incident_id().unwrap(), "INC-0005");
}

#[test]
fn reader_reads_while_a_writer_holds_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Store::open(dir.path()).unwrap();
    agent.add_incident(&incident("INC-0001")).unwrap();

    // Another process's writer, mid-transaction, with its change not yet committed.
    let writer = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE; DELETE FROM incidents;").unwrap();

    let cli = Store::open(dir.path()).unwrap();
    assert_eq!(cli.incidents().unwrap(), vec![incident("INC-0001")]);

    // A second writer waits for the lock (busy_timeout) rather than failing.
    let release = std::thread::spawn(move || {
        sleep(Duration::from_millis(200));
        writer.execute_batch("ROLLBACK").unwrap();
    });
    agent.add_incident(&incident("INC-0002")).unwrap();
    release.join().unwrap();
    assert_eq!(cli.incidents().unwrap(), vec![incident("INC-0001"), incident("INC-0002")]);
}

#[test]
fn corrupt_database_names_the_file_and_the_way_out() {
    for garbage in [b"garbage".to_vec(), b"this is not a database, just garbage ".repeat(200)] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DB_FILE);
        std::fs::write(&db, &garbage).unwrap();

        let err = Store::open(dir.path()).err().expect("garbage opened as a database");
        assert!(matches!(&err, StoreError::Corrupt { path } if *path == db), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&db.display().to_string()), "{msg}");
        assert!(msg.contains("move it aside") && msg.contains("lost"), "{msg}");
    }
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let err = Store::open(dir.path()).err().expect("newer schema accepted");
    assert!(matches!(err, StoreError::TooNew { found: 99, supported: 2, .. }), "{err:?}");
}

#[test]
fn second_acquire_fails_and_status_follows_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(agent_status(dir.path()).unwrap(), None);

    let lock = AgentLock::acquire(dir.path()).unwrap();
    lock.publish(&status()).unwrap();
    // flock conflicts between open file descriptions, even within one process.
    let err = AgentLock::acquire(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyRunning { pid: Some(p) } if p == std::process::id()), "{err:?}");
    assert_eq!(agent_status(dir.path()).unwrap(), Some(status()));

    drop(lock);
    // agent.json is still there, but nobody holds the lock: a dead agent.
    assert!(dir.path().join("agent.json").exists());
    assert_eq!(agent_status(dir.path()).unwrap(), None);
    drop(AgentLock::acquire(dir.path()).unwrap());
}

/// `mamori status` looks by taking the lock shared for an instant; an agent
/// starting in that instant once refused to start ("already running").
#[test]
fn an_agent_starting_while_a_reader_looks_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    drop(AgentLock::acquire(dir.path()).unwrap());
    let reader = std::fs::File::open(dir.path().join("agent.lock")).unwrap();
    rustix::fs::flock(&reader, rustix::fs::FlockOperation::NonBlockingLockShared).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(reader);
    });
    assert!(AgentLock::acquire(dir.path()).is_ok());
    release.join().unwrap();
}

/// A child process holding the agent lock, killed when the test ends.
struct Holder(Child);

impl Holder {
    fn spawn(dir: &std::path::Path) -> Holder {
        let lock = dir.join("agent.lock");
        // The shell's pid becomes sleep's: killing the child closes the only descriptor holding the lock.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 9>>"$1" && flock -x 9 && echo locked && exec sleep 100"#)
            .arg("sh")
            .arg(&lock)
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "locked");
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn lock_held_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    // A status left behind by an earlier agent.
    let earlier = AgentLock::acquire(dir.path()).unwrap();
    earlier.publish(&status()).unwrap();
    drop(earlier);
    assert_eq!(agent_status(dir.path()).unwrap(), None);

    let holder = Holder::spawn(dir.path());
    assert_eq!(agent_status(dir.path()).unwrap(), Some(status()));
    assert!(matches!(AgentLock::acquire(dir.path()), Err(StoreError::AlreadyRunning { .. })));

    // The holder dies without any cleanup; the kernel releases its lock.
    drop(holder);
    assert_eq!(agent_status(dir.path()).unwrap(), None);
    assert!(AgentLock::acquire(dir.path()).is_ok());
}

#[test]
fn unparseable_status_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let _lock = AgentLock::acquire(dir.path()).unwrap();
    std::fs::write(dir.path().join("agent.json"), b"{\"pid\": ").unwrap();
    assert_eq!(agent_status(dir.path()).unwrap(), None);
}

#[test]
fn trusts_of_a_first_version_store_load_without_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute_batch(
        "ALTER TABLE trusts DROP COLUMN exe_hash; PRAGMA user_version = 1;
         INSERT INTO trusts (exe, dir, added_at, incident) VALUES ('/usr/bin/gpg', '/srv', 'then', NULL);",
    )
    .unwrap();
    drop(conn);
    let store = Store::open(dir.path()).unwrap();
    let trusts = store.trusts().unwrap();
    assert_eq!(trusts.len(), 1);
    assert_eq!(trusts[0].exe_hash, None, "an old trust has no hash, and is therefore not honoured");
}

/// Incidents written before reasons and operations were typed: reasons are
/// the engine's English sentences, operations their names. They must still
/// load, and be written back unchanged when the incident is updated.
#[test]
fn incidents_of_the_prose_format_still_load() {
    let old = serde_json::json!({
        "id": "INC-0001",
        "detected_at": "2025-01-02T03:04:05.123456Z",
        "actor": { "pid": 4242, "start": 987654, "exe": "/tmp/evil", "cmdline": ["/tmp/evil"], "uid": 1000 },
        "pids": [4242],
        "procs": [{ "pid": 4242, "start": 987654 }],
        "action": "suspended",
        "score": 12.5,
        "reasons": [
            "recognised files rewritten into unrecognisable ciphertext-like data (2 files): /srv/a.docx, /srv/c.xlsx",
            "12 further file operations were not listed"
        ],
        "files": [
            { "path": "/srv/a.docx", "op": "write" },
            { "path": "/srv/b.pdf", "op": "rename", "to": "/srv/b.pdf.locked" },
            { "path": "/srv/README.txt", "op": "create" },
            { "path": "/srv/c.xlsx", "op": "truncate" },
            { "path": "/srv/d.jpg", "op": "delete" }
        ],
        "protected": ["/srv"],
        "stop_latency_us": 1234,
        "notes": []
    });
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.execute(
        "INSERT INTO incidents (id, detected_at, action, body) VALUES ('INC-0001', 'then', 'suspended', ?1)",
        [old.to_string()],
    )
    .unwrap();
    drop(conn);

    let store = Store::open(dir.path()).unwrap();
    let inc = store.incident("INC-0001").unwrap().expect("the old incident loads");
    assert_eq!(store.incidents().unwrap(), vec![inc.clone()]);
    assert!(
        matches!(&inc.reasons[..], [Reason::Text(a), Reason::Text(b)] if a.starts_with("recognised") && b.starts_with("12"))
    );
    let ops: Vec<FileOp> = inc.files.iter().map(|f| f.op).collect();
    assert_eq!(ops, [FileOp::Write, FileOp::Rename, FileOp::Create, FileOp::Truncate, FileOp::Delete]);
    assert_eq!(serde_json::to_value(&inc).unwrap(), old, "an old incident is written back as it was");
}
