//! Whether the firewall lets a new TCP connection from elsewhere reach a
//! port, read from the nftables ruleset (`nft -j list ruleset`).
//!
//! The analysis is small and conservative: every filter chain on the
//! input hook must let the packet through, and a rule the analyser cannot
//! read is assumed to accept (if it accepts) and not to drop (if it
//! drops), so "filtered" is said only when a drop is certain. iptables
//! rules made with iptables-legacy are not in the nftables ruleset.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::tool;

/// Who can reach a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Anyone who can route to the address.
    Exposed,
    /// Only these sources (the rest are dropped).
    Restricted(Vec<String>),
    /// No one: new connections are dropped or rejected.
    Filtered,
}

/// The firewall's answer for one port, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub reach: Reach,
    /// A rule limits the rate of connections (`limit`, `meter`) to it.
    pub limited: bool,
    pub why: String,
}

impl Verdict {
    /// Whether the firewall stands between the port and most of the network.
    pub fn shields(&self) -> bool {
        self.reach != Reach::Exposed
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reach {
            Reach::Exposed => write!(f, "firewall: exposed ({})", self.why)?,
            Reach::Restricted(from) => write!(f, "firewall: restricted to {} ({})", from.join(", "), self.why)?,
            Reach::Filtered => write!(f, "firewall: filtered ({})", self.why)?,
        }
        if self.limited {
            write!(f, ", rate limited")?;
        }
        Ok(())
    }
}

/// The ruleset, or why it could not be read.
pub struct Firewall {
    items: Result<Vec<Value>, String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// The packet asked about: a new TCP connection to `port` from anywhere.
#[derive(Clone, Copy)]
struct Packet {
    port: u16,
    family: Family,
}

/// How one rule's matches apply to the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fit {
    No,
    Yes,
    /// Only from these sources.
    From(Vec<String>),
    /// Cannot tell.
    Maybe,
}

enum End {
    Accept,
    Drop(String),
    Fallthrough,
}

#[derive(Default)]
struct Walk {
    sources: Vec<String>,
    limited: bool,
}

const JUMPS: usize = 16;

impl Firewall {
    /// Reads this network namespace's ruleset with `nft`.
    pub fn read() -> Firewall {
        let nft = ["/usr/sbin/nft", "/sbin/nft"].into_iter().map(Path::new).find(|p| p.exists());
        let Some(nft) = nft else {
            return Firewall { items: Err("nft is not installed".into()) };
        };
        match tool::run(nft, &["-j", "list", "ruleset"], Duration::from_secs(30)) {
            Ok(out) => Firewall::from_json(&out),
            Err(e) => Firewall { items: Err(e.to_string()) },
        }
    }

    pub fn from_json(json: &str) -> Firewall {
        let items =
            serde_json::from_str::<Value>(json).map_err(|e| format!("nft -j printed no JSON: {e}")).and_then(|v| {
                v["nftables"].as_array().cloned().ok_or_else(|| "nft -j printed no \"nftables\" list".into())
            });
        Firewall { items }
    }

    /// Why the ruleset could not be read, if it could not.
    pub fn unread(&self) -> Option<&str> {
        self.items.as_ref().err().map(String::as_str)
    }

    /// Who reaches TCP `port` over IPv4 (`v4`) and IPv6 (`v6`): the most open of the two.
    pub fn verdict(&self, port: u16, v4: bool, v6: bool) -> Verdict {
        let items = match &self.items {
            Ok(items) => items,
            Err(why) => return Verdict { reach: Reach::Exposed, limited: false, why: format!("{why}; taken as open") },
        };
        let families = [(v4, Family::V4), (v6, Family::V6)];
        let mut verdicts =
            families.iter().filter(|(on, _)| *on).map(|&(_, family)| self.family(items, Packet { port, family }));
        let first =
            verdicts.next().unwrap_or(Verdict { reach: Reach::Filtered, limited: false, why: "no family".into() });
        verdicts.fold(first, |a, b| if openness(&b.reach) > openness(&a.reach) { b } else { a })
    }

