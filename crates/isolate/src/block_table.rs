//! mamori's table for cutting single addresses off: how a block is written,
//! lifted and read back. Nothing outside this table is ever touched.
//!
//! ```text
//! table inet mamori_block {
//!     set blocked4 { type ipv4_addr; flags timeout; }
//!     set blocked6 { type ipv6_addr; flags timeout; }
//!     chain input   { priority filter - 10; neighbour discovery accepted;
//!                     from a blocked address: TCP rejected with a reset, the rest with admin-prohibited }
//!     chain forward { the same for packets from it; packets to it dropped }
//!     chain output  { neighbour discovery and the rejections above accepted; the rest to it dropped }
//! }
//! ```

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

use nftables::batch::Batch;
use nftables::expr::{Elem, Expression, MetaKey, NamedExpression};
use nftables::schema::{
    Chain, Element, FlushObject, NfCmd, NfListObject, Nftables, Set, SetFlag, SetType, SetTypeValue, Table,
};
use nftables::stmt::{Match, Operator, Reject, RejectType, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook, RejectCode};

use crate::expr::{
    accept, chain_changed, field, inet_table, matches, meta, neighbour_discovery, objects, remove_table_batch, rule,
    set_ref, str_expr, CHAINS,
};
use crate::{Block, IsolateError};

pub(crate) const TABLE: &str = "mamori_block";
const SET4: &str = "blocked4";
const SET6: &str = "blocked6";
/// Just ahead of the usual filter chains (0), so that no "established
/// accept" there can let an open connection of a blocked client through
/// first. Conntrack (-200) has run by then, which costs nothing here: the
/// rules never look at connection state.
const PRIORITY: i32 = -10;

/// One address family's names: payload protocol, set, ICMP protocol.
struct Family {
    ip: &'static str,
    set: &'static str,
    icmp: &'static str,
}

const FAMILIES: [Family; 2] =
    [Family { ip: "ip", set: SET4, icmp: "icmp" }, Family { ip: "ip6", set: SET6, icmp: "icmpv6" }];

fn table() -> Table<'static> {
    inet_table(TABLE)
}

fn set(name: &'static str, kind: SetType) -> NfListObject<'static> {
    NfListObject::Set(Box::new(Set {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.into(),
        set_type: SetTypeValue::Single(kind),
        // Per-element timeouts, so the kernel lifts a timed block by itself
        // even when mamori is not running; an element without one stays.
        flags: Some(HashSet::from([SetFlag::Timeout])),
        ..Set::default()
    }))
}

fn chain(name: &'static str, hook: NfHook) -> Chain<'static> {
    Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.into(),
        _type: Some(NfChainType::Filter),
        hook: Some(hook),
        prio: Some(PRIORITY),
        // Everyone not blocked passes, as if the table were not there.
        policy: Some(NfChainPolicy::Accept),
        ..Chain::default()
    }
}

/// The rules of each chain, in order.
fn rules(chain: &'static str) -> Vec<NfListObject<'static>> {
    let mut rules = Vec::new();
    if chain != "forward" {
        // Without it a blocked IPv6 client's neighbour advertisement is
        // rejected, the host can no longer resolve its link address, and
        // the resets below never leave: the client would hang instead of
        // failing. Routers do not forward it.
        rules.push(neighbour_discovery(TABLE, chain));
    }
    for f in FAMILIES {
        let from = || matches(field(f.ip, "saddr"), set_ref(f.set));
        let to = || matches(field(f.ip, "daddr"), set_ref(f.set));
        if chain == "input" || chain == "forward" {
            // A reset, not a drop: the client's next request on a
            // connection opened before the block fails at once, instead of
            // retrying for minutes while its user (or its ransomware) waits.
            rules.push(rule(TABLE, chain, vec![from(), matches(meta(MetaKey::L4proto), str_expr("tcp")), reset()]));
            rules.push(rule(TABLE, chain, vec![from(), prohibited()]));
        }
        if chain == "output" {
            // The rejections above are sent through this hook too (tested);
            // any reset is let out, since a reset can only end a connection.
            let rst = Statement::Match(Match { left: field("tcp", "flags"), right: str_expr("rst"), op: Operator::IN });
            rules.push(rule(TABLE, chain, vec![to(), rst, accept()]));
            rules.push(rule(
                TABLE,
                chain,
                vec![
                    to(),
                    matches(field(f.icmp, "type"), str_expr("destination-unreachable")),
                    matches(field(f.icmp, "code"), str_expr("admin-prohibited")),
                    accept(),
                ],
            ));
        }
        if chain == "output" || chain == "forward" {
            rules.push(rule(TABLE, chain, vec![to(), Statement::Drop(None)]));
        }
    }
    rules
}

fn reset() -> Statement<'static> {
    Statement::Reject(Some(Reject::new(Some(RejectType::TCPReset), None)))
}

fn prohibited() -> Statement<'static> {
    Statement::Reject(Some(Reject::new(Some(RejectType::ICMPX), Some(RejectCode::AdminProhibited))))
}

