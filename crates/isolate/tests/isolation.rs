//! Isolation for real, inside throw-away network namespaces: a host `h`
//! linked to an allowed peer `p1` and to a peer `p2` that is not allowed,
//! checked with real TCP connections both ways.

mod lab;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use lab::{link, route_through, Netns};
use mamori_isolate::{isolate, status, undo, Allow, IsolateError, Undone};

const PORT: u16 = 7700;
/// A connection that has not completed in this long counts as blocked: the
/// drop policy sends no reset, so a blocked connect can only time out.
const BLOCKED_AFTER: Duration = Duration::from_secs(2);
/// A connection that should pass gets far longer, so that a loaded machine
/// (or a lost first SYN, retried after a second) cannot fail the test.
const PASSES_WITHIN: Duration = Duration::from_secs(15);

fn addr(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), PORT)
}

fn listen(ns: &Netns, port: u16) -> TcpListener {
    ns.run(|| TcpListener::bind(("::", port)).expect("listen"))
}

/// Whether `from` can connect to `to`; `expected` only picks how long to wait.
fn reaches(from: &Netns, to: &str, expected: bool) -> bool {
    let wait = if expected { PASSES_WITHIN } else { BLOCKED_AFTER };
    from.run(|| TcpStream::connect_timeout(&addr(to), wait).is_ok())
}

