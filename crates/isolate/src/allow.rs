//! The networks a host keeps reaching while it is isolated.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The allow-list: networks the host may still talk to, in both directions,
/// while isolated. Loopback is always allowed and is not listed.
///
/// Kept normalised (host bits cleared, overlapping and neighbouring networks
/// merged, sorted) because nft stores it that way: what was asked for then
/// compares equal to what [`status`](crate::status) reads back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<IpNet>", into = "Vec<IpNet>")]
pub struct Allow {
    nets: Vec<IpNet>,
}

/// An allow-list entry that is neither an address nor a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?} is not an IP address or network (expected e.g. 10.0.0.5, 10.0.0.0/24 or fd00::/64)")]
pub struct BadNet {
    pub entry: String,
}

impl Allow {
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Allow {
        let nets: Vec<IpNet> = nets.into_iter().map(|n| n.trunc()).collect();
        let mut nets = IpNet::aggregate(&nets);
        nets.sort();
        Allow { nets }
    }

    /// Parses entries such as `10.0.0.5`, `10.0.0.0/24` or `fd00::/64`.
    pub fn parse<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Result<Allow, BadNet> {
        let nets = entries.into_iter().map(|e| parse_net(e.as_ref())).collect::<Result<Vec<_>, _>>()?;
        Ok(Allow::new(nets))
    }

    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    pub(crate) fn v4(&self) -> impl Iterator<Item = &IpNet> {
        self.nets.iter().filter(|n| matches!(n, IpNet::V4(_)))
    }

    pub(crate) fn v6(&self) -> impl Iterator<Item = &IpNet> {
        self.nets.iter().filter(|n| matches!(n, IpNet::V6(_)))
    }
}

/// One address (taken as a single host) or one CIDR network.
pub fn parse_net(entry: &str) -> Result<IpNet, BadNet> {
    let text = entry.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| BadNet { entry: entry.to_owned() })
}

impl From<Vec<IpNet>> for Allow {
    fn from(nets: Vec<IpNet>) -> Allow {
        Allow::new(nets)
    }
}

impl From<Allow> for Vec<IpNet> {
    fn from(allow: Allow) -> Vec<IpNet> {
        allow.nets
    }
}

impl fmt::Display for Allow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("loopback")?;
        for net in &self.nets {
            write!(f, ", {net}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_become_host_networks() {
        assert_eq!(parse_net("10.0.0.5").unwrap(), net("10.0.0.5/32"));
        assert_eq!(parse_net(" fd00::1 ").unwrap(), net("fd00::1/128"));
        assert_eq!(parse_net("10.0.0.0/24").unwrap(), net("10.0.0.0/24"));
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in ["", "10.0.0", "10.0.0.0/33", "fd00::/129", "host.example", "10.0.0.0/"] {
            assert_eq!(parse_net(bad).unwrap_err().entry, bad);
        }
        assert!(Allow::parse(["10.0.0.1", "nope"]).is_err());
    }

    #[test]
    fn normalises_overlaps_neighbours_and_host_bits() {
        let allow =
            Allow::parse(["fd00::/64", "10.0.0.5", "10.0.0.77/24", "10.0.1.0/24", "192.168.1.1", "fd00::42"]).unwrap();
        assert_eq!(allow.nets(), [net("10.0.0.0/23"), net("192.168.1.1/32"), net("fd00::/64")]);
        assert_eq!(allow.v4().count(), 2);
        assert_eq!(allow.v6().count(), 1);
        assert_eq!(allow.to_string(), "loopback, 10.0.0.0/23, 192.168.1.1/32, fd00::/64");
    }

    #[test]
    fn serde_keeps_the_list_normalised() {
        let allow: Allow = serde_json::from_str(r#"["10.0.0.9/24","10.0.0.0/25"]"#).unwrap();
        assert_eq!(allow.nets(), [net("10.0.0.0/24")]);
        assert_eq!(serde_json::to_string(&allow).unwrap(), r#"["10.0.0.0/24"]"#);
    }
}
