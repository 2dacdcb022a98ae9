//! Samba's own view of its sessions, from `smbstatus --json` (Samba 4.16+).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use mamori_event::Client;
use serde::{Deserialize, Deserializer};

use crate::{ServedError, SAMBA};

/// A server with thousands of sessions prints a few MiB; more is not smbstatus.
const MAX_OUTPUT: usize = 32 << 20;
const MAX_STDERR: usize = 16 << 10;

/// Samba's own view of its sessions (`smbstatus --json`, with `-s CONFIG`
/// when given), as clients keyed by the pid of the smbd process that serves
/// each: user, machine, address and port, dialect, session id, and the
/// shares its tree connects name. A session appears once per pid; a pid
/// may carry several sessions.
///
/// smbstatus reads Samba's databases and can wait on their locks: it gets
/// `timeout`, then the child this started (and nothing else) is killed.
pub fn samba_sessions(config: Option<&Path>, timeout: Duration) -> Result<Vec<(u32, Client)>, ServedError> {
    let mut cmd = Command::new("smbstatus");
    cmd.arg("--json");
    if let Some(config) = config {
        cmd.arg("-s").arg(config);
    }
    parse_smbstatus(&output(cmd, timeout)?)
}

/// What `cmd` printed, once it exited successfully within `timeout`.
fn output(mut cmd: Command, timeout: Duration) -> Result<Vec<u8>, ServedError> {
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(ServedError::Spawn)?;
    let stdout = child.stdout.take().map(|out| thread::spawn(move || read_bounded(out, MAX_OUTPUT)));
    let stderr = child.stderr.take().map(|err| thread::spawn(move || read_bounded(err, MAX_STDERR)));

    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            // Overran, or cannot be waited for: end it either way, so no
            // stuck smbstatus outlives the call.
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ServedError::Timeout(timeout));
            }
        }
    };
    let joined = |h: Option<thread::JoinHandle<(Vec<u8>, bool)>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
    let (out, overflow) = joined(stdout);
    let (err, _) = joined(stderr);
    if !status.success() {
        let stderr = String::from_utf8_lossy(&err).trim().to_string();
        return Err(ServedError::Failed { status, stderr });
    }
    if overflow {
        return Err(ServedError::TooLarge(MAX_OUTPUT));
    }
    Ok(out)
}

/// Up to `limit` bytes, and whether there was more (the rest is drained so
/// the writer never blocks on a full pipe).
fn read_bounded(reader: impl Read, limit: usize) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let mut reader = reader.take(limit as u64 + 1);
    let _ = reader.read_to_end(&mut buf);
    let overflow = buf.len() > limit;
    buf.truncate(limit);
    if overflow {
        let _ = std::io::copy(&mut reader.into_inner(), &mut std::io::sink());
    }
    (buf, overflow)
}

/// The sessions in `smbstatus --json` output, as [`samba_sessions`] gives
/// them. Missing fields are left empty; output that is not such JSON is an
/// error. A session whose pid is not a number is skipped.
pub fn parse_smbstatus(json: &[u8]) -> Result<Vec<(u32, Client)>, ServedError> {
    // An object first: serde would also fill a struct of defaults from `[]`.
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(json)?;
    let status = Status::deserialize(serde_json::Value::Object(object))?;
    let mut shares: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for tcon in status.tcons.values() {
        if !tcon.service.is_empty() {
            shares.entry((&tcon.server_id.pid, &tcon.session_id)).or_default().insert(&tcon.service);
        }
    }
    let mut out: Vec<(u32, Client)> = status
        .sessions
        .values()
        .filter_map(|s| {
            let pid: u32 = s.server_id.pid.parse().ok()?;
            let (address, port) = parse_hostname(&s.hostname).unwrap_or_default();
            let shares = shares.get(&(s.server_id.pid.as_str(), s.session_id.as_str()));
            Some((
                pid,
                Client {
                    server: SAMBA.to_string(),
                    address,
                    port,
                    user: s.username.clone(),
                    machine: s.remote_machine.clone(),
                    shares: shares.map(|s| s.iter().map(|s| s.to_string()).collect()).unwrap_or_default(),
                    dialect: s.session_dialect.clone(),
                    session: s.session_id.clone(),
                },
            ))
        })
        .collect();
    out.sort_by(|a, b| (a.0, &a.1.session).cmp(&(b.0, &b.1.session)));
    Ok(out)
}