/// The table with its sets (elements kept) and its chains (rules written
/// afresh): whether the table was absent or its rules were changed, it
/// blocks exactly the addresses in its sets once the batch is committed.
/// (A set or chain redefined by someone else makes nft refuse the batch:
/// only removing the table mends that.)
fn write_table(batch: &mut Batch<'static>) {
    batch.add(NfListObject::Table(table()));
    batch.add(set(SET4, SetType::Ipv4Addr));
    batch.add(set(SET6, SetType::Ipv6Addr));
    for (name, hook) in CHAINS {
        batch.add(NfListObject::Chain(chain(name, hook)));
        batch.add_cmd(NfCmd::Flush(FlushObject::Chain(chain(name, hook))));
        for r in rules(name) {
            batch.add(r);
        }
    }
}

fn set_of(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => SET4,
        IpAddr::V6(_) => SET6,
    }
}

fn element(addr: IpAddr, value: Expression<'static>) -> NfListObject<'static> {
    NfListObject::Element(Element {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: set_of(addr).into(),
        elem: Cow::Owned(vec![value]),
    })
}

fn with_timeout(addr: IpAddr, timeout: Option<u32>) -> Expression<'static> {
    match timeout {
        None => str_expr(&addr.to_string()),
        Some(secs) => Expression::Named(NamedExpression::Elem(Elem {
            val: Box::new(str_expr(&addr.to_string())),
            timeout: Some(secs),
            expires: None,
            comment: None,
            counter: None,
        })),
    }
}

/// Blocks `addr` (already canonical) for `timeout` seconds, or for good.
/// Adding an element that exists changes nothing, so a block in force is
/// deleted and added again, in the same transaction: the new timeout
/// replaces the old one, and there is no moment without the block.
pub(crate) fn block_batch(addr: IpAddr, timeout: Option<u32>) -> Nftables<'static> {
    let mut batch = Batch::new();
    write_table(&mut batch);
    batch.add(element(addr, with_timeout(addr, timeout)));
    batch.delete(element(addr, str_expr(&addr.to_string())));
    batch.add(element(addr, with_timeout(addr, timeout)));
    batch.to_nftables()
}

/// Lifts the block on `addr`, whether or not it is (still) in force: it may
/// expire between the read that found it and this batch.
pub(crate) fn unblock_batch(addr: IpAddr) -> Nftables<'static> {
    let mut batch = Batch::new();
    batch.add(element(addr, str_expr(&addr.to_string())));
    batch.delete(element(addr, str_expr(&addr.to_string())));
    batch.to_nftables()
}

/// Removes mamori's block table, and nothing else, whether or not it exists.
pub(crate) fn remove_batch() -> Nftables<'static> {
    remove_table_batch(TABLE)
}

fn altered(what: String) -> IsolateError {
    IsolateError::BlockAltered { table: TABLE, what }
}