    fn family(&self, items: &[Value], pkt: Packet) -> Verdict {
        let wanted = match pkt.family {
            Family::V4 => "ip",
            Family::V6 => "ip6",
        };
        let bases = items.iter().filter_map(|i| i.get("chain")).filter(|c| {
            c["hook"] == "input" && c["type"] == "filter" && (c["family"] == "inet" || c["family"] == wanted)
        });
        let mut seen = Vec::new();
        let mut limited = false;
        let mut restricted: Option<(Vec<String>, Vec<String>)> = None;
        for chain in bases {
            let name = format!("{} {} {}", str_of(&chain["family"]), str_of(&chain["table"]), str_of(&chain["name"]));
            let mut walk = Walk::default();
            let end = self.walk(items, chain, pkt, &mut walk, 0);
            limited |= walk.limited;
            let dropped = match end {
                End::Accept => None,
                End::Drop(why) => Some(why),
                End::Fallthrough if chain["policy"] == "drop" => Some("policy drop".into()),
                End::Fallthrough => None,
            };
            match dropped {
                Some(why) if walk.sources.is_empty() => {
                    return Verdict { reach: Reach::Filtered, limited, why: format!("{name}: {why}") };
                }
                Some(_) => {
                    let (from, names) = restricted.get_or_insert_with(Default::default);
                    from.extend(walk.sources);
                    names.push(name.clone());
                }
                None => {}
            }
            seen.push(name);
        }
        match restricted {
            Some((from, names)) => Verdict { reach: Reach::Restricted(from), limited, why: names.join(", ") },
            None if seen.is_empty() => {
                Verdict { reach: Reach::Exposed, limited, why: "no nftables input chain filters it".into() }
            }
            None => Verdict { reach: Reach::Exposed, limited, why: format!("accepted by {}", seen.join(", ")) },
        }
    }

    fn walk(&self, items: &[Value], chain: &Value, pkt: Packet, walk: &mut Walk, depth: usize) -> End {
        let rules = items
            .iter()
            .filter_map(|i| i.get("rule"))
            .filter(|r| r["family"] == chain["family"] && r["table"] == chain["table"] && r["chain"] == chain["name"]);
        for rule in rules {
            let exprs = rule["expr"].as_array().map(Vec::as_slice).unwrap_or_default();
            let fit = exprs.iter().fold(Fit::Yes, |fit, e| and(fit, self.fits(e, rule, pkt)));
            if fit == Fit::No {
                continue;
            }
            // A limit passes some packets and stops others: never a sure
            // drop. On a rule that accepts or drops it limits connections;
            // on one that only logs, only the log.
            let partial = exprs.iter().any(|e| e.get("limit").is_some() || e.get("meter").is_some());
            let verdict = verdict_of(exprs, pkt);
            walk.limited |= partial && matches!(verdict, Some(Stmt::Accept | Stmt::Drop));
            let sure = fit == Fit::Yes && !partial;
            let end = match verdict {
                Some(Stmt::Accept) => End::Accept,
                Some(Stmt::Drop) => End::Drop(format!("rule {} drops", rule["handle"])),
                Some(Stmt::Jump(target)) if depth < JUMPS => {
                    let called = items
                        .iter()
                        .filter_map(|i| i.get("chain"))
                        .find(|c| c["family"] == rule["family"] && c["table"] == rule["table"] && c["name"] == target);
                    match called {
                        Some(called) => self.walk(items, called, pkt, walk, depth + 1),
                        None => End::Fallthrough,
                    }
                }
                Some(Stmt::Return) if sure => return End::Fallthrough,
                _ => End::Fallthrough,
            };
            match (end, fit) {
                (End::Accept, Fit::From(from)) => walk.sources.extend(from),
                (End::Accept, _) => return End::Accept,
                (End::Drop(why), _) if sure => return End::Drop(why),
                _ => {}
            }
        }
        End::Fallthrough
    }