/// Samba's client address: `ipv4:ADDR:PORT`, `ipv6:ADDR:PORT` (no brackets
/// in 4.17; brackets tolerated). The port is after the last colon. An
/// IPv4-mapped IPv6 address is given as IPv4, as the kernel tables are.
fn parse_hostname(hostname: &str) -> Option<(String, u16)> {
    let rest = hostname.strip_prefix("ipv4:").or_else(|| hostname.strip_prefix("ipv6:"))?;
    let (addr, port) = rest.rsplit_once(':')?;
    let addr = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')).unwrap_or(addr);
    let ip = match addr.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    Some((ip.to_string(), port.parse().ok()?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Status {
    sessions: BTreeMap<String, Session>,
    tcons: BTreeMap<String, Tcon>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Session {
    #[serde(deserialize_with = "id")]
    session_id: String,
    server_id: ServerId,
    username: String,
    remote_machine: String,
    hostname: String,
    session_dialect: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Tcon {
    service: String,
    server_id: ServerId,
    #[serde(deserialize_with = "id")]
    session_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ServerId {
    #[serde(deserialize_with = "id")]
    pid: String,
}

/// Samba prints ids as strings; a number is taken too, as some versions might.
fn id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(u64),
    }
    Ok(match Id::deserialize(d)? {
        Id::Text(s) => s,
        Id::Number(n) => n.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from smbstatus 4.17 in the lab: one client over IPv6, one over IPv4.
    const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/smbstatus-4.17.json");

    #[test]
    fn real_output_ipv4_and_ipv6() {
        let sessions = parse_smbstatus(FIXTURE).unwrap();
        assert_eq!(sessions.len(), 2);
        let (pid, v6) = &sessions[0];
        assert_eq!(*pid, 26019);
        assert_eq!(v6.server, "samba");
        assert_eq!((v6.address.as_str(), v6.port), ("fd77:5::11", 59884));
        assert_eq!(v6.user, "mamori-smbproto");
        assert_eq!(v6.machine, "fd77:5::11");
        assert_eq!(v6.dialect, "SMB3_11");
        assert_eq!(v6.session, "2900229539");
        assert_eq!(v6.shares, ["share"]);
        let (pid, v4) = &sessions[1];
        assert_eq!(*pid, 26020);
        assert_eq!((v4.address.as_str(), v4.port), ("10.78.5.11", 37370));
        assert_eq!(v4.session, "2993428748");
        assert_eq!(v4.shares, ["share"]);
    }

    #[test]
    fn hostnames() {
        let p = |h: &str| parse_hostname(h);
        assert_eq!(p("ipv4:10.77.0.2:49916"), Some(("10.77.0.2".into(), 49916)));
        assert_eq!(p("ipv6:fd77:5::11:59884"), Some(("fd77:5::11".into(), 59884)));
        assert_eq!(p("ipv6:[fd77:5::11]:59884"), Some(("fd77:5::11".into(), 59884)));
        assert_eq!(p("ipv6:::ffff:10.0.0.2:445"), Some(("10.0.0.2".into(), 445)));
        assert_eq!(p("ipv6:::1:1"), Some(("::1".into(), 1)));
        for bad in ["", "ipv4:", "ipv4:10.0.0.2", "ipv4:10.0.0.2:99999", "unix:/run/x", "ipv4:host:1", "ipv6:é:1"] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn missing_fields_are_tolerated() {
        let json = br#"{"sessions": {"1": {"server_id": {"pid": 42}}}, "open_files": {}}"#;
        let sessions = parse_smbstatus(json).unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].0, 42);
        assert_eq!(sessions[0].1, Client { server: "samba".into(), ..Client::default() });
        assert!(parse_smbstatus(b"{}").unwrap().is_empty());
        // A pid that is no pid is skipped, not guessed.
        let json = br#"{"sessions": {"1": {"server_id": {"pid": "x"}}, "2": {}}}"#;
        assert!(parse_smbstatus(json).unwrap().is_empty());
    }

    #[test]
    fn malformed_output_is_an_error() {
        for bad in [
            &b""[..],
            b"Samba version 4.17.12\nPID Username",
            b"[]",
            br#"{"sessions": []}"#,
            br#"{"sessions": {"1": {"username": 7}}}"#,
            br#"{"sessions": {"1": {"server_id": {"pid": -1}}}}"#,
            br#"{"sessions": {"1": {"#,
        ] {
            assert!(matches!(parse_smbstatus(bad), Err(ServedError::Json(_))), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn shares_belong_to_their_session() {
        let json = br#"{
          "sessions": {"7": {"session_id": "7", "server_id": {"pid": "100"}, "hostname": "ipv4:10.0.0.5:5000"},
                       "8": {"session_id": "8", "server_id": {"pid": "100"}, "hostname": "ipv4:10.0.0.5:5000"}},
          "tcons": {"1": {"service": "data", "server_id": {"pid": "100"}, "session_id": "7"},
                    "2": {"service": "IPC$", "server_id": {"pid": "100"}, "session_id": "7"},
                    "3": {"service": "home", "server_id": {"pid": "100"}, "session_id": "8"},
                    "4": {"service": "other", "server_id": {"pid": "101"}, "session_id": "7"}}
        }"#;
        let sessions = parse_smbstatus(json).unwrap();
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].1.shares, ["IPC$", "data"]);
        assert_eq!(sessions[1].1.shares, ["home"]);
    }

    #[test]
    fn an_overrunning_child_is_ended() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo $$ >&2; exec sleep 30"]);
        let started = Instant::now();
        let err = output(cmd, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, ServedError::Timeout(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_failing_child_says_why() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo no such thing >&2; exit 3"]);
        match output(cmd, Duration::from_secs(3)) {
            Err(ServedError::Failed { status, stderr }) => {
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr, "no such thing");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_config_without_a_server_has_no_sessions() {
        // smbstatus 4.17 warns and prints empty tables; without samba it is a spawn error.
        match samba_sessions(Some(Path::new("/nonexistent/smb.conf")), Duration::from_secs(3)) {
            Ok(sessions) => assert!(sessions.is_empty(), "{sessions:?}"),
            Err(err) => assert!(matches!(err, ServedError::Spawn(_) | ServedError::Failed { .. }), "{err}"),
        }
    }
}
