//! Small builders for nft's JSON, shared by mamori's two tables, and the
//! one way to walk a listing.

use std::borrow::Cow;

use nftables::batch::Batch;
use nftables::expr::{Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, SetItem};
use nftables::schema::{NfListObject, NfObject, Nftables, Rule, Table};
use nftables::stmt::{Match, Operator, Statement};
use nftables::types::{NfChainPolicy, NfFamily, NfHook};

/// Neighbour discovery (router solicit/advert, neighbour solicit/advert):
/// IPv6's ARP. Without it no IPv6 peer on the link stays reachable, since a
/// solicitation goes to a multicast address and its answer comes from the
/// peer's own address.
const NEIGHBOUR_DISCOVERY: [&str; 4] =
    ["nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert"];

/// The hooks each of mamori's tables has a chain on, named after them.
pub(crate) const CHAINS: [(&str, NfHook); 3] =
    [("input", NfHook::Input), ("output", NfHook::Output), ("forward", NfHook::Forward)];

/// An `inet` table of mamori's by name.
pub(crate) fn inet_table(name: &'static str) -> Table<'static> {
    Table { family: NfFamily::INet, name: name.into(), handle: None }
}

/// Removes the table `name`, and nothing else, whether or not it exists
/// (adding it first makes the delete always apply).
pub(crate) fn remove_table_batch(name: &'static str) -> Nftables<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(inet_table(name)));
    batch.delete(NfListObject::Table(inet_table(name)));
    batch.to_nftables()
}

pub(crate) fn rule(table: &'static str, chain: &'static str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: table.into(),
        chain: chain.into(),
        expr: Cow::Owned(expr),
        ..Rule::default()
    })
}

/// Accepts neighbour discovery on the link, and only there.
pub(crate) fn neighbour_discovery(table: &'static str, chain: &'static str) -> NfListObject<'static> {
    let nd = NEIGHBOUR_DISCOVERY.iter().map(|t| SetItem::Element(str_expr(t))).collect();
    rule(
        table,
        chain,
        vec![
            matches(field("icmpv6", "type"), Expression::Named(NamedExpression::Set(nd))),
            // Routers decrement it: 255 proves the sender is on the link.
            matches(field("ip6", "hoplimit"), Expression::Number(255)),
            accept(),
        ],
    )
}

pub(crate) fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

pub(crate) fn matches(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op: Operator::EQ })
}

pub(crate) fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

pub(crate) fn field(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField {
        protocol: protocol.into(),
        field: field.into(),
    })))
}

pub(crate) fn set_ref(name: &str) -> Expression<'static> {
    str_expr(&format!("@{name}"))
}

pub(crate) fn str_expr(s: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(s.to_owned()))
}

pub(crate) fn objects<'a, 'b>(listing: &'a Nftables<'b>) -> impl Iterator<Item = &'a NfListObject<'b>> {
    listing.objects.iter().filter_map(|o| match o {
        NfObject::ListObject(obj) => Some(obj),
        NfObject::CmdObject(_) => None,
    })
}

/// Whether `nft list tables` shows the inet table `name`.
pub(crate) fn has_table(listing: &Nftables<'_>, name: &str) -> bool {
    objects(listing).any(|o| matches!(o, NfListObject::Table(t) if t.family == NfFamily::INet && t.name == name))
}

/// Why a listed table's chain is not as mamori wrote it: missing, moved
/// off its hook, or with another default policy. `None` when it is.
pub(crate) fn chain_changed(listing: &Nftables<'_>, name: &str, hook: NfHook, policy: NfChainPolicy) -> Option<String> {
    let chain = objects(listing).find_map(|o| match o {
        NfListObject::Chain(c) if c.name == name => Some(c),
        _ => None,
    });
    match chain {
        None => Some(format!("chain {name} is missing")),
        Some(c) if c.hook != Some(hook) || c.policy != Some(policy) => {
            Some(format!("chain {name} is no longer on its hook with policy {policy:?}"))
        }
        Some(_) => None,
    }
}
