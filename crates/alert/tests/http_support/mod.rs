//! For the HTTP outputs' tests: a small HTTP/1.1 server on a loopback port
//! that records every request and answers as the test says (or never), and
//! the events the tests send.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mamori_alert::{Alert, Cause, Finding, Severity, What};
use mamori_event::{Client, FileOp, FileTouch, ProcKey};
use mamori_store::{Action, ActorInfo, ClientCut, Incident, Reason};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// How the server answers a request.
pub enum Reply {
    Status {
        status: u16,
        content_type: &'static str,
        body: String,
        extra: Vec<(String, String)>,
    },
    /// Reads the request, records it, and never answers (until the server stops).
    Hang,
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Status { status, content_type: "text/plain", body: body.to_owned(), extra: Vec::new() }
    }

    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply::Status { status, content_type: "application/json", body: body.to_string(), extra: Vec::new() }
    }
}

type Answer = dyn Fn(&Request) -> Reply + Send + Sync;

#[derive(Default)]
struct Log {
    requests: Mutex<Vec<Request>>,
    arrived: Condvar,
}

/// The server; stops (and unblocks every hanging answer) when dropped.
pub struct Recorder {
    pub addr: SocketAddr,
    log: Arc<Log>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

/// Longest a test's server waits for a request's bytes, or hangs.
const IO_LIMIT: Duration = Duration::from_secs(30);

impl Recorder {
    /// On a free loopback port.
    pub fn start(answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Recorder {
        Recorder::start_on(0, answer)
    }

    /// On a given loopback port (one a test kept closed until now).
    pub fn start_on(port: u16, answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Recorder {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the test HTTP server");
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Log::default());
        let stop = Arc::new(AtomicBool::new(false));
        let answer: Arc<Answer> = Arc::new(answer);
        let accept = {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (log, stop, answer) = (Arc::clone(&log), Arc::clone(&stop), Arc::clone(&answer));
                    std::thread::spawn(move || serve(conn, &log, &stop, &*answer));
                }
            })
        };
        Recorder { addr, log, stop, accept: Some(accept) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.requests.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived, or `within`; returns what arrived.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<Request> {
        let guard = self.log.requests.lock().unwrap();
        let (guard, _) = self.log.arrived.wait_timeout_while(guard, within, |r| r.len() < n).unwrap();
        guard.clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, log: &Log, stop: &AtomicBool, answer: &Answer) {
    let _ = conn.set_read_timeout(Some(IO_LIMIT));
    let _ = conn.set_write_timeout(Some(IO_LIMIT));
    let mut reader = BufReader::new(conn.try_clone().expect("clone the connection"));
    let mut conn = conn;
    // Keep-alive: several requests may come on one connection.
    loop {
        let Some(request) = read_request(&mut reader) else { return };
        let reply = answer(&request);
        {
            let mut requests = log.requests.lock().unwrap();
            requests.push(request);
            log.arrived.notify_all();
        }
        match reply {
            Reply::Hang => {
                let until = Instant::now() + IO_LIMIT;
                while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            Reply::Status { status, content_type, body, extra } => {
                let mut head = format!(
                    "HTTP/1.1 {status} Test\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
                    body.len()
                );
                for (n, v) in extra {
                    head.push_str(&format!("{n}: {v}\r\n"));
                }
                head.push_str("\r\n");
                if conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(body.as_bytes())).is_err() {
                    return;
                }
            }
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_owned(), v.trim().to_owned()));
        assert!(headers.len() < 100, "too many headers");
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    assert!(len <= 8 << 20, "body of {len} bytes");
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Request { method, path, headers, body })
}

/// A port nothing listens on now (bound, then let go).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// ------------------------------------------------------------------ events

pub const EXE: &str = "/tmp/evil/locker";
pub const FIRST_FILE: &str = "/srv/share/経理/請求書 2024.xlsx";

pub fn incident_alert() -> Alert {
    let incident = Incident {
        id: "INC-0042".into(),
        detected_at: "2025-01-02T03:04:05.678Z".into(),
        actor: ActorInfo {
            pid: 4242,
            start: 99,
            exe: EXE.into(),
            cmdline: vec![EXE.into(), "--path".into(), "/srv/share".into(), "a b".into()],
            uid: 1001,
            started_ns: None,
        },
        pids: vec![4242, 4243],
        procs: vec![ProcKey { pid: 4242, start: 99 }, ProcKey { pid: 4243, start: 100 }],
        action: Action::Suspended,
        score: 97.5,
        reasons: vec![Reason::Text("files rewritten into ciphertext-like data".into())],
        files: vec![
            FileTouch { path: FIRST_FILE.into(), op: FileOp::Write, to: None },
            FileTouch {
                path: "/srv/share/b.docx".into(),
                op: FileOp::Rename,
                to: Some("/srv/share/b.docx.locked".into()),
            },
            FileTouch { path: "/srv/share/<c>&d.txt".into(), op: FileOp::Delete, to: None },
        ],
        protected: vec!["/srv/share".into()],
        stop_latency_us: Some(812),
        notes: vec![],
        client: Some(ClientCut {
            client: Client {
                server: "samba".into(),
                address: "192.0.2.7".into(),
                port: 50123,
                user: "tanaka".into(),
                machine: "PC-TANAKA".into(),
                ..Client::default()
            },
            server: None,
            steps: vec![],
        }),
    };
    Alert::new(What::Incident { incident: Box::new(incident), restore_command: "mamori restore INC-0042".into() })
}

/// One event of every kind (and each degraded cause, each finding severity).
pub fn every_kind() -> Vec<Alert> {
    let mut all = vec![
        incident_alert(),
        Alert::new(What::RestoreFinished { incident_id: "INC-0042".into(), restored: 3, failed: 0 }),
        Alert::new(What::RestoreFinished { incident_id: "INC-0042".into(), restored: 2, failed: 1 }),
    ];
    for cause in [Cause::AgentStopping, Cause::VaultSkipped, Cause::QueueOverflow, Cause::FolderGone] {
        all.push(Alert::new(What::Degraded { cause, detail: "detail of the cause".into() }));
    }
    for severity in [Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical] {
        all.push(Alert::new(What::Finding(Finding {
            check: "smb-guest-write".into(),
            severity,
            target: "[public]".into(),
            detail: "guests can write to the share".into(),
            fix: "guest ok = no".into(),
        })));
    }
    all.push(Alert::new(What::Test));
    all
}
