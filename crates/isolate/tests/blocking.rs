//! Blocking single clients for real, inside throw-away network namespaces:
//! a server `s` with two clients, `c1` (the one blocked) on link 1 and `c2`
//! on link 2, checked with real TCP connections, some opened before the
//! block, both ways.

mod lab;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use lab::{link, route_through, Netns};
use mamori_isolate::{block, blocks, unblock, unblock_all, Block, IsolateError};

const PORT: u16 = 7700;
/// How fast a blocked client must learn it is cut off.
const FAILS_WITHIN: Duration = Duration::from_secs(1);
/// A connection that has not completed in this long counts as blocked.
const BLOCKED_AFTER: Duration = Duration::from_secs(2);
/// Anything that should work gets far longer, so that a loaded machine
/// (or a lost first SYN, retried after a second) cannot fail the test.
const PASSES_WITHIN: Duration = Duration::from_secs(15);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The server and its two clients; each side listens on `PORT` and echoes.
struct Lab {
    s: Netns,
    c1: Netns,
    c2: Netns,
}

impl Lab {
    fn new() -> Lab {
        let lab = Lab { s: Netns::new("s"), c1: Netns::new("c1"), c2: Netns::new("c2") };
        link(&lab.s, &lab.c1, 1);
        link(&lab.s, &lab.c2, 2);
        for ns in [&lab.s, &lab.c1, &lab.c2] {
            echo(ns.run(|| TcpListener::bind(("::", PORT)).expect("listen")));
        }
        lab
    }

    /// Forgets learned link addresses, so that ARP and IPv6 neighbour
    /// discovery must work through the block, as they will once caches
    /// expire on a real LAN.
    fn forget_neighbours(&self) {
        for ns in [&self.s, &self.c1, &self.c2] {
            ns.ip(&["neigh", "flush", "all"]);
        }
    }
}

/// Echoes every byte on every connection, each on a thread of its own.
fn echo(listener: TcpListener) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

fn connect(from: &Netns, to: IpAddr, wait: Duration) -> io::Result<TcpStream> {
    from.run(|| TcpStream::connect_timeout(&SocketAddr::new(to, PORT), wait))
}

/// A request and its answer on an open connection, as an SMB client's next
/// request would be; gives up after `wait`.
fn round_trip(conn: &mut TcpStream, wait: Duration) -> io::Result<()> {
    conn.set_read_timeout(Some(wait))?;
    conn.write_all(b"x")?;
    let mut byte = [0u8];
    conn.read_exact(&mut byte)?;
    assert_eq!(&byte, b"x");
    Ok(())
}

/// Sends a datagram from `from` to `to` and waits for an answer that a
/// blocked client gets as an ICMP error: the server has no UDP listener, so
/// an unblocked one is told port unreachable.
fn udp_error(from: &Netns, to: IpAddr) -> io::Error {
    from.run(|| {
        let any: IpAddr = if to.is_ipv4() { [0, 0, 0, 0].into() } else { [0u16; 8].into() };
        let socket = UdpSocket::bind((any, 0)).unwrap();
        socket.connect((to, PORT)).unwrap();
        socket.set_read_timeout(Some(PASSES_WITHIN)).unwrap();
        socket.send(b"x").unwrap();
        socket.recv(&mut [0u8; 8]).unwrap_err()
    })
}

/// The error `attempt` ends with, and how long it took.
fn timed<T>(attempt: impl FnOnce() -> io::Result<T>) -> (io::Result<T>, Duration) {
    let start = Instant::now();
    let result = attempt();
    (result, start.elapsed())
}

