//! Loopback ports for the receivers the tests start (rsyslogd, postfix).
// Each test binary includes this file and uses what it needs of it.
#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::sync::Mutex;

/// Every port handed out in this test process.
static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A loopback TCP port free at the time of asking (the kernel's pick).
pub fn free_tcp() -> u16 {
    unique(|| TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
}

/// A loopback UDP port free at the time of asking.
pub fn free_udp() -> u16 {
    unique(|| UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port())
}

/// Never a port already handed to another test of this process: a receiver
/// stopped or restarted on its port leaves it free for a moment, and a
/// second server given it then fails to bind while the first test's
/// messages go to the wrong one.
fn unique(pick: impl Fn() -> u16) -> u16 {
    loop {
        let port = pick();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}