    /// How one expression of `rule` applies to the packet (statements that
    /// match nothing, such as `counter`, apply to all).
    fn fits(&self, e: &Value, rule: &Value, pkt: Packet) -> Fit {
        if e.get("xt").is_some() {
            return Fit::Maybe; // an iptables match nft cannot show
        }
        let Some(m) = e.get("match") else { return Fit::Yes };
        let (op, left, right) = (str_of(&m["op"]), &m["left"], &m["right"]);
        let negated = op == "!=";
        if !matches!(op, "==" | "in" | "!=") {
            return Fit::Maybe;
        }
        let holds = |hit: Option<bool>| match hit {
            Some(hit) if hit != negated => Fit::Yes,
            Some(_) => Fit::No,
            None => Fit::Maybe,
        };
        let values = self.values(right, rule);
        let contains = |want: &dyn Fn(&Value) -> Option<bool>| -> Option<bool> {
            let found: Vec<Option<bool>> = values.iter().map(want).collect();
            if found.contains(&Some(true)) {
                Some(true)
            } else if found.iter().all(|f| *f == Some(false)) {
                Some(false)
            } else {
                None
            }
        };
        if let Some(p) = left.get("payload") {
            let (proto, field) = (str_of(&p["protocol"]), str_of(&p["field"]));
            return match (proto, field) {
                ("tcp" | "th", "dport") => holds(contains(&|v| port_in(v, pkt.port))),
                ("tcp" | "th", _) => Fit::Maybe,
                ("udp" | "udplite" | "sctp" | "dccp" | "icmp" | "icmpv6" | "igmp" | "esp" | "ah", _) => Fit::No,
                ("ip", _) if pkt.family == Family::V6 => Fit::No,
                ("ip6", _) if pkt.family == Family::V4 => Fit::No,
                ("ip", "protocol") | ("ip6", "nexthdr") => holds(contains(&|v| Some(v == "tcp" || v == 6))),
                ("ip" | "ip6", "saddr") if !negated => sources(&values),
                _ => Fit::Maybe,
            };
        }
        if let Some(key) = left.get("meta").map(|m| str_of(&m["key"])) {
            return match key {
                "l4proto" => holds(contains(&|v| Some(v == "tcp" || v == 6))),
                "nfproto" => {
                    let ours = if pkt.family == Family::V4 { "ipv4" } else { "ipv6" };
                    holds(contains(&|v| Some(v == ours)))
                }
                // The packet comes from elsewhere: never from loopback.
                "iifname" | "iif" => holds(contains(&|v| (v == "lo").then_some(false))),
                _ => Fit::Maybe,
            };
        }
        if left.get("ct").is_some_and(|ct| ct["key"] == "state") {
            return holds(contains(&|v| Some(v == "new")));
        }
        Fit::Maybe
    }

    /// The values a match compares with: a set literal's elements, a named
    /// set's (`@name`), or the one value.
    fn values(&self, right: &Value, rule: &Value) -> Vec<Value> {
        if let Some(name) = right.as_str().and_then(|s| s.strip_prefix('@')) {
            let named = self
                .items
                .as_deref()
                .unwrap_or_default()
                .iter()
                .filter_map(|i| i.get("set"))
                .find(|s| s["family"] == rule["family"] && s["table"] == rule["table"] && s["name"] == name);
            // An unknown set holds an unknown value.
            return named.and_then(|s| s["elem"].as_array().cloned()).unwrap_or_else(|| vec![Value::Null]);
        }
        match right.get("set").and_then(Value::as_array).or(right.as_array()) {
            Some(list) => list.clone(),
            None => vec![right.clone()],
        }
    }
}

enum Stmt<'a> {
    Accept,
    Drop,
    Jump(&'a str),
    Return,
}

/// The rule's verdict; a verdict map is resolved for the packet where its
/// key is the port or the connection state, else taken as accepting.
fn verdict_of(exprs: &[Value], pkt: Packet) -> Option<Stmt<'_>> {
    exprs.iter().rev().find_map(|e| {
        if e.get("accept").is_some() {
            Some(Stmt::Accept)
        } else if e.get("drop").is_some() || e.get("reject").is_some() {
            Some(Stmt::Drop)
        } else if let Some(t) = e.get("jump").or(e.get("goto")) {
            Some(Stmt::Jump(str_of(&t["target"])))
        } else if e.get("return").is_some() {
            Some(Stmt::Return)
        } else {
            e.get("vmap").and_then(|vmap| vmap_verdict(vmap, pkt))
        }
    })
}

fn vmap_verdict(vmap: &Value, pkt: Packet) -> Option<Stmt<'_>> {
    let key = &vmap["key"];
    let is_port =
        key.get("payload").is_some_and(|p| p["field"] == "dport" && matches!(str_of(&p["protocol"]), "tcp" | "th"));
    let is_state = key.get("ct").is_some_and(|c| c["key"] == "state");
    let pairs = vmap["data"]["set"].as_array().map(Vec::as_slice).unwrap_or_default();
    let hit = pairs.iter().find(|pair| {
        let k = &pair[0];
        (is_port && port_in(k, pkt.port) == Some(true)) || (is_state && k == "new")
    });
    match hit.map(|pair| &pair[1]) {
        Some(v) if v.get("drop").is_some() || v.get("reject").is_some() => Some(Stmt::Drop),
        Some(v) if v.get("accept").is_some() => Some(Stmt::Accept),
        Some(v) => v.get("jump").or(v.get("goto")).map(|t| Stmt::Jump(str_of(&t["target"]))),
        // No element for this packet: the rule does nothing to it.
        None if is_port || is_state => None,
        None => pairs.iter().any(|pair| pair[1].get("accept").is_some()).then_some(Stmt::Accept),
    }
}

