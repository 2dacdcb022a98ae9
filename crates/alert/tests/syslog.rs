//! The syslog and CEF outputs against a real rsyslogd (see
//! `common/syslog_rsyslog.rs`), over UDP, TCP and TLS. What rsyslog wrote
//! is read back twice: the raw line, parsed here by the RFC, and rsyslog's
//! own parse of it, which shows a real receiver reads every field.

#[path = "support/ports.rs"]
mod ports;
#[path = "common/syslog_rsyslog.rs"]
mod rsyslog;

use std::collections::BTreeMap;

use mamori_alert::config::SyslogConfig;
use mamori_alert::{outputs, Alert, AlertsConfig, Output, What};
use mamori_store::{Action, ActorInfo, Client, ClientCut, FileOp, FileTouch, Incident, ProcKey, Reason};
use rsyslog::{Input, Pki, Rsyslog};

/// 2023-11-14T22:13:20.123456789Z: sent with microseconds, the finest RFC 5424 allows.
const TIME_NS: u64 = 1_700_000_000_123_456_789;
const TIMESTAMP: &str = "2023-11-14T22:13:20.123456Z";
const HOST: &str = "fileserver-01";
/// Every character PARAM-VALUE escapes, and those CEF escapes in header and extensions.
const EXE: &str = r#"/srv/share/tools [v2]/"enc"\x=1|2"#;
const FIRST_FILE: &str = "/srv/share/経理/a=b|c.xlsx";
const RESTORE: &str = "mamori restore INC-0042";

fn incident_alert(n: u32) -> Alert {
    let incident = Incident {
        id: "INC-0042".into(),
        detected_at: "2023-11-14T22:13:20.000Z".into(),
        actor: ActorInfo {
            pid: 4242,
            start: 987_654,
            exe: EXE.into(),
            cmdline: vec![EXE.into()],
            uid: 1001,
            started_ns: None,
        },
        pids: vec![4242],
        procs: vec![ProcKey { pid: 4242, start: 987_654 }],
        action: Action::Suspended,
        score: 97.0,
        reasons: vec![Reason::Text("rewrote 40 office files with random bytes".into())],
        files: vec![
            FileTouch { path: FIRST_FILE.into(), op: FileOp::Write, to: None },
            FileTouch {
                path: "/srv/share/b.docx".into(),
                op: FileOp::Rename,
                to: Some("/srv/share/b.docx.lock".into()),
            },
            FileTouch { path: "/srv/share/c.pdf".into(), op: FileOp::Delete, to: None },
        ],
        protected: vec!["/srv/share".into()],
        stop_latency_us: Some(1800),
        notes: Vec::new(),
        client: Some(ClientCut {
            client: Client {
                server: "samba".into(),
                address: "192.0.2.77".into(),
                port: 50123,
                user: "tanaka".into(),
                machine: "PC-KEIRI-03".into(),
                shares: vec!["share".into()],
                dialect: "SMB3_11".into(),
                session: "1234".into(),
            },
            server: None,
            steps: Vec::new(),
        }),
    };
    let mut alert = Alert::new(What::Incident { incident: Box::new(incident), restore_command: RESTORE.into() });
    alert.host = HOST.into();
    alert.time_ns = TIME_NS;
    alert.id = format!("{}-{n}", alert.id);
    alert
}

fn syslog_output(url: &str, ca: Option<&std::path::Path>) -> Box<dyn Output> {
    let config =
        SyslogConfig { url: url.into(), ca_file: ca.map(Into::into), timeout_seconds: 3, ..SyslogConfig::default() };
    let mut all = outputs(&AlertsConfig { syslog: Some(config), ..AlertsConfig::default() }).unwrap();
    assert_eq!(all.len(), 1);
    let out = all.pop().unwrap();
    assert_eq!(out.name(), "syslog");
    assert_eq!(out.target(), url);
    out
}

fn cef_output(url: &str) -> Box<dyn Output> {
    let config = SyslogConfig { url: url.into(), facility: "local4".into(), ..SyslogConfig::default() };
    let mut all = outputs(&AlertsConfig { cef: Some(config), ..AlertsConfig::default() }).unwrap();
    let out = all.pop().unwrap();
    assert_eq!(out.name(), "cef");
    out
}

/// An RFC 5424 message, taken apart by the ABNF of §6.
#[derive(Debug)]
struct Message {
    pri: u16,
    version: String,
    timestamp: String,
    hostname: String,
    app_name: String,
    procid: String,
    msgid: String,
    /// SD-ID → its params (values unescaped).
    sd: BTreeMap<String, BTreeMap<String, String>>,
    msg: String,
}

