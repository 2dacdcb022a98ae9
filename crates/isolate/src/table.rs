//! mamori's own nftables table: how isolation is written, and how it is read
//! back. Nothing outside this table is ever touched.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use nftables::batch::Batch;
use nftables::expr::{Expression, MetaKey, NamedExpression, Prefix};
use nftables::schema::{Chain, NfListObject, Nftables, Set, SetFlag, SetType, SetTypeValue, Table};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily};

use crate::expr::{
    accept, chain_changed, field, inet_table, matches, meta, neighbour_discovery, objects, remove_table_batch, rule,
    set_ref, str_expr, CHAINS,
};
use crate::{Allow, IsolateError};

pub(crate) const TABLE: &str = "mamori_isolate";
const SET4: &str = "allow4";
const SET6: &str = "allow6";
/// Ahead of the usual filter chains (0) and of conntrack (-200), so dropped
/// packets never create connection-tracking entries. Another table's accept
/// cannot undo a drop here; a drop anywhere stays final.
const PRIORITY: i32 = -300;

fn table() -> Table<'static> {
    inet_table(TABLE)
}

/// Replaces whatever mamori's table holds by the isolation for `allow`, in
/// one transaction: adding then deleting the table makes the deletion safe
/// when it is absent, and the host is never left half-isolated.
pub(crate) fn isolate_batch(allow: &Allow) -> Nftables<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table()));
    batch.delete(NfListObject::Table(table()));
    batch.add(NfListObject::Table(table()));
    batch.add(set(SET4, SetType::Ipv4Addr, allow.v4()));
    batch.add(set(SET6, SetType::Ipv6Addr, allow.v6()));
    for (name, hook) in CHAINS {
        batch.add(NfListObject::Chain(Chain {
            family: NfFamily::INet,
            table: TABLE.into(),
            name: name.into(),
            _type: Some(NfChainType::Filter),
            hook: Some(hook),
            prio: Some(PRIORITY),
            policy: Some(NfChainPolicy::Drop),
            ..Chain::default()
        }));
    }
    for (chain, iface, end) in [("input", MetaKey::Iifname, "saddr"), ("output", MetaKey::Oifname, "daddr")] {
        batch.add(rule(TABLE, chain, vec![matches(meta(iface), str_expr("lo")), accept()]));
        for r in allow_rules(chain, end) {
            batch.add(r);
        }
        batch.add(neighbour_discovery(TABLE, chain));
    }
    for r in allow_rules("forward", "saddr").into_iter().chain(allow_rules("forward", "daddr")) {
        batch.add(r);
    }
    batch.to_nftables()
}

/// Removes mamori's table, and nothing else, whether or not it exists.
pub(crate) fn remove_batch() -> Nftables<'static> {
    remove_table_batch(TABLE)
}

/// Accepts packets whose `end` (`saddr` or `daddr`) is on the allow-list.
fn allow_rules(chain: &'static str, end: &'static str) -> [NfListObject<'static>; 2] {
    [("ip", SET4), ("ip6", SET6)]
        .map(|(proto, set)| rule(TABLE, chain, vec![matches(field(proto, end), set_ref(set)), accept()]))
}

fn set<'a>(name: &'static str, kind: SetType, nets: impl Iterator<Item = &'a IpNet>) -> NfListObject<'static> {
    let elems: Vec<Expression<'static>> = nets.map(net_expr).collect();
    NfListObject::Set(Box::new(Set {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.into(),
        set_type: SetTypeValue::Single(kind),
        flags: Some(HashSet::from([SetFlag::Interval])),
        // nft rejects an empty element list; an absent one is an empty set.
        elem: (!elems.is_empty()).then(|| Cow::Owned(elems)),
        ..Set::default()
    }))
}

fn net_expr(net: &IpNet) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(str_expr(&net.addr().to_string())),
        len: u32::from(net.prefix_len()),
    }))
}

/// The allow-list in force, from `nft list table inet mamori_isolate`;
/// an error if the table no longer drops what the allow-list leaves out.
pub(crate) fn read_allow(listing: &Nftables<'_>) -> Result<Allow, IsolateError> {
    let altered = |what: String| IsolateError::Altered { table: TABLE, what };
    for (name, hook) in CHAINS {
        if let Some(what) = chain_changed(listing, name, hook, NfChainPolicy::Drop) {
            return Err(altered(what));
        }
    }
    let mut nets = Vec::new();
    for name in [SET4, SET6] {
        let set = objects(listing)
            .find_map(|o| match o {
                NfListObject::Set(s) if s.name == name => Some(s),
                _ => None,
            })
            .ok_or_else(|| altered(format!("set {name} is missing")))?;
        for elem in set.elem.iter().flat_map(|e| e.iter()) {
            nets.push(read_net(elem).ok_or_else(|| altered(format!("set {name} holds {elem:?}")))?);
        }
    }
    Ok(Allow::new(nets))
}

