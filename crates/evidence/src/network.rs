//! `network.json`: the actor's sockets, matched by inode against the kernel's
//! socket tables of the process's own network namespace, and the host's
//! listening sockets.

use std::collections::HashMap;
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::files::OpenFile;
use crate::probe::{read_noted, Notes};

/// A busy server's tables are large but not unbounded; past this the cut is
/// noted.
const TABLE_CAP: u64 = 16 * 1024 * 1024;
const INET: [&str; 4] = ["tcp", "tcp6", "udp", "udp6"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    /// `tcp`, `tcp6`, `udp`, `udp6` or `unix`.
    pub proto: String,
    pub local: Option<String>,
    pub remote: Option<String>,
    pub state: String,
    pub inode: u64,
    /// The owner the kernel lists (inet sockets only).
    pub uid: Option<u32>,
    /// The bound path of a unix socket (`@` starts an abstract name).
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub pid: u32,
    pub fd: u32,
    /// `None` for sockets in none of the tables (netlink, packet, ...).
    pub socket: Option<Socket>,
    pub inode: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub connections: Vec<Connection>,
    /// TCP sockets in LISTEN and every UDP socket of the collector's own
    /// network namespace.
    pub listening: Vec<Socket>,
}

pub(crate) fn collect(fds: &[OpenFile], notes: &mut Notes) -> Network {
    // Processes in one namespace share tables: read each namespace once.
    let mut by_ns: HashMap<String, HashMap<u64, Socket>> = HashMap::new();
    let mut connections = Vec::new();
    for fd in fds {
        let Some(inode) = fd.socket_inode() else { continue };
        let ns = fs::read_link(format!("/proc/{}/ns/net", fd.pid))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| format!("pid {}", fd.pid));
        let table = by_ns.entry(ns).or_insert_with(|| {
            let mut t = HashMap::new();
            for proto in INET.into_iter().chain(["unix"]) {
                let path = format!("/proc/{}/net/{proto}", fd.pid);
                let Some(text) = read_noted(notes, Some(fd.pid), path.as_ref(), TABLE_CAP) else { continue };
                let text = String::from_utf8_lossy(&text);
                let rows = if proto == "unix" { parse_unix(&text) } else { parse_inet(proto, &text) };
                t.extend(rows.into_iter().map(|s| (s.inode, s)));
            }
            t
        });
        connections.push(Connection { pid: fd.pid, fd: fd.fd, socket: table.get(&inode).cloned(), inode });
    }
    Network { connections, listening: listening(notes) }
}

fn listening(notes: &mut Notes) -> Vec<Socket> {
    let mut out = Vec::new();
    for proto in INET {
        let path = format!("/proc/net/{proto}");
        let Some(text) = read_noted(notes, None, Path::new(&path), TABLE_CAP) else { continue };
        out.extend(
            parse_inet(proto, &String::from_utf8_lossy(&text))
                .into_iter()
                .filter(|s| s.proto.starts_with("udp") || s.state == "LISTEN"),
        );
    }
    out
}

/// Rows of `/proc/net/{tcp,tcp6,udp,udp6}`; malformed rows are skipped.
pub(crate) fn parse_inet(proto: &str, text: &str) -> Vec<Socket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            let state = u8::from_str_radix(f[3], 16).ok()?;
            Some(Socket {
                proto: proto.to_owned(),
                local: Some(inet_addr(f[1])?.to_string()),
                remote: Some(inet_addr(f[2])?.to_string()),
                state: if proto.starts_with("tcp") { tcp_state(state) } else { udp_state(state) },
                inode: f[9].parse().ok()?,
                uid: f[7].parse().ok(),
                path: None,
            })
        })
        .collect()
}

/// `ADDR:PORT` with the address as the kernel's raw 32-bit words in host
/// byte order (so `0100007F` is 127.0.0.1 on little-endian), the port in
/// plain hex.
fn inet_addr(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words = |n: usize| -> Option<Vec<u8>> {
        (0..n)
            .map(|i| u32::from_str_radix(addr.get(8 * i..8 * i + 8)?, 16).ok().map(u32::to_ne_bytes))
            .collect::<Option<Vec<_>>>()
            .map(|w| w.concat())
    };
    match addr.len() {
        8 => Some(SocketAddr::new(Ipv4Addr::from(<[u8; 4]>::try_from(words(1)?).ok()?).into(), port)),
        32 => Some(SocketAddr::new(Ipv6Addr::from(<[u8; 16]>::try_from(words(4)?).ok()?).into(), port)),
        _ => None,
    }
}

fn tcp_state(s: u8) -> String {
    const NAMES: [&str; 12] = [
        "?",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
    ];
    NAMES.get(usize::from(s)).filter(|_| s != 0).map_or_else(|| format!("{s:02X}"), |n| (*n).to_owned())
}

fn udp_state(s: u8) -> String {
    // UDP reuses TCP's numbers: 01 is connected, 07 unconnected.
    match s {
        1 => "CONNECTED".to_owned(),
        7 => "UNCONNECTED".to_owned(),
        _ => format!("{s:02X}"),
    }
}

/// Rows of `/proc/net/unix`: `Num RefCount Protocol Flags Type St Inode [Path]`.
pub(crate) fn parse_unix(text: &str) -> Vec<Socket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 7 {
                return None;
            }
            let kind = match u16::from_str_radix(f[4], 16).ok()? {
                1 => "stream",
                2 => "dgram",
                5 => "seqpacket",
                _ => "other",
            };
            let state = match u8::from_str_radix(f[5], 16).ok()? {
                1 => "UNCONNECTED",
                2 => "CONNECTING",
                3 => "CONNECTED",
                4 => "DISCONNECTING",
                _ => "?",
            };
            Some(Socket {
                proto: "unix".to_owned(),
                local: None,
                remote: None,
                state: format!("{kind} {state}"),
                inode: f[6].parse().ok()?,
                uid: None,
                path: f.get(7).map(|p| (*p).to_owned()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_rows() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n\
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0 20 4 30 10 -1\n\
   garbage\n";
        let rows = parse_inet("tcp", text);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].local.as_deref(), rows[0].state.as_str(), rows[0].inode),
            (Some("127.0.0.1:8080"), "LISTEN", 4242)
        );
        assert_eq!(rows[1].remote.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!((rows[1].state.as_str(), rows[1].uid), ("ESTABLISHED", Some(1000)));
    }

    #[test]
    fn tcp6_loopback() {
        let text = "header\n 0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 77 1\n";
        let rows = parse_inet("tcp6", text);
        assert_eq!(rows[0].local.as_deref(), Some("[::1]:22"));
    }

    #[test]
    fn unix_rows() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path\n\
0000000000000000: 00000002 00000000 00010000 0001 01 15210 /run/systemd/notify\n\
0000000000000000: 00000003 00000000 00000000 0001 03 15211\n";
        let rows = parse_unix(text);
        assert_eq!(rows[0].path.as_deref(), Some("/run/systemd/notify"));
        assert_eq!((rows[1].state.as_str(), rows[1].inode, rows[1].path.as_deref()), ("stream CONNECTED", 15211, None));
    }
}