fn parse_5424(line: &str) -> Message {
    let rest = line.strip_prefix('<').unwrap_or_else(|| panic!("no PRI: {line}"));
    let (pri, rest) = rest.split_once('>').unwrap();
    let mut fields = rest.splitn(7, ' ');
    let mut next = || fields.next().unwrap_or_else(|| panic!("short header: {line}")).to_owned();
    let (version, timestamp, hostname, app_name, procid, msgid) = (next(), next(), next(), next(), next(), next());
    let rest = next();
    let mut sd = BTreeMap::new();
    let mut chars = rest.char_indices().peekable();
    let msg_start;
    if rest.starts_with('-') {
        msg_start = 1;
    } else {
        loop {
            match chars.next() {
                Some((_, '[')) => {}
                Some((i, ' ')) => {
                    msg_start = i;
                    break;
                }
                None => {
                    msg_start = rest.len();
                    break;
                }
                Some((i, c)) => panic!("unexpected {c:?} at {i} in SD: {rest}"),
            }
            let mut id = String::new();
            let mut params = BTreeMap::new();
            // SD-ID, then ` NAME="VALUE"`… up to the closing bracket.
            loop {
                let (_, c) = chars.next().expect("unterminated SD-ELEMENT");
                if c == ' ' || c == ']' {
                    if c == ']' {
                        sd.insert(id.clone(), params.clone());
                    }
                    break;
                }
                id.push(c);
            }
            if sd.contains_key(&id) {
                continue;
            }
            loop {
                let mut name = String::new();
                for (_, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    name.push(c);
                }
                assert_eq!(chars.next().map(|x| x.1), Some('"'), "PARAM-VALUE must be quoted: {rest}");
                let mut value = String::new();
                loop {
                    match chars.next().expect("unterminated PARAM-VALUE").1 {
                        '\\' => {
                            let c = chars.next().unwrap().1;
                            // Only these three are escapes; any other backslash stays.
                            if !matches!(c, '"' | '\\' | ']') {
                                value.push('\\');
                            }
                            value.push(c);
                        }
                        '"' => break,
                        // An unescaped `]` inside a value would end the element early.
                        ']' => panic!("unescaped ] in PARAM-VALUE of {name}: {rest}"),
                        c => value.push(c),
                    }
                }
                params.insert(name, value);
                match chars.next().expect("unterminated SD-ELEMENT").1 {
                    ' ' => continue,
                    ']' => break,
                    c => panic!("unexpected {c:?} after PARAM-VALUE: {rest}"),
                }
            }
            sd.insert(id, params);
        }
    }
    let msg = rest[msg_start..].strip_prefix(' ').unwrap_or(&rest[msg_start..]).to_owned();
    Message { pri: pri.parse().unwrap(), version, timestamp, hostname, app_name, procid, msgid, sd, msg }
}

