//! Ending a blocked client's open TCP connections from this side.
//!
//! A block answers the client's next packet with a reset, but a client
//! waiting for the answer to a request it already sent (to a server process
//! that was stopped meanwhile) sends nothing more and waits out its own
//! timeout. Destroying the server's end of each connection (`ss -K`, the
//! kernel's SOCK_DESTROY) sends that reset at once; the block lets resets
//! through.

use std::net::IpAddr;
use std::process::{Command, Stdio};

use crate::IsolateError;

/// Destroys every TCP socket of this thread's network namespace whose peer
/// is `addr` (also in its IPv4-mapped IPv6 form); returns how many.
pub fn reset_connections(addr: IpAddr) -> Result<usize, IsolateError> {
    // ss reads a bare IPv6 address's last group as a port: brackets.
    let peers = match addr {
        IpAddr::V4(v4) => vec![v4.to_string(), format!("[{}]", v4.to_ipv6_mapped())],
        IpAddr::V6(v6) => vec![format!("[{v6}]")],
    };
    let mut destroyed = 0;
    for peer in peers {
        let program = std::path::PathBuf::from("ss");
        let out = Command::new(&program)
            .args(["-K", "-t", "-n", "-H", "dst", &peer])
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| IsolateError::Run { program: program.clone(), source })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            return Err(IsolateError::Reset { stderr });
        }
        // ss lists each socket it destroyed, one per line.
        destroyed += String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).count();
    }
    Ok(destroyed)
}