fn nft(ns: &Netns, args: &[&str]) -> String {
    let out = ns.run(|| Command::new("nft").args(args).output().expect("run nft"));
    assert!(out.status.success(), "nft {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The whole story for one address family: `server` and `c1`/`c2` are the
/// addresses of link 1 and 2 on each side.
fn cuts_off_one_client_until_unblocked(server: [&str; 2], c1: &str, c2: &str) {
    let lab = Lab::new();
    let (server1, server2) = (ip(server[0]), ip(server[1]));
    // Open before the block, as an SMB session is.
    let mut blocked = connect(&lab.c1, server1, PASSES_WITHIN).unwrap();
    let mut other = connect(&lab.c2, server2, PASSES_WITHIN).unwrap();
    round_trip(&mut blocked, PASSES_WITHIN).unwrap();
    round_trip(&mut other, PASSES_WITHIN).unwrap();

    let done = lab.s.run(|| block(ip(c1), None)).unwrap();
    assert_eq!(done, Block { addr: ip(c1), expires_in: None });
    assert_eq!(lab.s.run(blocks).unwrap(), [done]);
    lab.forget_neighbours();

    let (result, took) = timed(|| round_trip(&mut blocked, PASSES_WITHIN));
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert!(took < FAILS_WITHIN, "the open connection took {took:?} to fail");
    let (result, took) = timed(|| connect(&lab.c1, server1, PASSES_WITHIN));
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(took < FAILS_WITHIN, "a new connection took {took:?} to fail");
    assert!(connect(&lab.s, ip(c1), BLOCKED_AFTER).is_err(), "the server still reaches {c1}");
    // Admin-prohibited, not port unreachable: EHOSTUNREACH for IPv4, EACCES for IPv6.
    let (err, took) = timed(|| Ok(udp_error(&lab.c1, server1)));
    let err = err.unwrap();
    assert!(matches!(err.kind(), ErrorKind::HostUnreachable | ErrorKind::PermissionDenied), "{err}");
    assert!(took < FAILS_WITHIN, "a datagram took {took:?} to fail");
    assert_eq!(udp_error(&lab.c2, server2).kind(), ErrorKind::ConnectionRefused);

    round_trip(&mut other, PASSES_WITHIN).expect("the other client's open connection");
    round_trip(&mut connect(&lab.c2, server2, PASSES_WITHIN).unwrap(), PASSES_WITHIN).unwrap();
    round_trip(&mut connect(&lab.s, ip(c2), PASSES_WITHIN).unwrap(), PASSES_WITHIN).unwrap();

    assert!(lab.s.run(|| unblock(ip(c1))).unwrap());
    assert_eq!(lab.s.run(blocks).unwrap(), []);
    round_trip(&mut connect(&lab.c1, server1, PASSES_WITHIN).unwrap(), PASSES_WITHIN).unwrap();
    round_trip(&mut connect(&lab.s, ip(c1), PASSES_WITHIN).unwrap(), PASSES_WITHIN).unwrap();
    assert!(!lab.s.run(|| unblock(ip(c1))).unwrap(), "a second unblock found a block");
    assert!(lab.s.run(unblock_all).unwrap());
}

#[test]
fn an_ipv4_client_is_cut_off_at_once_and_only_it() {
    cuts_off_one_client_until_unblocked(["10.77.1.1", "10.77.2.1"], "10.77.1.2", "10.77.2.2");
}

#[test]
fn an_ipv6_client_is_cut_off_at_once_and_only_it() {
    cuts_off_one_client_until_unblocked(["fd77:1::1", "fd77:2::1"], "fd77:1::2", "fd77:2::2");
}

/// The server's socket shows an IPv4 client of a dual-stack listener as
/// `::ffff:a.b.c.d`, and that is what an agent reading it will block.
#[test]
fn a_mapped_ipv6_address_blocks_the_ipv4_client() {
    let lab = Lab::new();
    let listener = lab.s.run(|| TcpListener::bind(("::", PORT + 1)).unwrap());
    let mut blocked = lab.c1.run(|| TcpStream::connect(("10.77.1.1", PORT + 1)).unwrap());
    let (mut served, peer) = listener.accept().unwrap();
    let mapped = peer.ip();
    assert_eq!(mapped, ip("::ffff:10.77.1.2"), "the lab's listener is not dual-stack");

    let done = lab.s.run(|| block(mapped, None)).unwrap();
    assert_eq!(done.addr, ip("10.77.1.2"));
    assert_eq!(lab.s.run(blocks).unwrap(), [done]);
    blocked.write_all(b"x").unwrap();
    let mut byte = [0u8];
    blocked.set_read_timeout(Some(PASSES_WITHIN)).unwrap();
    let (result, took) = timed(|| blocked.read(&mut byte));
    assert_eq!(result.unwrap_err().kind(), ErrorKind::ConnectionReset);
    assert!(took < FAILS_WITHIN, "took {took:?}");
    // Nothing reached the server: the reset answered it.
    served.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    assert!(served.read(&mut byte).is_err());

    assert!(lab.s.run(|| unblock(mapped)).unwrap());
    assert_eq!(lab.s.run(blocks).unwrap(), []);
    round_trip(&mut connect(&lab.c1, ip("10.77.1.1"), PASSES_WITHIN).unwrap(), PASSES_WITHIN).unwrap();
}

#[test]
fn a_timed_block_lifts_itself() {
    let lab = Lab::new();
    let done = lab.s.run(|| block(ip("10.77.1.2"), Some(Duration::from_secs(2)))).unwrap();
    assert_eq!(done.expires_in, Some(Duration::from_secs(2)));
    let listed = lab.s.run(blocks).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].expires_in.is_some_and(|left| left <= Duration::from_secs(2)), "{listed:?}");
    assert!(connect(&lab.c1, ip("10.77.1.1"), PASSES_WITHIN).is_err(), "the block was not in force");

    let start = Instant::now();
    while !lab.s.run(blocks).unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "the block did not expire");
        std::thread::sleep(Duration::from_millis(200));
    }
    round_trip(&mut connect(&lab.c1, ip("10.77.1.1"), PASSES_WITHIN).unwrap(), PASSES_WITHIN).unwrap();
    assert!(!lab.s.run(|| unblock(ip("10.77.1.2"))).unwrap());
    // The table stays, empty, until removed.
    assert!(lab.s.run(unblock_all).unwrap());
    assert!(!lab.s.run(unblock_all).unwrap());
}