fn nft(ns: &Netns, args: &[&str]) -> String {
    let out = ns.run(|| Command::new("nft").args(args).output().expect("run nft"));
    assert!(out.status.success(), "nft {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `(from, to, should_pass)` for every pair this lab cares about.
fn check(h: &Netns, p1: &Netns, p2: &Netns, p2_open: bool) {
    let cases = [
        (h, "127.0.0.1", true),
        (h, "::1", true),
        (h, "10.77.1.2", true),
        (h, "fd77:1::2", true),
        (p1, "10.77.1.1", true),
        (p1, "fd77:1::1", true),
        (h, "10.77.2.2", p2_open),
        (h, "fd77:2::2", p2_open),
        (p2, "10.77.2.1", p2_open),
        (p2, "fd77:2::1", p2_open),
    ];
    for (from, to, pass) in cases {
        assert_eq!(
            reaches(from, to, pass),
            pass,
            "{} -> {to} should {}pass",
            from.name,
            if pass { "" } else { "not " }
        );
    }
}

#[test]
fn cuts_off_all_but_loopback_and_the_allow_list_until_undone() {
    let (h, p1, p2) = (Netns::new("h"), Netns::new("p1"), Netns::new("p2"));
    link(&h, &p1, 1);
    link(&h, &p2, 2);
    let _listeners = [listen(&h, PORT), listen(&p1, PORT), listen(&p2, PORT)];
    check(&h, &p1, &p2, true);

    // An open channel to p2, as a ransomware's command connection would be.
    let channel = listen(&p2, PORT + 1);
    let mut ours = h.run(|| TcpStream::connect(("10.77.2.2", PORT + 1)).unwrap());
    let (mut theirs, _) = channel.accept().unwrap();
    theirs.set_read_timeout(Some(PASSES_WITHIN)).unwrap();
    let mut byte = [0u8];
    ours.write_all(b"a").unwrap();
    theirs.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"a");

    let allow = Allow::parse(["10.77.1.2", "fd77:1::/64"]).unwrap();
    let isolation = h.run(|| isolate(&allow)).unwrap();
    assert_eq!(isolation.allow, allow);
    assert_eq!(h.run(status).unwrap(), Some(isolation));
    // Forget learned neighbours so ARP and IPv6 neighbour discovery must
    // work through the isolation, as they would once caches expire.
    for ns in [&h, &p1, &p2] {
        ns.ip(&["neigh", "flush", "all"]);
    }
    check(&h, &p1, &p2, false);
    ours.write_all(b"b").unwrap();
    theirs.set_read_timeout(Some(BLOCKED_AFTER)).unwrap();
    let cut = theirs.read(&mut byte).unwrap_err();
    assert!(matches!(cut.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{cut}");

    assert_eq!(h.run(undo).unwrap(), Undone::Lifted);
    assert_eq!(h.run(status).unwrap(), None);
    check(&h, &p1, &p2, true);
}

#[test]
fn forwarded_traffic_passes_only_to_or_from_the_allow_list() {
    let (h, p1, p2) = (Netns::new("h"), Netns::new("p1"), Netns::new("p2"));
    link(&h, &p1, 1);
    link(&h, &p2, 2);
    // A second address on p1 that the allow-list leaves out.
    p1.ip(&["addr", "add", "10.77.1.3/24", "dev", "to1b"]);
    p1.ip(&["addr", "add", "fd77:1::3/64", "dev", "to1b"]);
    route_through(&h, &p1, 1);
    route_through(&h, &p2, 2);
    let _listener = listen(&p1, PORT);
    let through_h = ["10.77.1.2", "fd77:1::2", "10.77.1.3", "fd77:1::3"];
    for to in through_h {
        assert!(reaches(&p2, to, true), "p2 -> {to} before isolation");
    }

    h.run(|| isolate(&Allow::parse(["10.77.1.2", "fd77:1::2"]).unwrap())).unwrap();
    for ns in [&h, &p1, &p2] {
        ns.ip(&["neigh", "flush", "all"]);
    }
    for (to, allowed) in through_h.iter().zip([true, true, false, false]) {
        assert_eq!(reaches(&p2, to, allowed), allowed, "p2 -> {to} through the isolated h");
    }
    h.run(undo).unwrap();
}

#[test]
fn isolating_and_undoing_twice_leave_other_tables_alone() {
    let h = Netns::new("h");
    nft(&h, &["add", "table", "inet", "user_rules"]);
    nft(&h, &["add", "chain", "inet", "user_rules", "input", "{ type filter hook input priority 0; policy accept; }"]);
    let first = Allow::parse(["192.0.2.0/24"]).unwrap();
    let second = Allow::parse(["198.51.100.7", "2001:db8::/32"]).unwrap();

    let once = h.run(|| isolate(&first)).unwrap();
    let twice = h.run(|| isolate(&first)).unwrap();
    assert_eq!(once, twice);
    let listing = nft(&h, &["list", "ruleset"]);
    assert_eq!(listing.matches("table inet mamori_isolate").count(), 1, "{listing}");
    assert_eq!(listing.matches("policy drop").count(), 3, "{listing}");

    assert_eq!(h.run(|| isolate(&second)).unwrap().allow, second);
    let listing = nft(&h, &["list", "ruleset"]);
    assert!(!listing.contains("192.0.2.0"), "{listing}");

    assert_eq!(h.run(undo).unwrap(), Undone::Lifted);
    let again = h.run(undo).unwrap();
    assert_eq!(again, Undone::WasNotIsolated);
    assert_eq!(again.to_string(), "was not isolated");
    assert_eq!(h.run(status).unwrap(), None);
    let listing = nft(&h, &["list", "ruleset"]);
    assert!(!listing.contains("mamori_isolate"), "{listing}");
    assert!(listing.contains("table inet user_rules"), "{listing}");
    assert!(listing.contains("chain input"), "{listing}");
}

#[test]
fn status_reads_back_every_kind_of_allow_list() {
    let h = Netns::new("h");
    for entries in [
        vec![],
        vec!["10.0.0.5", "10.0.0.0/8", "fd00::/8", "fd00::1"],
        vec!["172.16.1.1", "172.16.1.2", "172.16.1.4/30", "2001:db8::1", "2001:db8::2"],
        vec!["0.0.0.0/0", "::/0"],
        vec!["fe80::/10"],
    ] {
        let allow = Allow::parse(&entries).unwrap();
        assert_eq!(h.run(|| isolate(&allow)).unwrap().allow, allow, "{entries:?}");
        assert_eq!(h.run(status).unwrap().unwrap().allow, allow, "{entries:?}");
    }
    assert_eq!(h.run(undo).unwrap(), Undone::Lifted);
}

#[test]
fn an_altered_table_is_reported_and_repaired_by_isolating_again() {
    let h = Netns::new("h");
    let allow = Allow::parse(["10.1.2.3"]).unwrap();
    h.run(|| isolate(&allow)).unwrap();
    nft(&h, &["add", "chain", "inet", "mamori_isolate", "output", "{ policy accept; }"]);
    let err = h.run(status).unwrap_err();
    assert!(matches!(err, IsolateError::Altered { .. }), "{err}");
    assert!(err.to_string().contains("output"), "{err}");

    assert_eq!(h.run(|| isolate(&allow)).unwrap().allow, allow);
    nft(&h, &["delete", "chain", "inet", "mamori_isolate", "forward"]);
    assert!(matches!(h.run(status), Err(IsolateError::Altered { .. })));
    assert_eq!(h.run(undo).unwrap(), Undone::Lifted);
    assert_eq!(h.run(status).unwrap(), None);
}
