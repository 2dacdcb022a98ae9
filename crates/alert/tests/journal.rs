//! The journal output against a real systemd-journald of the test's own:
//! started in a private mount namespace (`unshare -m`) with a tmpfs on
//! /run and the journal files bound to the test's directory, so it touches
//! nothing of the host's and needs no systemd as PID 1. The test reaches
//! its socket through `/proc/PID/root` and reads the entries back with
//! `journalctl --directory -o json`.

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mamori_alert::config::JournalConfig;
use mamori_alert::{outputs, Alert, AlertsConfig, Finding, Language, Output, Severity, What};
use mamori_store::{Action, ActorInfo, Client, ClientCut, FileOp, FileTouch, Incident, ProcKey, Reason};
use serde_json::Value;

const JOURNALD: &str = "/lib/systemd/systemd-journald";

struct Journald {
    child: Child,
    dir: PathBuf,
}

impl Journald {
    fn start(dir: &Path) -> Journald {
        assert!(Path::new(JOURNALD).exists(), "{JOURNALD} is missing (apt install systemd)");
        let log = dir.join("log");
        fs::create_dir_all(&log).unwrap();
        // journald writes to /run/log/journal until told to flush to /var;
        // /var/log/journal is covered too, in case a host config says otherwise.
        let script = format!(
            "set -e
             mount --make-rprivate /
             mount -t tmpfs tmpfs /run
             mkdir -p /run/log/journal /run/systemd/journal
             mount --bind {log} /run/log/journal
             if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
             exec {JOURNALD}",
            log = log.display()
        );
        let out = fs::File::create(dir.join("journald.out")).unwrap();
        let child = Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("run unshare (util-linux)");
        let mut j = Journald { child, dir: dir.to_owned() };
        let deadline = Instant::now() + Duration::from_secs(15);
        while UnixDatagram::unbound().unwrap().connect(j.socket()).is_err() {
            if let Some(status) = j.child.try_wait().unwrap() {
                panic!("journald exited ({status}): {}", j.output());
            }
            assert!(Instant::now() < deadline, "journald did not listen in 15 s: {}", j.output());
            std::thread::sleep(Duration::from_millis(50));
        }
        j
    }

    /// Its socket, as seen from outside its mount namespace.
    fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root/run/systemd/journal/socket", self.child.id()))
    }

    fn output(&self) -> String {
        fs::read_to_string(self.dir.join("journald.out")).unwrap_or_default()
    }

    /// The entry carrying MAMORI_ID=`id`, waiting at most 10 s for it.
    fn entry(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("journalctl")
                .arg("--directory")
                .arg(self.dir.join("log"))
                .args(["-o", "json", "--all", "--no-pager"])
                .arg(format!("MAMORI_ID={id}"))
                .output()
                .expect("run journalctl");
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(line) = text.lines().find(|l| !l.trim().is_empty()) {
                return serde_json::from_str(line).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no entry {id} in 10 s: {} {}",
                String::from_utf8_lossy(&out.stderr),
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn journal_output(socket: PathBuf, lang: Option<Language>) -> Box<dyn Output> {
    let config =
        AlertsConfig { journal: Some(JournalConfig { lang, socket: Some(socket) }), ..AlertsConfig::default() };
    let mut all = outputs(&config).unwrap();
    let out = all.pop().unwrap();
    assert_eq!(out.name(), "journal");
    out
}

fn incident_alert() -> Alert {
    let exe = "/tmp/.x/enc\nfake line";
    let incident = Incident {
        id: "INC-0007".into(),
        detected_at: "2026-12-04T02:00:00.000Z".into(),
        actor: ActorInfo {
            pid: 777,
            start: 1,
            exe: exe.into(),
            cmdline: vec![exe.into()],
            uid: 1001,
            started_ns: None,
        },
        pids: vec![777],
        procs: vec![ProcKey { pid: 777, start: 1 }],
        action: Action::Killed,
        score: 99.0,
        reasons: vec![Reason::Text("rewrote office files with random bytes".into())],
        files: vec![FileTouch { path: "/srv/share/顧客リスト.xlsx".into(), op: FileOp::Write, to: None }],
        protected: vec!["/srv/share".into()],
        stop_latency_us: None,
        notes: Vec::new(),
        client: Some(ClientCut {
            client: Client {
                server: "samba".into(),
                address: "192.0.2.9".into(),
                user: "sato".into(),
                ..Client::default()
            },
            server: None,
            steps: Vec::new(),
        }),
    };
    Alert::new(What::Incident { incident: Box::new(incident), restore_command: "mamori restore INC-0007".into() })
}

fn field<'a>(entry: &'a Value, key: &str) -> &'a str {
    entry[key].as_str().unwrap_or_else(|| panic!("{key} in {entry}"))
}

