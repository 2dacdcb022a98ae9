//! `/proc/PID/net/tcp` and `tcp6`: the sockets of a network namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `st` of an established connection.
pub(crate) const ESTABLISHED: u8 = 0x01;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Socket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u8,
    pub inode: u64,
}

/// One line of the table (`sl local_address rem_address st ... uid timeout
/// inode ...`); `None` for the header and anything malformed.
pub(crate) fn parse_line(line: &str) -> Option<Socket> {
    let mut f = line.split_whitespace();
    let sl = f.next()?;
    if !sl.ends_with(':') {
        return None;
    }
    let local = parse_endpoint(f.next()?)?;
    let remote = parse_endpoint(f.next()?)?;
    let state = u8::from_str_radix(f.next()?, 16).ok()?;
    // tx_queue:rx_queue, tr:tm->when, retrnsmt, uid, timeout, then the inode.
    let inode = f.nth(5)?.parse().ok()?;
    Some(Socket { local, remote, state, inode })
}

/// `ADDR:PORT` in hex. The kernel prints each 32-bit word of the address as
/// the number it is in memory (network byte order read as a host integer),
/// so the bytes come back with `to_ne_bytes`; the port is a plain number.
fn parse_endpoint(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            // A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; the
            // client is the IPv4 address all the same.
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

fn word(hex: &str) -> Option<[u8; 4]> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    // Captured in the lab (smbd in its namespace, one client over each family).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 01054E0A:01BD 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 449524 1 00000000b3dbaee3 100 0 0 10 0
   1: 01054E0A:01BD 0B054E0A:E330 01 00000000:00000000 02:000AFB9B 00000000     0        0 454378 2 000000009f4b0d8c 20 4 11 22 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 050077FD000000000000000001000000:01BD 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 449525 1 000000009eca5c5e 100 0 0 10 0
   1: 050077FD000000000000000001000000:01BD 050077FD000000000000000011000000:A35C 01 00000000:00000000 02:000AFB9E 00000000     0        0 454380 2 0000000072ca2bcb 20 4 11 21 -1
";

    #[test]
    fn ipv4_listener_and_connection() {
        let sockets: Vec<Socket> = TCP.lines().filter_map(parse_line).collect();
        assert_eq!(sockets.len(), 2, "the header is skipped");
        assert_eq!(sockets[0].local, "10.78.5.1:445".parse().unwrap());
        assert_eq!(sockets[0].state, 0x0A);
        let conn = sockets[1];
        assert_eq!(conn.local, "10.78.5.1:445".parse().unwrap());
        assert_eq!(conn.remote, "10.78.5.11:58160".parse().unwrap());
        assert_eq!(conn.state, ESTABLISHED);
        assert_eq!(conn.inode, 454378);
    }

    #[test]
    fn ipv6_word_order() {
        let sockets: Vec<Socket> = TCP6.lines().filter_map(parse_line).collect();
        assert_eq!(sockets.len(), 2);
        assert_eq!(sockets[0].local, "[fd77:5::1]:445".parse().unwrap());
        assert_eq!(sockets[0].remote, "[::]:0".parse().unwrap());
        let s = sockets[1];
        assert_eq!(s.local, "[fd77:5::1]:445".parse().unwrap());
        assert_eq!(s.remote, "[fd77:5::11]:41820".parse().unwrap());
        assert_eq!((s.state, s.inode), (ESTABLISHED, 454380));
    }

    #[test]
    fn mapped_ipv4_is_given_as_ipv4() {
        let line = "   3: 0000000000000000FFFF0000014D0A0A:01BD 0000000000000000FFFF00000B4D0A0A:C350 01 00000000:00000000 00:00000000 00000000     0        0 42 1 0000000000000000 20 4 30 10 -1";
        let s = parse_line(line).unwrap();
        assert_eq!(s.local, "10.10.77.1:445".parse().unwrap());
        assert_eq!(s.remote, "10.10.77.11:50000".parse().unwrap());
    }

    #[test]
    fn hostile_lines_are_refused_without_panic() {
        for line in [
            "",
            "0:",
            "   0: 01054D0A 0B054D0A:91FA 01 0 0 0 0 0 1",
            "   0: 0105ZZ0A:01BD 0B054D0A:91FA 01 00000000:00000000 00:0 0 0 0 7",
            "   0: 01054D0A:1FFFF 0B054D0A:91FA 01 00000000:00000000 00:0 0 0 0 7",
            "   0: +1054D0A:01BD 0B054D0A:91FA 01 00000000:00000000 00:0 0 0 0 7",
            "   0: 01054D0A:01BD 0B054D0A:91FA 01 00000000:00000000 00:0 0 0 0",
            "   0: 01054D0A:01BD 0B054D0A:91FA 01 00000000:00000000 00:0 0 0 0 -7",
            "   0: é1054D0A:01BD 0B054D0A:91FA 01 00000000:00000000 00:0 0 0 0 7",
            "   0: 000077FD00000000000000000100000é:01BD 0B054D0A:91FA 01 0 0 0 0 0 7",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }
}