/// The blocks in `nft list table inet mamori_block`; an error if the table
/// no longer blocks what its sets hold.
pub(crate) fn read_blocks(listing: &Nftables<'_>) -> Result<Vec<Block>, IsolateError> {
    for (name, hook) in CHAINS {
        if let Some(what) = chain_changed(listing, name, hook, NfChainPolicy::Accept) {
            return Err(altered(what));
        }
        let held = objects(listing).filter(|o| matches!(o, NfListObject::Rule(r) if r.chain == name)).count();
        let written = rules(name).len();
        if held != written {
            return Err(altered(format!("chain {name} holds {held} rules instead of {written}")));
        }
    }
    let mut blocks = Vec::new();
    for name in [SET4, SET6] {
        blocks.extend(read_set(listing, name)?.ok_or_else(|| altered(format!("set {name} is missing")))?);
    }
    blocks.sort_by_key(|b| b.addr);
    Ok(blocks)
}

/// Whether the listing's sets hold `addr` (canonical). The chains are not
/// looked at: lifting a block must work on an altered table too.
pub(crate) fn holds(listing: &Nftables<'_>, addr: IpAddr) -> Result<bool, IsolateError> {
    Ok(read_set(listing, set_of(addr))?.is_some_and(|blocks| blocks.iter().any(|b| b.addr == addr)))
}