#[test]
fn events_reach_a_real_journald_with_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let journald = Journald::start(dir.path());
    let mut out = journal_output(journald.socket(), Some(Language::Ja));
    assert!(out.probe().unwrap().contains("journald listens"));

    let alert = incident_alert();
    out.send(&alert).unwrap();
    let e = journald.entry(&alert.id);
    assert_eq!(field(&e, "_TRANSPORT"), "journal");
    assert_eq!(field(&e, "_PID"), std::process::id().to_string());
    assert_eq!(field(&e, "SYSLOG_IDENTIFIER"), "mamori");
    assert_eq!(field(&e, "PRIORITY"), "2");
    assert_eq!(field(&e, "MESSAGE_ID"), "fc6779a2f53e4723b554210a80154b59");
    assert_eq!(field(&e, "MAMORI_KIND"), "incident");
    assert_eq!(field(&e, "MAMORI_SEVERITY"), "critical");
    assert_eq!(field(&e, "MAMORI_INCIDENT"), "INC-0007");
    assert_eq!(field(&e, "MAMORI_ACTION"), "killed");
    assert_eq!(field(&e, "MAMORI_CLIENT"), "192.0.2.9");
    assert_eq!(field(&e, "MAMORI_CLIENT_USER"), "sato");
    assert_eq!(field(&e, "MAMORI_RESTORE"), "mamori restore INC-0007");
    // A newline in a value went in the binary-safe form: kept whole, not
    // split into a second field.
    assert_eq!(field(&e, "MAMORI_EXE"), "/tmp/.x/enc\nfake line");
    let message = field(&e, "MESSAGE");
    assert!(message.starts_with(&format!("[mamori] {}: ランサムウェアを検知し停止しました (INC-0007)\n", alert.host)));
    assert!(message.contains("SMB クライアント 192.0.2.9 (ユーザー sato) を遮断しました。"), "{message}");

    // Too large for one datagram: the output must fall back to a memfd.
    let detail = "経".repeat(200_000);
    let probe = UnixDatagram::unbound().unwrap();
    let too_big = probe.send_to(detail.as_bytes(), journald.socket()).unwrap_err();
    assert_eq!(too_big.raw_os_error(), Some(libc::EMSGSIZE), "a datagram this large must not fit: {too_big}");
    let mut big = Alert::new(What::Finding(Finding {
        check: "smb-signing".into(),
        severity: Severity::Medium,
        target: "/etc/samba/smb.conf".into(),
        detail: detail.clone(),
        fix: "server signing = mandatory".into(),
    }));
    big.host = "fs1".into();
    out.send(&big).unwrap();
    let e = journald.entry(&big.id);
    assert_eq!(field(&e, "MAMORI_KIND"), "audit-finding");
    assert_eq!(field(&e, "PRIORITY"), "4");
    assert_eq!(field(&e, "MAMORI_CHECK"), "smb-signing");
    assert!(field(&e, "MESSAGE").contains(&detail), "the whole detail arrived");
}

#[test]
fn without_journald_send_and_probe_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = journal_output(dir.path().join("socket"), None);
    let err = out.send(&Alert::new(What::Test)).unwrap_err().to_string();
    assert!(err.starts_with("journal: no journald: ") && err.contains("does not exist"), "{err}");
    let err = out.probe().unwrap_err().to_string();
    assert!(err.contains("no journald"), "{err}");

    // A socket file nobody listens on any more (journald stopped).
    let path = dir.path().join("stale");
    drop(UnixDatagram::bind(&path).unwrap());
    // A child forked by the other test may hold the socket until its exec:
    // wait (bounded) until it is really gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    while UnixDatagram::unbound().unwrap().connect(&path).is_ok() {
        assert!(Instant::now() < deadline, "the socket stayed open");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = journal_output(path, None);
    let err = out.send(&Alert::new(What::Test)).unwrap_err().to_string();
    assert!(err.contains("nothing listens"), "{err}");
}
