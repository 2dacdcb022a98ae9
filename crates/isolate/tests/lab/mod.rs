//! Throw-away network namespaces for tests, so no test ever touches the
//! machine's own ruleset.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A named network namespace (`ip netns add`), deleted on drop, failure or not.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A name unique to this process and call, so parallel tests and runs
    /// never collide.
    pub fn new(role: &str) -> Netns {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let ns = Netns { name: format!("mamori-iso-{}-{n}-{role}", std::process::id()) };
        ip(&["netns", "add", &ns.name]);
        // No duplicate address detection on links made here: addresses,
        // link-local ones included, are usable at once instead of after a
        // second or two of silently lost packets.
        ip(&["netns", "exec", &ns.name, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Runs `f` on a thread that has entered this namespace; sockets it
    /// makes and programs it starts belong to the namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = File::open(format!("/run/netns/{}", self.name)).expect("open netns");
                // SAFETY: a plain syscall on a valid fd; it moves only this thread.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {}: {}", self.name, std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("namespace thread panicked")
        })
    }

    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Joins `a` and `b` by a veth pair, addressing both ends:
/// `a` gets `.1`/`::1`, `b` gets `.2`/`::2` of `10.77.<n>.0/24` and `fd77:<n>::/64`.
/// The ends are named `to<n>a` and `to<n>b`.
pub fn link(a: &Netns, b: &Netns, n: u8) {
    let (ea, eb) = (format!("to{n}a"), format!("to{n}b"));
    a.ip(&["link", "add", &ea, "type", "veth", "peer", "name", &eb, "netns", &b.name]);
    for (ns, dev, host) in [(a, &ea, 1), (b, &eb, 2)] {
        ns.ip(&["addr", "add", &format!("10.77.{n}.{host}/24"), "dev", dev]);
        ns.ip(&["addr", "add", &format!("fd77:{n}::{host}/64"), "dev", dev]);
        ns.ip(&["link", "set", dev, "up"]);
    }
}

/// Makes `router` forward, and `ns`, linked to it as `b` of link `n`, route
/// everything through it.
pub fn route_through(router: &Netns, ns: &Netns, n: u8) {
    for key in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
        ip(&["netns", "exec", &router.name, "sysctl", "-qw", key]);
    }
    ns.ip(&["route", "add", "default", "via", &format!("10.77.{n}.1")]);
    ns.ip(&["-6", "route", "add", "default", "via", &format!("fd77:{n}::1")]);
}
