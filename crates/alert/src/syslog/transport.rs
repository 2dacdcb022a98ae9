//! Getting a message to the receiver: a UDP datagram, an octet-counted
//! frame on TCP, or the same inside TLS. One connection is kept; any error
//! drops it, and the next message connects again.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// Why a message did not get through, in words for the log.
pub type Problem = String;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Udp,
    Tcp,
    Tls,
}

/// A receiver's address as the config gives it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub scheme: Scheme,
    /// A name or an address, without brackets.
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// `udp://HOST:PORT`, `tcp://HOST:PORT` or `tls://HOST:PORT`; an IPv6
    /// address in brackets.
    pub fn parse(url: &str) -> Result<Endpoint, Problem> {
        let shape = "expected udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT";
        let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("{url:?}: {shape}"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "udp" => Scheme::Udp,
            "tcp" => Scheme::Tcp,
            "tls" => Scheme::Tls,
            other => return Err(format!("{url:?}: unknown scheme {other:?}; {shape}")),
        };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, port) = v6.split_once("]:").ok_or_else(|| format!("{url:?}: {shape}"))?;
            (host, port)
        } else {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| format!("{url:?}: no port; {shape}"))?;
            if host.contains(':') {
                return Err(format!("{url:?}: an IPv6 address goes in brackets ([::1]:6514)"));
            }
            (host, port)
        };
        if host.is_empty() || host.contains(['/', '@', ' ', '?', '#']) {
            return Err(format!("{url:?}: bad host; {shape}"));
        }
        let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| format!("{url:?}: bad port; {shape}"))?;
        if scheme == Scheme::Tls {
            ServerName::try_from(host.to_owned()).map_err(|_| format!("{url:?}: {host:?} is not a host name"))?;
        }
        Ok(Endpoint { scheme, host: host.to_owned(), port })
    }

    /// The host's addresses. A name is looked up on a thread of its own,
    /// so a resolver that hangs costs `timeout`, not the output's thread.
    fn resolve(&self, timeout: Duration) -> Result<Vec<SocketAddr>, Problem> {
        if let Ok(ip) = self.host.parse::<std::net::IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.port)]);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (host, port) = (self.host.clone(), self.port);
        std::thread::Builder::new()
            .name("syslog-resolve".into())
            .spawn(move || {
                let _ = tx.send((host.as_str(), port).to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
            })
            .map_err(|e| e.to_string())?;
        let addrs = match rx.recv_timeout(timeout) {
            Ok(result) => result.map_err(|e| format!("cannot resolve {}: {e}", self.host))?,
            Err(_) => return Err(format!("cannot resolve {}: no answer in {timeout:?}", self.host)),
        };
        if addrs.is_empty() {
            return Err(format!("{} has no address", self.host));
        }
        Ok(addrs)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Udp => "udp",
            Scheme::Tcp => "tcp",
            Scheme::Tls => "tls",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// The client side of TLS: the CA file's certificates, or the system's.
/// The provider is named here, not taken from the process default, which
/// is ambiguous when another crate in the build enables a second one.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, Problem> {
    let mut roots = RootCertStore::empty();
    let certs = crate::tls::ca_roots(ca_file)?;
    match ca_file {
        Some(path) => {
            for cert in certs {
                roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        // The system's store may hold a certificate rustls cannot use: the others still serve.
        None => {
            roots.add_parsable_certificates(certs);
            if roots.is_empty() {
                return Err("no CA certificate on this system that rustls can use".into());
            }
        }
    }
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

struct Tls {
    tcp: TcpStream,
    conn: ClientConnection,
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<Tls>),
}

pub struct Transport {
    endpoint: Endpoint,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
    conn: Option<Conn>,
}

impl Transport {
    pub fn new(endpoint: Endpoint, tls: Option<Arc<ClientConfig>>, timeout: Duration) -> Transport {
        Transport { endpoint, tls, timeout, conn: None }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends one message; on any error the connection is dropped.
    pub fn send(&mut self, message: &[u8]) -> Result<(), Problem> {
        let result = self.try_send(message);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    fn try_send(&mut self, message: &[u8]) -> Result<(), Problem> {
        // A receiver that restarted closed our connection; a write would
        // still "succeed" into the void once, losing the event. Look first.
        if self.conn.as_mut().is_some_and(peer_closed) {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(self.connect()?);
        }
        let target = &self.endpoint;
        let io = |e: std::io::Error| format!("{target}: {}", io_words(&e));
        match self.conn.as_mut().expect("connected above") {
            Conn::Udp(sock) => {
                let n = sock.send(message).map_err(io)?;
                if n != message.len() {
                    return Err(format!("{target}: datagram cut to {n} of {} bytes", message.len()));
                }
            }
            Conn::Tcp(tcp) => {
                tcp.write_all(&frame(message)).map_err(io)?;
            }
            Conn::Tls(t) => {
                t.conn.writer().write_all(&frame(message)).map_err(io)?;
                while t.conn.wants_write() {
                    t.conn.write_tls(&mut t.tcp).map_err(io)?;
                }
            }
        }
        Ok(())
    }

    /// Whether the receiver is there: a connection (and TLS handshake)
    /// for TCP and TLS, which is kept for the next send.
    pub fn probe(&mut self) -> Result<String, Problem> {
        let target = self.endpoint.to_string();
        if self.endpoint.scheme == Scheme::Udp {
            let addrs = self.endpoint.resolve(self.timeout)?;
            return Ok(format!(
                "{target} ({}): UDP has no connection, so whether a receiver listens cannot be told; \
                 send a test alert and look for it there",
                addrs[0]
            ));
        }
        self.conn = None;
        let conn = self.connect()?;
        let said = match &conn {
            Conn::Tls(t) => format!(
                "{target}: connected to {}, TLS {} handshake done, certificate valid for {}",
                t.tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
                t.conn.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default(),
                self.endpoint.host
            ),
            Conn::Tcp(tcp) => {
                format!("{target}: connected to {}", tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default())
            }
            Conn::Udp(_) => unreachable!("UDP returned above"),
        };
        self.conn = Some(conn);
        Ok(said)
    }

    fn connect(&self) -> Result<Conn, Problem> {
        let target = &self.endpoint;
        let addrs = target.resolve(self.timeout)?;
        if target.scheme == Scheme::Udp {
            let addr = addrs[0];
            let local: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("literal");
            let sock = UdpSocket::bind(local).map_err(|e| format!("{target}: {}", io_words(&e)))?;
            sock.connect(addr).map_err(|e| format!("{target}: {}", io_words(&e)))?;
            sock.set_write_timeout(Some(self.timeout)).map_err(|e| e.to_string())?;
            return Ok(Conn::Udp(sock));
        }
        let tcp = self.connect_tcp(&addrs)?;
        let Some(config) = &self.tls else { return Ok(Conn::Tcp(tcp)) };
        let name = ServerName::try_from(target.host.clone()).map_err(|e| format!("{target}: {e}"))?;
        let conn = ClientConnection::new(Arc::clone(config), name).map_err(|e| format!("{target}: {e}"))?;
        let mut t = Tls { tcp, conn };
        // Each read and write is bounded by the socket's timeouts; the
        // deadline bounds a receiver that trickles the handshake.
        let deadline = Instant::now() + self.timeout * 2;
        while t.conn.is_handshaking() {
            if Instant::now() > deadline {
                return Err(format!("{target}: TLS handshake timed out"));
            }
            t.conn.complete_io(&mut t.tcp).map_err(|e| format!("{target}: TLS handshake: {}", io_words(&e)))?;
        }
        Ok(Conn::Tls(Box::new(t)))
    }

    fn connect_tcp(&self, addrs: &[SocketAddr]) -> Result<TcpStream, Problem> {
        let mut last = String::new();
        for addr in addrs {
            match TcpStream::connect_timeout(addr, self.timeout) {
                Ok(tcp) => {
                    let set = |r: std::io::Result<()>| r.map_err(|e| e.to_string());
                    set(tcp.set_write_timeout(Some(self.timeout)))?;
                    set(tcp.set_read_timeout(Some(self.timeout)))?;
                    set(tcp.set_nodelay(true))?;
                    return Ok(tcp);
                }
                Err(e) => last = format!("{addr}: {}", io_words(&e)),
            }
        }
        Err(format!("{}: cannot connect ({last})", self.endpoint))
    }
}

/// RFC 6587 §3.4.1 octet counting: `LEN SP MSG`, so a message may hold
/// any byte, newlines included.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut f = format!("{} ", message.len()).into_bytes();
    f.extend_from_slice(message);
    f
}

/// Whether the receiver has closed the connection (or broke it). Syslog
/// receivers send nothing, so anything but "no data yet" on a plain TCP
/// connection means it is gone; over TLS, records are read and dropped
/// (a TLS 1.3 server sends session tickets) until a close shows up.
fn peer_closed(conn: &mut Conn) -> bool {
    let tcp = match conn {
        Conn::Udp(_) => return false,
        Conn::Tcp(tcp) => tcp,
        Conn::Tls(t) => &t.tcp,
    };
    if tcp.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = match conn {
        Conn::Udp(_) => false,
        Conn::Tcp(tcp) => match tcp.peek(&mut [0u8; 1]) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != ErrorKind::WouldBlock,
        },
        Conn::Tls(t) => tls_closed(t),
    };
    let tcp = match conn {
        Conn::Udp(_) => return closed,
        Conn::Tcp(tcp) => tcp,
        Conn::Tls(t) => &t.tcp,
    };
    closed || tcp.set_nonblocking(false).is_err()
}

fn tls_closed(t: &mut Tls) -> bool {
    // Bounded: a receiver that floods us is treated as broken.
    for _ in 0..64 {
        match t.conn.read_tls(&mut t.tcp) {
            Ok(0) => return true,
            Ok(_) => match t.conn.process_new_packets() {
                Ok(state) if state.peer_has_closed() => return true,
                Ok(state) => {
                    let mut sink = vec![0u8; state.plaintext_bytes_to_read()];
                    let _ = t.conn.reader().read(&mut sink);
                }
                Err(_) => return true,
            },
            Err(e) => return e.kind() != ErrorKind::WouldBlock,
        }
    }
    true
}

/// An I/O error in words: a timeout says it was one.
fn io_words(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => format!("timed out ({e})"),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let e = Endpoint::parse("tcp://127.0.0.1:514").unwrap();
        assert_eq!((e.scheme, e.host.as_str(), e.port), (Scheme::Tcp, "127.0.0.1", 514));
        let e = Endpoint::parse("TLS://[::1]:6514").unwrap();
        assert_eq!((e.scheme, e.host.as_str(), e.port), (Scheme::Tls, "::1", 6514));
        assert_eq!(e.to_string(), "tls://[::1]:6514");
        assert_eq!(Endpoint::parse("udp://logs.example:514").unwrap().to_string(), "udp://logs.example:514");
        for bad in
            ["http://a:1", "tcp://a", "tcp://:1", "tcp://a:0", "tcp://a:99999", "tcp://::1:5", "a:1", "tcp://a/b:1"]
        {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn frames_count_octets_not_characters() {
        assert_eq!(frame("ä".as_bytes()), b"2 \xc3\xa4");
    }
}