fn port_in(v: &Value, port: u16) -> Option<bool> {
    if let Some(n) = v.as_u64() {
        return Some(n == u64::from(port));
    }
    if let Some([lo, hi]) = v.get("range").and_then(Value::as_array).map(Vec::as_slice) {
        return Some((lo.as_u64()?..=hi.as_u64()?).contains(&u64::from(port)));
    }
    v.as_str()?.parse::<u16>().ok().map(|n| n == port)
}

/// A source match: the addresses it names, or everyone for `/0`.
fn sources(values: &[Value]) -> Fit {
    let shown: Option<Vec<String>> = values
        .iter()
        .map(|v| {
            if let Some(a) = v.as_str() {
                return Some(a.to_owned());
            }
            if let Some(p) = v.get("prefix") {
                return Some(format!("{}/{}", str_of(&p["addr"]), p["len"]));
            }
            let [lo, hi] = v.get("range")?.as_array()?.as_slice() else { return None };
            Some(format!("{}-{}", str_of(lo), str_of(hi)))
        })
        .collect();
    match shown {
        Some(all) if all.iter().any(|s| s.ends_with("/0")) => Fit::Yes,
        Some(all) => Fit::From(all),
        None => Fit::Maybe,
    }
}

fn and(a: Fit, b: Fit) -> Fit {
    match (a, b) {
        (Fit::No, _) | (_, Fit::No) => Fit::No,
        (Fit::Maybe, _) | (_, Fit::Maybe) => Fit::Maybe,
        (Fit::From(mut x), Fit::From(y)) => {
            x.extend(y);
            Fit::From(x)
        }
        (Fit::From(x), Fit::Yes) | (Fit::Yes, Fit::From(x)) => Fit::From(x),
        (Fit::Yes, Fit::Yes) => Fit::Yes,
    }
}