#[test]
fn blocking_again_sets_the_new_duration_and_leaves_other_tables_alone() {
    let s = Netns::new("s");
    nft(&s, &["add", "table", "inet", "user_rules"]);
    nft(&s, &["add", "chain", "inet", "user_rules", "input", "{ type filter hook input priority 0; policy accept; }"]);
    let (v4, v6) = (ip("10.77.1.2"), ip("fd77:1::2"));
    assert_eq!(s.run(blocks).unwrap(), [], "no table yet");

    s.run(|| block(v4, Some(Duration::from_secs(100)))).unwrap();
    s.run(|| block(v4, Some(Duration::from_secs(3600)))).unwrap();
    s.run(|| block(v6, Some(Duration::from_millis(1500)))).unwrap();
    let listed = s.run(blocks).unwrap();
    assert_eq!(listed.iter().map(|b| b.addr).collect::<Vec<_>>(), [v4, v6]);
    let left = listed[0].expires_in.unwrap();
    assert!(left > Duration::from_secs(3000), "the second block did not replace the first: {left:?}");
    assert!(listed[1].expires_in.unwrap() <= Duration::from_secs(2), "{listed:?}");

    s.run(|| block(v4, None)).unwrap();
    assert_eq!(s.run(blocks).unwrap()[0], Block { addr: v4, expires_in: None });
    s.run(|| block(v4, Some(Duration::from_secs(60)))).unwrap();
    let left = s.run(blocks).unwrap()[0].expires_in.expect("a permanent block became timed");
    assert!(left <= Duration::from_secs(60), "{left:?}");

    let listing = nft(&s, &["list", "ruleset"]);
    assert_eq!(listing.matches("table inet mamori_block").count(), 1, "{listing}");
    // Input and forward, for each family: the rules were not added again.
    assert_eq!(listing.matches("reject with tcp reset").count(), 4, "{listing}");
    assert!(listing.contains("type filter hook input priority filter - 10; policy accept;"), "{listing}");

    assert!(s.run(unblock_all).unwrap());
    let listing = nft(&s, &["list", "ruleset"]);
    assert!(!listing.contains("mamori_block"), "{listing}");
    assert!(listing.contains("table inet user_rules") && listing.contains("chain input"), "{listing}");
    assert_eq!(s.run(blocks).unwrap(), []);
}