/// Everything an incident's RFC 5424 message must say, checked on the raw
/// line and on rsyslog's parse of it.
fn check_incident(raw: &str, parsed: &serde_json::Value, alert: &Alert) {
    let m = parse_5424(raw);
    // auth (4) × 8 + crit (2)
    assert_eq!(m.pri, 34, "{raw}");
    assert_eq!(m.version, "1");
    assert_eq!(m.timestamp, TIMESTAMP);
    assert_eq!(m.hostname, HOST);
    assert_eq!(m.app_name, "mamori");
    assert_eq!(m.procid, std::process::id().to_string());
    assert_eq!(m.msgid, "incident");
    assert_eq!(m.sd.len(), 1, "{:?}", m.sd);
    let p = &m.sd["mamori@32473"];
    let want: BTreeMap<String, String> = [
        ("id", alert.id.as_str()),
        ("kind", "incident"),
        ("severity", "critical"),
        ("incident", "INC-0042"),
        ("exe", EXE),
        ("pid", "4242"),
        ("uid", "1001"),
        ("action", "suspended"),
        ("files", "3"),
        ("client", "192.0.2.77"),
        ("clientUser", "tanaka"),
        ("clientMachine", "PC-KEIRI-03"),
        ("restore", RESTORE),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(p, &want);
    let title = format!("[mamori] {HOST}: ransomware detected and stopped (INC-0042) — ");
    assert!(m.msg.starts_with(&format!("\u{feff}{title}")), "MSG: {:?}", m.msg);
    assert!(m.msg.contains("SMB client 192.0.2.77 (user tanaka) was cut off."), "{}", m.msg);
    assert!(m.msg.ends_with(&format!("To put the files back: {RESTORE}")), "{}", m.msg);

    // rsyslog read the same fields from it.
    let field = |k: &str| parsed[k].as_str().unwrap_or_else(|| panic!("{k} in {parsed}")).to_owned();
    assert_eq!(field("pri"), "34");
    assert_eq!(field("version"), "1");
    assert_eq!(field("timestamp"), TIMESTAMP);
    assert_eq!(field("hostname"), HOST);
    assert_eq!(field("app"), "mamori");
    assert_eq!(field("procid"), m.procid);
    assert_eq!(field("msgid"), "incident");
    assert!(field("sd").starts_with("[mamori@32473 id=\""), "{parsed}");
    assert!(field("sd").contains(r#" exe="/srv/share/tools [v2\]/\"enc\"\\x=1|2""#), "{parsed}");
    assert!(field("msg").contains(&title), "{parsed}");
}

#[test]
fn rfc5424_over_udp() {
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(dir.path(), Input::Udp, None);
    let url = format!("udp://127.0.0.1:{}", rsyslog.port);
    let mut out = syslog_output(&url, None);
    let said = out.probe().unwrap();
    assert!(said.contains("cannot be told"), "{said}");
    let alert = incident_alert(1);
    out.send(&alert).unwrap();
    let got = rsyslog.received(1);
    check_incident(&got[0].0, &got[0].1, &alert);
}

#[test]
fn rfc5424_over_tcp_keeps_the_connection_and_reconnects_after_the_receiver_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut rsyslog = Rsyslog::start(dir.path(), Input::Tcp, None);
    let url = format!("tcp://127.0.0.1:{}", rsyslog.port);
    let mut out = syslog_output(&url, None);
    assert!(out.probe().unwrap().contains("connected to 127.0.0.1"));
    let alerts: Vec<Alert> = (1..=4).map(incident_alert).collect();
    out.send(&alerts[0]).unwrap();
    out.send(&alerts[1]).unwrap();
    rsyslog.received(2);
    // rsyslog closes our connection when it stops: the next send must see
    // that and connect again, not write into the dead connection and lose it.
    rsyslog.restart();
    out.send(&alerts[2]).unwrap();
    out.send(&alerts[3]).unwrap();
    let got = rsyslog.received(4);
    for (alert, (raw, parsed)) in alerts.iter().zip(&got) {
        check_incident(raw, parsed, alert);
    }
    // No receiver: a clear error, and the next send after it connects anew.
    drop(rsyslog);
    let err = out.send(&alerts[0]).unwrap_err().to_string();
    assert!(err.starts_with("syslog: ") && err.contains("refused"), "{err}");
    assert!(out.probe().is_err());
}

#[test]
fn rfc5424_over_tls_checks_the_certificate_and_the_host_name() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::make(dir.path());
    let mut rsyslog = Rsyslog::start(dir.path(), Input::Tls, Some(&pki));
    let url = format!("tls://localhost:{}", rsyslog.port);
    let mut out = syslog_output(&url, Some(&pki.ca));
    let said = out.probe().unwrap();
    assert!(said.contains("TLS") && said.contains("certificate valid for localhost"), "{said}");
    // The probe's connection is kept and used (with whatever the server
    // sent after the handshake, such as TLS 1.3 session tickets, read and
    // dropped); then the receiver restarts, and the next send reconnects.
    let alerts: Vec<Alert> = (1..=3).map(incident_alert).collect();
    out.send(&alerts[0]).unwrap();
    out.send(&alerts[1]).unwrap();
    rsyslog.received(2);
    rsyslog.restart();
    out.send(&alerts[2]).unwrap();
    let got = rsyslog.received(3);
    for (alert, (raw, parsed)) in alerts.iter().zip(&got) {
        check_incident(raw, parsed, alert);
    }

    // Signed by a CA we were not told to trust.
    let mut wrong_ca = syslog_output(&url, Some(&pki.other_ca));
    let err = wrong_ca.probe().unwrap_err().to_string();
    assert!(err.contains("certificate") && err.contains("UnknownIssuer"), "{err}");
    let err = wrong_ca.send(&incident_alert(4)).unwrap_err().to_string();
    assert!(err.contains("UnknownIssuer"), "{err}");

    // The certificate names localhost only: the right CA, the wrong name.
    let mut wrong_name = syslog_output(&format!("tls://127.0.0.1:{}", rsyslog.port), Some(&pki.ca));
    let err = wrong_name.send(&incident_alert(5)).unwrap_err().to_string();
    assert!(err.contains("not valid for name \"127.0.0.1\""), "{err}");

    // Neither refused message reached rsyslog.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let raw = std::fs::read_to_string(dir.path().join("raw.log")).unwrap();
    assert_eq!(raw.lines().count(), 3, "{raw}");
}

/// CEF extensions: `key=value` pairs split at unescaped `=`, each value
/// unescaped.
fn parse_cef_extensions(s: &str) -> BTreeMap<String, String> {
    // Where each unescaped `=` is; the key is the word before it.
    let chars: Vec<char> = s.chars().collect();
    let mut eqs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '=' => eqs.push(i),
            _ => {}
        }
        i += 1;
    }
    let mut out = BTreeMap::new();
    let key_start = |eq: usize| chars[..eq].iter().rposition(|c| *c == ' ').map_or(0, |p| p + 1);
    for (n, &eq) in eqs.iter().enumerate() {
        let key: String = chars[key_start(eq)..eq].iter().collect();
        let end = eqs.get(n + 1).map_or(chars.len(), |&next| key_start(next) - 1);
        let raw: String = chars[eq + 1..end].iter().collect();
        let mut value = String::new();
        let mut it = raw.chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                match it.next() {
                    Some('n') => value.push('\n'),
                    Some('r') => value.push('\r'),
                    Some(c) => value.push(c),
                    None => panic!("dangling backslash in {key}"),
                }
            } else {
                value.push(c);
            }
        }
        assert!(out.insert(key.clone(), value).is_none(), "{key} twice");
    }
    out
}