/// nft prints a host as a bare address and a network as a prefix.
fn read_net(elem: &Expression<'_>) -> Option<IpNet> {
    match elem {
        Expression::String(addr) => addr.parse::<IpAddr>().ok().map(IpNet::from),
        Expression::Named(NamedExpression::Prefix(Prefix { addr, len })) => match addr.as_ref() {
            Expression::String(addr) => IpNet::new(addr.parse().ok()?, u8::try_from(*len).ok()?).ok(),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::has_table;

    /// `nft -j list table inet mamori_isolate` as nft 1.0.6 printed it
    /// (rules cut, since they are not read).
    const LISTING: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
      {"table": {"family": "inet", "name": "mamori_isolate", "handle": 1}},
      {"set": {"family": "inet", "name": "allow4", "table": "mamori_isolate", "type": "ipv4_addr", "handle": 2, "flags": ["interval"],
               "elem": ["10.0.0.5", {"prefix": {"addr": "10.0.1.0", "len": 24}}]}},
      {"set": {"family": "inet", "name": "allow6", "table": "mamori_isolate", "type": "ipv6_addr", "handle": 3, "flags": ["interval"]}},
      {"chain": {"family": "inet", "table": "mamori_isolate", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": -300, "policy": "drop"}},
      {"chain": {"family": "inet", "table": "mamori_isolate", "name": "output", "handle": 4, "type": "filter", "hook": "output", "prio": -300, "policy": "drop"}},
      {"chain": {"family": "inet", "table": "mamori_isolate", "name": "forward", "handle": 5, "type": "filter", "hook": "forward", "prio": -300, "policy": "drop"}}]}"#;

    fn parse(json: &str) -> Nftables<'static> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reads_hosts_and_prefixes_back() {
        let allow = read_allow(&parse(LISTING)).unwrap();
        assert_eq!(allow, Allow::parse(["10.0.0.5", "10.0.1.0/24"]).unwrap());
        assert!(has_table(&parse(LISTING), TABLE));
    }

    #[test]
    fn a_chain_that_accepts_by_default_is_reported_as_altered() {
        let json = LISTING.replace(
            r#""hook": "output", "prio": -300, "policy": "drop""#,
            r#""hook": "output", "prio": -300, "policy": "accept""#,
        );
        let err = read_allow(&parse(&json)).unwrap_err();
        assert!(matches!(err, IsolateError::Altered { ref what, .. } if what.contains("output")), "{err}");
    }

    #[test]
    fn a_missing_chain_or_set_is_reported_as_altered() {
        let no_forward = LISTING.replace(r#""name": "forward""#, r#""name": "other""#);
        assert!(matches!(read_allow(&parse(&no_forward)), Err(IsolateError::Altered { .. })));
        let no_set = LISTING.replace(r#""name": "allow6""#, r#""name": "other""#);
        assert!(matches!(read_allow(&parse(&no_set)), Err(IsolateError::Altered { .. })));
    }

    #[test]
    fn other_tables_are_not_ours() {
        let listing = parse(
            r#"{"nftables": [{"table": {"family": "ip", "name": "mamori_isolate", "handle": 1}}, {"table": {"family": "inet", "name": "filter", "handle": 2}}]}"#,
        );
        assert!(!has_table(&listing, TABLE));
    }

    #[test]
    fn isolation_replaces_only_our_table_and_drops_by_default() {
        let allow = Allow::parse(["10.0.0.0/24", "fd00::5"]).unwrap();
        let json = serde_json::to_value(isolate_batch(&allow)).unwrap();
        let cmds = json["nftables"].as_array().unwrap();
        let kinds: Vec<String> = cmds.iter().map(|c| c.as_object().unwrap().keys().next().unwrap().clone()).collect();
        assert_eq!(&kinds[..3], ["add", "delete", "add"]);
        assert!(cmds.iter().all(|c| {
            let obj = c.as_object().unwrap().values().next().unwrap().as_object().unwrap().values().next().unwrap();
            obj["family"] == "inet" && (obj["name"] == TABLE || obj["table"] == TABLE)
        }));
        let chains: Vec<&serde_json::Value> = cmds.iter().filter_map(|c| c["add"].get("chain")).collect();
        assert_eq!(chains.len(), 3);
        assert!(chains.iter().all(|c| c["policy"] == "drop"));
        let text = json.to_string();
        assert!(text.contains(r#"{"prefix":{"addr":"fd00::5","len":128}}"#), "{text}");
        assert!(!text.contains("flush"));
    }

    #[test]
    fn removal_deletes_only_our_table() {
        let json = serde_json::to_string(&remove_batch()).unwrap();
        assert_eq!(
            json,
            r#"{"nftables":[{"add":{"table":{"family":"inet","name":"mamori_isolate"}}},{"delete":{"table":{"family":"inet","name":"mamori_isolate"}}}]}"#
        );
    }
}
