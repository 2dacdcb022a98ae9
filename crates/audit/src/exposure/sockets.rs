//! The TCP sockets listening beyond loopback in this network namespace
//! (`/proc/net/tcp`, `/proc/net/tcp6`), and the processes holding them
//! (their `socket:[INODE]` links in `/proc/PID/fd`).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// `st` of a listening socket in /proc/net/tcp.
const LISTEN: &str = "0A";

/// A listening socket and who holds it.
#[derive(Debug, Clone)]
pub struct Listener {
    pub addr: IpAddr,
    pub port: u16,
    /// Every process with the socket open (a forking server's children too), lowest pid first.
    pub procs: Vec<Proc>,
}

/// A process, as /proc names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    /// `comm`: chosen by the process itself, so only a label.
    pub name: String,
}

impl Proc {
    pub fn dir(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}", self.pid))
    }

    /// Its arguments. A program that rewrote its title (sshd's "sshd:
    /// /usr/sbin/sshd -f CONFIG [listener] ...") leaves one string of
    /// words, split here on blanks.
    pub fn args(&self) -> Vec<String> {
        let raw = fs::read(self.dir().join("cmdline")).unwrap_or_default();
        let args: Vec<String> =
            raw.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        match args.as_slice() {
            [title] if title.contains(' ') => title.split_whitespace().map(str::to_owned).collect(),
            _ => args,
        }
    }

    /// The value of the first of `names` given to it: `-f PATH`, `-fPATH`
    /// (one-letter options), `--configfile=PATH` or `--configfile PATH`.
    pub fn option(&self, names: &[&str]) -> Option<String> {
        option(&self.args(), names)
    }
}

fn option(args: &[String], names: &[&str]) -> Option<String> {
    args.iter().enumerate().find_map(|(i, arg)| {
        names.iter().find_map(|name| {
            let rest = arg.strip_prefix(name)?;
            if rest.is_empty() {
                return args.get(i + 1).cloned();
            }
            let glued = if name.starts_with("--") { rest.strip_prefix('=') } else { Some(rest) };
            glued.filter(|v| !v.is_empty()).map(str::to_owned)
        })
    })
}

impl Listener {
    /// `0.0.0.0:22`, `[::]:445`.
    pub fn endpoint(&self) -> String {
        std::net::SocketAddr::new(self.addr, self.port).to_string()
    }

    /// The service's name for a finding: the holding process's, else "unknown"
    /// (a kernel socket such as nfsd's, or a process out of sight).
    pub fn name(&self) -> &str {
        self.procs.first().map_or("unknown", |p| p.name.as_str())
    }

    /// `0.0.0.0:22 (sshd pid 123)`.
    pub fn evidence(&self) -> String {
        match self.procs.first() {
            Some(p) => format!("{} ({} pid {})", self.endpoint(), p.name, p.pid),
            None => format!("{} (no process holds it: kernel or out of sight)", self.endpoint()),
        }
    }

    /// Whether IPv4 clients reach it: an IPv4 address, an IPv4-mapped one,
    /// or `::`, which takes IPv4 too unless the socket is IPv6-only (not
    /// visible in /proc, so assumed not).
    pub fn takes_ipv4(&self) -> bool {
        match self.addr {
            IpAddr::V4(_) => true,
            IpAddr::V6(a) => a.is_unspecified() || a.to_ipv4_mapped().is_some(),
        }
    }

    pub fn takes_ipv6(&self) -> bool {
        matches!(self.addr, IpAddr::V6(a) if a.to_ipv4_mapped().is_none())
    }
}

/// Every TCP socket listening on an address other than loopback, with its holders.
pub fn listeners() -> io::Result<Vec<Listener>> {
    let mut found = parse(&fs::read_to_string("/proc/net/tcp")?);
    // A kernel without IPv6 has no tcp6.
    found.extend(parse(&fs::read_to_string("/proc/net/tcp6").unwrap_or_default()));
    let holders = holders();
    Ok(found
        .into_iter()
        .filter(|(addr, _, _)| !loopback(addr))
        .map(|(addr, port, inode)| Listener { addr, port, procs: holders.get(&inode).cloned().unwrap_or_default() })
        .collect())
}

fn loopback(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|m| m.is_loopback()),
    }
}

/// The listening sockets of one /proc/net/tcp{,6} table: address, port, inode.
fn parse(table: &str) -> Vec<(IpAddr, u16, u64)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != LISTEN {
                return None;
            }
            let (addr, port) = f[1].split_once(':')?;
            Some((address(addr)?, u16::from_str_radix(port, 16).ok()?, f[9].parse().ok()?))
        })
        .collect()
}