/// The seven header fields, split at unescaped `|`, then the extensions.
fn parse_cef(record: &str) -> (Vec<String>, BTreeMap<String, String>) {
    let mut header = Vec::new();
    let mut field = String::new();
    let mut it = record.char_indices();
    while let Some((i, c)) = it.next() {
        match c {
            '\\' => field.push(it.next().unwrap().1),
            '|' => {
                header.push(std::mem::take(&mut field));
                if header.len() == 7 {
                    return (header, parse_cef_extensions(&record[i + 1..]));
                }
            }
            c => field.push(c),
        }
    }
    panic!("fewer than 8 CEF fields: {record}")
}

#[test]
fn cef_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let rsyslog = Rsyslog::start(dir.path(), Input::Tcp, None);
    let mut out = cef_output(&format!("tcp://127.0.0.1:{}", rsyslog.port));
    let alert = incident_alert(1);
    out.send(&alert).unwrap();
    let got = rsyslog.received(1);
    let (raw, parsed) = &got[0];
    let m = parse_5424(raw);
    // local4 (20) × 8 + crit (2)
    assert_eq!(m.pri, 162);
    assert!(m.sd.is_empty());
    assert_eq!(parsed["msg"].as_str().unwrap(), m.msg, "rsyslog sees the same MSG");
    let (header, ext) = parse_cef(&m.msg);
    assert_eq!(
        header,
        ["CEF:0", "mamori", "mamori", env!("CARGO_PKG_VERSION"), "incident", "Ransomware detected and stopped", "10"]
    );
    let want = [
        ("rt", "1700000000123".to_owned()),
        ("externalId", alert.id.clone()),
        ("dvchost", HOST.into()),
        ("dhost", HOST.into()),
        ("sproc", EXE.into()),
        ("spid", "4242".into()),
        ("suid", "1001".into()),
        ("suser", "tanaka".into()),
        ("src", "192.0.2.77".into()),
        ("shost", "PC-KEIRI-03".into()),
        ("fname", FIRST_FILE.into()),
        ("cnt", "3".into()),
        ("act", "suspended".into()),
        ("cs1Label", "incidentId".into()),
        ("cs1", "INC-0042".into()),
        ("cs2Label", "restoreCommand".into()),
        ("cs2", RESTORE.into()),
    ];
    for (k, v) in &want {
        assert_eq!(ext.get(*k), Some(v), "{k} in {}", m.msg);
    }
    let msg = &ext["msg"];
    assert!(msg.starts_with(&format!("[mamori] {HOST}: ransomware detected and stopped (INC-0042) — ")), "{msg}");
    assert_eq!(ext.len(), want.len() + 1, "{ext:?}");
}

#[test]
fn a_bad_url_or_facility_names_its_key() {
    let err = |table: &str, c: SyslogConfig| {
        let mut config = AlertsConfig::default();
        if table == "syslog" {
            config.syslog = Some(c);
        } else {
            config.cef = Some(c);
        }
        match outputs(&config) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    };
    for url in ["", "http://x:1", "tcp://x", "udp://x:0", "tls://[::1:6514"] {
        let e = err("syslog", SyslogConfig { url: url.into(), ..SyslogConfig::default() });
        assert!(e.starts_with("`alerts.syslog.url`: "), "{url}: {e}");
    }
    let e = err("cef", SyslogConfig { url: "udp://x:1".into(), facility: "local9".into(), ..SyslogConfig::default() });
    assert!(e.starts_with("`alerts.cef.facility`: ") && e.contains("local9"), "{e}");
    let e = err(
        "syslog",
        SyslogConfig { url: "tls://x:1".into(), ca_file: Some("/nonexistent.pem".into()), ..SyslogConfig::default() },
    );
    assert!(e.starts_with("`alerts.syslog.ca_file`: ") && e.contains("/nonexistent.pem"), "{e}");
}
