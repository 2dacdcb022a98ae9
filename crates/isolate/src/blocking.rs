//! Cutting one remote client off: its address, both ways, with a timeout
//! the kernel enforces. See [`Nft::block`].

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{block_table, IsolateError, Nft};

/// A block in force: an address cut off, and for how long still.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// IPv4-mapped IPv6 addresses are given as IPv4, as they are blocked.
    pub addr: IpAddr,
    /// Time left, in whole seconds (nft reports no finer); `None` until
    /// unblocked.
    #[serde(rename = "expires_in_secs", with = "secs")]
    pub expires_in: Option<Duration>,
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expires_in {
            None => write!(f, "{} blocked until unblocked", self.addr),
            Some(left) => write!(f, "{} blocked for {} more", self.addr, Span(left)),
        }
    }
}

/// `1h 2m 3s`, `45s`: what is left of a block, for people.
struct Span(Duration);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
        let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, unit)| format!("{n}{unit}"))
            .collect();
        if parts.is_empty() {
            f.write_str("0s")
        } else {
            f.write_str(&parts.join(" "))
        }
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

/// nft takes element timeouts in whole seconds. A part second counts as a
/// whole one, and nothing is shorter than a second: a timeout of 0 would
/// make the block permanent. Beyond nft's limit (136 years) is as good as
/// that limit.
fn timeout_secs(duration: Duration) -> u32 {
    let secs = duration.as_secs().saturating_add(u64::from(duration.subsec_nanos() > 0)).max(1);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// The address as packets carry it: an IPv4 client reaching a dual-stack
/// socket is shown there as `::ffff:a.b.c.d`, but its packets are IPv4.
/// Addresses no remote client can have are refused: blocking loopback, say,
/// would cut the host off from itself and not from the attacker.
fn blockable(addr: IpAddr) -> Result<IpAddr, IsolateError> {
    let addr = addr.to_canonical();
    let why = if addr.is_unspecified() {
        "it is the unspecified address"
    } else if addr.is_loopback() {
        "it is a loopback address (this host itself)"
    } else if addr.is_multicast() {
        "it is a multicast address"
    } else if addr == IpAddr::V4(std::net::Ipv4Addr::BROADCAST) {
        "it is the broadcast address"
    } else {
        return Ok(addr);
    };
    Err(IsolateError::NotBlockable { addr, why })
}

/// Blocks, like every command of [`Nft`], act on the network namespace of
/// the calling thread: to cut off a client of a server that runs in a
/// namespace of its own (a container), call them from a thread that has
/// entered that namespace (`setns(fd, CLONE_NEWNET)` on `/proc/PID/ns/net`
/// of the server), since the block lives in that namespace's ruleset.
impl Nft {
    /// Cuts `addr` (IPv4 or IPv6) off this host, both ways, for `duration`
    /// (`None`: until [`unblock`](Nft::unblock)ed), in a table of mamori's
    /// own, `inet mamori_block`, written on first use.
    ///
    /// Connections already open are cut too, and fail fast: the client's
    /// next TCP packet is answered with a reset (anything else with ICMP
    /// admin-prohibited), and so is every new connection it tries. Nothing
    /// else leaves the host for it. Other clients are not touched.
    ///
    /// Blocking again is harmless and sets the new duration (a permanent
    /// block becomes timed and the other way round). Durations are rounded
    /// up to whole seconds; the kernel lifts a timed block by itself, even
    /// when mamori no longer runs. An IPv4-mapped IPv6 address is blocked
    /// as its IPv4 address. Runs in the calling thread's network namespace.
    pub fn block(&self, addr: IpAddr, duration: Option<Duration>) -> Result<Block, IsolateError> {
        let addr = blockable(addr)?;
        let timeout = duration.map(timeout_secs);
        self.apply(&block_table::block_batch(addr, timeout), "blocking an address")?;
        Ok(Block { addr, expires_in: timeout.map(|secs| Duration::from_secs(secs.into())) })
    }

    /// Lifts the block on `addr`; `false` when there was none (never
    /// blocked, expired, or lifted already). Works on an altered table too.
    /// Runs in the calling thread's network namespace.
    pub fn unblock(&self, addr: IpAddr) -> Result<bool, IsolateError> {
        let addr = addr.to_canonical();
        if !self.has_table(block_table::TABLE)? {
            return Ok(false);
        }
        let listing = self.list(&["table", "inet", block_table::TABLE], "reading the blocks")?;
        if !block_table::holds(&listing, addr)? {
            return Ok(false);
        }
        self.apply(&block_table::unblock_batch(addr), "unblocking an address")?;
        Ok(true)
    }

    /// The blocks in force, sorted by address (IPv4 first), with the time
    /// left of each; an error when the table no longer blocks what it lists.
    /// Runs in the calling thread's network namespace.
    pub fn blocks(&self) -> Result<Vec<Block>, IsolateError> {
        if !self.has_table(block_table::TABLE)? {
            return Ok(Vec::new());
        }
        let listing = self.list(&["table", "inet", block_table::TABLE], "reading the blocks")?;
        block_table::read_blocks(&listing)
    }

    /// Lifts every block by removing mamori's block table, altered or not;
    /// `false` when there was none. Runs in the calling thread's network
    /// namespace.
    pub fn unblock_all(&self) -> Result<bool, IsolateError> {
        if !self.has_table(block_table::TABLE)? {
            return Ok(false);
        }
        self.apply(&block_table::remove_batch(), "removing the block table")?;
        Ok(true)
    }
}

/// [`Nft::block`] with the `nft` on `PATH`.
pub fn block(addr: IpAddr, duration: Option<Duration>) -> Result<Block, IsolateError> {
    Nft::default().block(addr, duration)
}

/// [`Nft::unblock`] with the `nft` on `PATH`.
pub fn unblock(addr: IpAddr) -> Result<bool, IsolateError> {
    Nft::default().unblock(addr)
}

/// [`Nft::blocks`] with the `nft` on `PATH`.
pub fn blocks() -> Result<Vec<Block>, IsolateError> {
    Nft::default().blocks()
}

/// [`Nft::unblock_all`] with the `nft` on `PATH`.
pub fn unblock_all() -> Result<bool, IsolateError> {
    Nft::default().unblock_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_to_whole_seconds_and_never_to_zero() {
        assert_eq!(timeout_secs(Duration::ZERO), 1);
        assert_eq!(timeout_secs(Duration::from_millis(1)), 1);
        assert_eq!(timeout_secs(Duration::from_millis(2_001)), 3);
        assert_eq!(timeout_secs(Duration::from_secs(600)), 600);
        assert_eq!(timeout_secs(Duration::MAX), u32::MAX);
    }

    #[test]
    fn mapped_addresses_are_blocked_as_ipv4_and_the_host_itself_never() {
        let mapped: IpAddr = "::ffff:10.77.1.2".parse().unwrap();
        assert_eq!(blockable(mapped).unwrap(), "10.77.1.2".parse::<IpAddr>().unwrap());
        assert_eq!(blockable("fd77:1::2".parse().unwrap()).unwrap(), "fd77:1::2".parse::<IpAddr>().unwrap());
        for addr in ["127.0.0.1", "::1", "::ffff:127.0.0.1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255"]
        {
            let err = blockable(addr.parse().unwrap()).unwrap_err();
            assert!(matches!(err, IsolateError::NotBlockable { .. }), "{addr}: {err}");
        }
    }

    #[test]
    fn blocks_read_as_people_and_programs_want_them() {
        let timed = Block { addr: "10.77.1.2".parse().unwrap(), expires_in: Some(Duration::from_secs(3_723)) };
        assert_eq!(timed.to_string(), "10.77.1.2 blocked for 1h 2m 3s more");
        let json = serde_json::to_string(&timed).unwrap();
        assert_eq!(json, r#"{"addr":"10.77.1.2","expires_in_secs":3723}"#);
        assert_eq!(serde_json::from_str::<Block>(&json).unwrap(), timed);

        let permanent = Block { addr: "fd77::2".parse().unwrap(), expires_in: None };
        assert_eq!(permanent.to_string(), "fd77::2 blocked until unblocked");
        let json = serde_json::to_string(&permanent).unwrap();
        assert_eq!(json, r#"{"addr":"fd77::2","expires_in_secs":null}"#);
        assert_eq!(serde_json::from_str::<Block>(&json).unwrap(), permanent);
        let expiring = Block { expires_in: Some(Duration::ZERO), ..permanent };
        assert_eq!(expiring.to_string(), "fd77::2 blocked for 0s more");
    }
}