/// The kernel prints each 32-bit word of the address as a host-order
/// integer, so the word's bytes in memory are the address's.
fn address(hex: &str) -> Option<IpAddr> {
    let words: Vec<[u8; 4]> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok().map(u32::to_ne_bytes))
        .collect::<Option<_>>()?;
    match (hex.len(), words.as_slice()) {
        (8, [w]) => Some(IpAddr::V4(Ipv4Addr::from(*w))),
        (32, [a, b, c, d]) => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].into_iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(w);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// Socket inode → the processes holding it, lowest pid first.
fn holders() -> HashMap<u64, Vec<Proc>> {
    let mut map: HashMap<u64, Vec<Proc>> = HashMap::new();
    let Ok(procs) = fs::read_dir("/proc") else { return map };
    let mut pids: Vec<u32> = procs.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    pids.sort_unstable();
    for pid in pids {
        // A process that exited meanwhile has no fds to read.
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        let mut name = None;
        for fd in fds.flatten() {
            let Ok(link) = fs::read_link(fd.path()) else { continue };
            let Some(inode) = link.to_str().and_then(|l| l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
            else {
                continue;
            };
            let name = name.get_or_insert_with(|| {
                fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| c.trim_end().to_owned()).unwrap_or_default()
            });
            let held = map.entry(inode).or_default();
            if held.last().is_none_or(|p| p.pid != pid) {
                held.push(Proc { pid, name: name.clone() });
            }
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded in a namespace running sshd on 2222 (both families),
    /// smbd on 445 (IPv6 socket) and a loopback-only service.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 880771 1 000000007577f4fe 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 880900 1 000000007577f4fe 100 0 0 10 0
   2: 0101000A:0016 0202000A:D431 01 00000000:00000000 00:00000000 00000000     0        0 880901 1 000000007577f4fe 100 0 0 10 0
   3: 0101000A:0D3D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 880902 1 000000007577f4fe 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:01BD 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 880874 1 000000009a870a4e 100 0 0 10 0
   1: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 880875 1 000000009a870a4e 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 880876 1 000000009a870a4e 100 0 0 10 0
   3: 000080FE00000000FF005002010000FE:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 880877 1 000000009a870a4e 100 0 0 10 0
";

    #[test]
    fn listening_sockets_are_read_with_their_addresses() {
        let v4 = parse(TCP);
        let shown: Vec<String> = v4.iter().map(|(a, p, i)| format!("{a}:{p} {i}")).collect();
        // The established connection (state 01) is not listening.
        assert_eq!(shown, ["0.0.0.0:2222 880771", "127.0.0.1:3306 880900", "10.0.1.1:3389 880902"]);
        let v6 = parse(TCP6);
        let shown: Vec<String> = v6.iter().map(|(a, p, _)| format!("[{a}]:{p}")).collect();
        assert_eq!(shown, ["[::]:445", "[::1]:22", "[::ffff:127.0.0.1]:8080", "[fe80::250:ff:fe00:1]:22"]);
        let kept: Vec<bool> = v4.iter().chain(&v6).map(|(a, _, _)| !loopback(a)).collect();
        assert_eq!(kept, [true, false, true, true, false, false, true]);
    }

    #[test]
    fn families_reached() {
        let l = |addr: &str| Listener { addr: addr.parse().unwrap(), port: 1, procs: vec![] };
        assert!(l("0.0.0.0").takes_ipv4() && !l("0.0.0.0").takes_ipv6());
        assert!(l("::").takes_ipv4() && l("::").takes_ipv6());
        assert!(l("::ffff:10.0.0.1").takes_ipv4() && !l("::ffff:10.0.0.1").takes_ipv6());
        assert!(!l("fd00::1").takes_ipv4() && l("fd00::1").takes_ipv6());
    }

    #[test]
    fn options_are_read_in_each_form() {
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        // sshd's rewritten title, split on blanks.
        let sshd = args("sshd: /usr/sbin/sshd -D -e -f /etc/ssh/alt_config [listener] 0 of 10-100 startups");
        assert_eq!(option(&sshd, &["-f"]).as_deref(), Some("/etc/ssh/alt_config"));
        assert_eq!(option(&args("sshd -f/etc/x"), &["-f"]).as_deref(), Some("/etc/x"));
        let smbd = ["-s", "--configfile"];
        assert_eq!(option(&args("smbd --configfile=/etc/s.conf -D"), &smbd).as_deref(), Some("/etc/s.conf"));
        assert_eq!(option(&args("smbd -D --configfile /etc/t.conf"), &smbd).as_deref(), Some("/etc/t.conf"));
        assert_eq!(option(&args("smbd -D"), &smbd), None);
    }

    #[test]
    fn this_process_is_found_holding_its_listener() {
        let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let found = listeners().unwrap();
        let mine = found.iter().find(|x| x.port == port).expect("the listener is seen");
        assert!(mine.procs.iter().any(|p| p.pid == std::process::id()), "{mine:?}");
    }
}