/// The resets the input chain sends are themselves packets to the blocked
/// address, and they pass through the output hook: without the output
/// chain's exception for them, the blocked client would wait on its open
/// connection instead of failing.
#[test]
fn the_resets_pass_the_output_hook_and_an_altered_table_is_repaired() {
    let lab = Lab::new();
    // After mamori's chain: sees only what it let out.
    nft(&lab.s, &["add", "table", "inet", "probe"]);
    nft(&lab.s, &["add", "chain", "inet", "probe", "output", "{ type filter hook output priority 100; }"]);
    nft(
        &lab.s,
        &["add", "rule", "inet", "probe", "output", "ip", "daddr", "10.77.1.2", "tcp", "flags", "rst", "counter"],
    );
    let mut first = connect(&lab.c1, ip("10.77.1.1"), PASSES_WITHIN).unwrap();
    let mut second = connect(&lab.c1, ip("10.77.1.1"), PASSES_WITHIN).unwrap();
    round_trip(&mut first, PASSES_WITHIN).unwrap();
    round_trip(&mut second, PASSES_WITHIN).unwrap();

    lab.s.run(|| block(ip("10.77.1.2"), None)).unwrap();
    let (result, took) = timed(|| round_trip(&mut first, PASSES_WITHIN));
    assert_eq!(result.unwrap_err().kind(), ErrorKind::ConnectionReset);
    assert!(took < FAILS_WITHIN, "took {took:?}");
    let probe = nft(&lab.s, &["list", "chain", "inet", "probe", "output"]);
    assert!(!probe.contains("packets 0 "), "no reset went through the output hook: {probe}");

    // Take the exception away: the reset is dropped, the client waits.
    let output = nft(&lab.s, &["-a", "list", "chain", "inet", "mamori_block", "output"]);
    let handle = output
        .lines()
        .find(|l| l.contains("ip daddr @blocked4 tcp flags rst accept"))
        .and_then(|l| l.rsplit("# handle ").next())
        .unwrap_or_else(|| panic!("no exception for resets in {output}"))
        .trim()
        .to_owned();
    nft(&lab.s, &["delete", "rule", "inet", "mamori_block", "output", "handle", &handle]);
    let err = round_trip(&mut second, BLOCKED_AFTER).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{err}");
    let err = lab.s.run(blocks).unwrap_err();
    assert!(matches!(err, IsolateError::BlockAltered { .. }), "{err}");
    assert!(err.to_string().contains("output"), "{err}");

    // Blocking again rewrites the chains; the block was never lifted.
    lab.s.run(|| block(ip("10.77.1.2"), None)).unwrap();
    assert_eq!(lab.s.run(blocks).unwrap().len(), 1);
    let (result, took) = timed(|| connect(&lab.c1, ip("10.77.1.1"), PASSES_WITHIN));
    assert_eq!(result.unwrap_err().kind(), ErrorKind::ConnectionRefused);
    assert!(took < FAILS_WITHIN, "took {took:?}");
    assert!(lab.s.run(unblock_all).unwrap());
}

/// A server that also routes: the blocked client is cut off from what lies
/// behind it too, and still learns so at once.
#[test]
fn a_blocked_client_is_not_forwarded() {
    let lab = Lab::new();
    route_through(&lab.s, &lab.c1, 1);
    route_through(&lab.s, &lab.c2, 2);
    for (from, to) in [(&lab.c1, "10.77.2.2"), (&lab.c1, "fd77:2::2"), (&lab.c2, "10.77.1.2"), (&lab.c2, "fd77:1::2")] {
        round_trip(&mut connect(from, ip(to), PASSES_WITHIN).unwrap(), PASSES_WITHIN).unwrap();
    }
    let mut open = connect(&lab.c1, ip("10.77.2.2"), PASSES_WITHIN).unwrap();

    lab.s.run(|| block(ip("10.77.1.2"), None)).unwrap();
    lab.s.run(|| block(ip("fd77:1::2"), None)).unwrap();
    lab.forget_neighbours();
    let (result, took) = timed(|| round_trip(&mut open, PASSES_WITHIN));
    assert_eq!(result.unwrap_err().kind(), ErrorKind::ConnectionReset);
    assert!(took < FAILS_WITHIN, "took {took:?}");
    for to in ["10.77.2.2", "fd77:2::2"] {
        let (result, took) = timed(|| connect(&lab.c1, ip(to), PASSES_WITHIN));
        assert_eq!(result.unwrap_err().kind(), ErrorKind::ConnectionRefused, "c1 -> {to}");
        assert!(took < FAILS_WITHIN, "c1 -> {to} took {took:?}");
    }
    for to in ["10.77.1.2", "fd77:1::2"] {
        assert!(connect(&lab.c2, ip(to), BLOCKED_AFTER).is_err(), "c2 still reaches {to}");
    }
    assert!(lab.s.run(unblock_all).unwrap());
    round_trip(&mut connect(&lab.c2, ip("10.77.1.2"), PASSES_WITHIN).unwrap(), PASSES_WITHIN).unwrap();
}

/// The agent may cut off several clients at once, from several threads: the
/// first blocks race to create the table, and none may fail or leave its
/// rules twice.
#[test]
fn blocks_at_the_same_time_make_one_table() {
    let s = Netns::new("s");
    let addrs: Vec<IpAddr> = (1..=8).map(|n| ip(&format!("10.77.9.{n}"))).collect();
    std::thread::scope(|scope| {
        for &addr in &addrs {
            let s = &s;
            scope.spawn(move || s.run(|| block(addr, None)).unwrap());
        }
    });
    assert_eq!(s.run(blocks).unwrap().into_iter().map(|b| b.addr).collect::<Vec<_>>(), addrs);
    let listing = nft(&s, &["list", "ruleset"]);
    assert_eq!(listing.matches("reject with tcp reset").count(), 4, "{listing}");
}