/// `None` when the set is absent.
fn read_set(listing: &Nftables<'_>, name: &str) -> Result<Option<Vec<Block>>, IsolateError> {
    let Some(set) = objects(listing).find_map(|o| match o {
        NfListObject::Set(s) if s.name == name => Some(s),
        _ => None,
    }) else {
        return Ok(None);
    };
    set.elem
        .iter()
        .flat_map(|e| e.iter())
        .map(|elem| read_block(elem).ok_or_else(|| altered(format!("set {name} holds {elem:?}"))))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// nft prints a permanent element as a bare address and a timed one as an
/// object whose `expires` is the time left in whole seconds (rounded down).
fn read_block(elem: &Expression<'_>) -> Option<Block> {
    match elem {
        Expression::String(addr) => Some(Block { addr: addr.parse().ok()?, expires_in: None }),
        Expression::Named(NamedExpression::Elem(Elem { val, timeout, expires, .. })) => match val.as_ref() {
            Expression::String(addr) => Some(Block {
                addr: addr.parse().ok()?,
                expires_in: expires.or(*timeout).map(|secs| Duration::from_secs(secs.into())),
            }),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nft -j list table inet mamori_block` as nft 1.0.6 printed it, with
    /// the rules of each chain cut to the right number of stand-ins.
    fn listing(v4_elems: &str) -> String {
        let mut objs = vec![
            r#"{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}"#
                .to_owned(),
            r#"{"table": {"family": "inet", "name": "mamori_block", "handle": 3}}"#.to_owned(),
            format!(
                r#"{{"set": {{"family": "inet", "name": "blocked4", "table": "mamori_block", "type": "ipv4_addr", "handle": 1, "flags": ["timeout"]{v4_elems}}}}}"#
            ),
            r#"{"set": {"family": "inet", "name": "blocked6", "table": "mamori_block", "type": "ipv6_addr", "handle": 2, "flags": ["timeout"], "elem": ["fd77:1::2"]}}"#.to_owned(),
        ];
        for (name, _) in CHAINS {
            objs.push(format!(
                r#"{{"chain": {{"family": "inet", "table": "mamori_block", "name": "{name}", "handle": 3, "type": "filter", "hook": "{name}", "prio": -10, "policy": "accept"}}}}"#
            ));
            for _ in rules(name) {
                objs.push(format!(
                    r#"{{"rule": {{"family": "inet", "table": "mamori_block", "chain": "{name}", "handle": 9, "expr": [{{"accept": null}}]}}}}"#
                ));
            }
        }
        format!(r#"{{"nftables": [{}]}}"#, objs.join(", "))
    }

    fn parse(json: &str) -> Nftables<'static> {
        serde_json::from_str(json).unwrap()
    }

    const TIMED: &str = r#", "elem": [{"elem": {"val": "10.77.1.2", "timeout": 120, "expires": 118}}, "10.77.1.3"]"#;

    #[test]
    fn reads_timed_and_permanent_blocks_back() {
        let blocks = read_blocks(&parse(&listing(TIMED))).unwrap();
        let want = [
            Block { addr: "10.77.1.2".parse().unwrap(), expires_in: Some(Duration::from_secs(118)) },
            Block { addr: "10.77.1.3".parse().unwrap(), expires_in: None },
            Block { addr: "fd77:1::2".parse().unwrap(), expires_in: None },
        ];
        assert_eq!(blocks, want);
        assert!(holds(&parse(&listing(TIMED)), "10.77.1.2".parse().unwrap()).unwrap());
        assert!(!holds(&parse(&listing(TIMED)), "10.77.1.4".parse().unwrap()).unwrap());
        assert!(read_blocks(&parse(&listing(""))).unwrap().iter().all(|b| b.addr.is_ipv6()));
    }

    #[test]
    fn a_flushed_chain_or_a_missing_set_is_reported_as_altered() {
        let json = listing(TIMED);
        let first_input_rule =
            json.find(r#"{"rule": {"family": "inet", "table": "mamori_block", "chain": "input""#).unwrap();
        let end = first_input_rule + json[first_input_rule..].find("]}}").unwrap() + 3;
        let flushed_one = format!("{}{}", &json[..first_input_rule], json[end..].trim_start_matches(", "));
        let err = read_blocks(&parse(&flushed_one)).unwrap_err();
        assert!(matches!(err, IsolateError::BlockAltered { ref what, .. } if what.contains("input")), "{err}");

        let no_set = json.replace(r#""name": "blocked6""#, r#""name": "other""#);
        let err = read_blocks(&parse(&no_set)).unwrap_err();
        assert!(err.to_string().contains("blocked6"), "{err}");
        // Lifting a block still works on it.
        assert!(holds(&parse(&no_set), "10.77.1.2".parse().unwrap()).unwrap());
        assert!(!holds(&parse(&no_set), "fd77:1::2".parse().unwrap()).unwrap());
    }

    #[test]
    fn a_block_replaces_the_element_and_touches_only_our_table() {
        let json = serde_json::to_value(block_batch("10.77.1.2".parse().unwrap(), Some(30))).unwrap();
        let cmds = json["nftables"].as_array().unwrap();
        assert!(cmds.iter().all(|c| {
            let obj = c.as_object().unwrap().values().next().unwrap().as_object().unwrap().values().next().unwrap();
            obj["family"] == "inet" && (obj["name"] == TABLE || obj["table"] == TABLE)
        }));
        let last: Vec<(&String, &serde_json::Value)> =
            cmds[cmds.len() - 3..].iter().map(|c| c.as_object().unwrap().iter().next().unwrap()).collect();
        assert_eq!(last.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["add", "delete", "add"]);
        assert_eq!(last[2].1["element"]["name"], SET4);
        assert_eq!(last[2].1["element"]["elem"][0]["elem"]["timeout"], 30);
        let text = json.to_string();
        assert!(!text.contains(r#""delete":{"table""#), "{text}");
        assert!(text.contains(r#""type":"tcp reset""#), "{text}");
        // Each chain is flushed before its rules are written again.
        assert_eq!(text.matches(r#""flush":{"chain""#).count(), 3, "{text}");

        let permanent = serde_json::to_string(&block_batch("fd77:1::2".parse().unwrap(), None)).unwrap();
        assert!(permanent.ends_with(r#"{"add":{"element":{"family":"inet","table":"mamori_block","name":"blocked6","elem":["fd77:1::2"]}}}]}"#), "{permanent}");
    }

    #[test]
    fn removal_deletes_only_our_table() {
        let json = serde_json::to_string(&remove_batch()).unwrap();
        assert_eq!(
            json,
            r#"{"nftables":[{"add":{"table":{"family":"inet","name":"mamori_block"}}},{"delete":{"table":{"family":"inet","name":"mamori_block"}}}]}"#
        );
    }
}