fn openness(r: &Reach) -> u8 {
    match r {
        Reach::Filtered => 0,
        Reach::Restricted(_) => 1,
        Reach::Exposed => 2,
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from nft 1.0.6 (`nft -j list ruleset`) after loading:
    ///
    /// ```text
    /// table inet filter {
    ///   set admins { type ipv4_addr; flags interval; elements = { 192.168.1.0/24, 10.1.2.3 } }
    ///   set webports { type inet_service; elements = { 80, 443 } }
    ///   chain input {
    ///     type filter hook input priority 0; policy drop;
    ///     ct state established,related accept
    ///     ct state invalid drop
    ///     iifname "lo" accept
    ///     tcp dport 22 ct state new limit rate 10/minute accept
    ///     tcp dport @webports accept
    ///     tcp dport { 8080, 9000-9100 } accept
    ///     ip saddr @admins tcp dport 5432 accept
    ///     ip saddr 10.9.0.0/16 tcp dport 3306 accept
    ///     tcp dport 3389 drop
    ///     meta l4proto tcp tcp dport 6379 jump redis
    ///     counter
    ///   }
    ///   chain redis { ip saddr 127.0.0.1 accept; reject }
    /// }
    /// table ip other {
    ///   chain in2 {
    ///     type filter hook input priority 10; policy accept;
    ///     tcp dport 8080 drop
    ///     tcp dport 2222 meter flood size 128000 { ip saddr timeout 10s limit rate over 10/second } drop
    ///   }
    /// }
    /// ```
    const MIXED: &str = include_str!("testdata/nft-mixed.json");

    fn v4(fw: &Firewall, port: u16) -> Verdict {
        fw.verdict(port, true, false)
    }

    #[test]
    fn ports_are_judged_rule_by_rule_across_chains() {
        let fw = Firewall::from_json(MIXED);
        assert_eq!(fw.unread(), None);
        let ssh = v4(&fw, 22);
        assert_eq!((ssh.reach.clone(), ssh.limited), (Reach::Exposed, true), "{ssh}");
        assert_eq!(v4(&fw, 443).reach, Reach::Exposed);
        assert_eq!(v4(&fw, 9050).reach, Reach::Exposed);
        // Accepted by the inet table, dropped by the ip table's chain.
        assert_eq!(v4(&fw, 8080).reach, Reach::Filtered);
        // Over IPv6 the ip table does not see it.
        assert_eq!(fw.verdict(8080, false, true).reach, Reach::Exposed);
        assert_eq!(v4(&fw, 5432).reach, Reach::Restricted(vec!["10.1.2.3".into(), "192.168.1.0/24".into()]));
        assert_eq!(v4(&fw, 3306).reach, Reach::Restricted(vec!["10.9.0.0/16".into()]));
        // An IPv4 source rule does not open the port to IPv6.
        assert_eq!(fw.verdict(3306, false, true).reach, Reach::Filtered);
        let rdp = v4(&fw, 3389);
        assert_eq!(rdp.reach, Reach::Filtered);
        assert_eq!(rdp.to_string(), "firewall: filtered (inet filter input: rule 14 drops)");
        // Jumped to a chain that accepts loopback only, then rejects.
        assert_eq!(v4(&fw, 6379).reach, Reach::Restricted(vec!["127.0.0.1".into()]));
        // Nothing accepts it: the policy drops it.
        assert_eq!(v4(&fw, 445).to_string(), "firewall: filtered (inet filter input: policy drop)");
        // The ip table's meter drops only over a rate; inet's policy drops it all.
        assert_eq!(v4(&fw, 2222).reach, Reach::Filtered);
        // Dual stack: the most open family counts.
        assert_eq!(fw.verdict(8080, true, true).reach, Reach::Exposed);
    }

    #[test]
    fn no_ruleset_or_no_input_chain_means_exposed() {
        let empty = Firewall::from_json(
            r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}]}"#,
        );
        assert_eq!(v4(&empty, 22).to_string(), "firewall: exposed (no nftables input chain filters it)");
        let broken = Firewall::from_json("Error: oops");
        assert!(broken.unread().is_some());
        assert_eq!(v4(&broken, 22).reach, Reach::Exposed);
    }

    #[test]
    fn unreadable_rules_never_make_a_port_look_filtered() {
        let json = r#"{"nftables": [
          {"chain": {"family": "inet", "table": "t", "name": "in", "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
          {"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 2, "expr": [
            {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}}, {"accept": null}]}}
        ]}"#;
        // Accepted on eth0: reachable through it.
        assert_eq!(v4(&Firewall::from_json(json), 22).reach, Reach::Exposed);
        let json = json
            .replace("{\"accept\": null}", "{\"drop\": null}")
            .replace("\"policy\": \"drop\"", "\"policy\": \"accept\"");
        // Dropped only on eth0: other interfaces still reach it.
        assert_eq!(v4(&Firewall::from_json(&json), 22).reach, Reach::Exposed);
    }

    #[test]
    fn a_limited_log_is_no_rate_limit() {
        let json = r#"{"nftables": [
          {"chain": {"family": "inet", "table": "t", "name": "in", "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
          {"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 2, "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},
            {"limit": {"rate": 1, "burst": 5, "per": "minute"}}, {"log": {"prefix": "ssh "}}]}}
        ]}"#;
        let v = v4(&Firewall::from_json(json), 22);
        assert_eq!((v.reach, v.limited), (Reach::Exposed, false));
    }

    #[test]
    fn verdict_maps_are_resolved_for_the_port_and_state() {
        let json = r#"{"nftables": [
          {"chain": {"family": "inet", "table": "t", "name": "in", "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
          {"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 2, "expr": [
            {"vmap": {"key": {"ct": {"key": "state"}}, "data": {"set": [["established", {"accept": null}], ["invalid", {"drop": null}]]}}}]}},
          {"rule": {"family": "inet", "table": "t", "chain": "in", "handle": 3, "expr": [
            {"vmap": {"key": {"payload": {"protocol": "tcp", "field": "dport"}}, "data": {"set": [[22, {"accept": null}], [3389, {"drop": null}]]}}}]}}
        ]}"#;
        let fw = Firewall::from_json(json);
        assert_eq!(v4(&fw, 22).reach, Reach::Exposed);
        assert_eq!(v4(&fw, 3389).reach, Reach::Filtered);
        assert_eq!(v4(&fw, 80).reach, Reach::Filtered);
    }
}
