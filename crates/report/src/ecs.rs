//! Timeline export in the Elastic Common Schema: one JSON document a line,
//! nested objects, file and process events as `event`, the detection as `alert`.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use mamori_event::Client;
use serde_json::{json, Map, Value};

use crate::time::iso_utc;
use crate::timeline::{
    command_line, detected_ns, entries, entropy, extension, file_name, kind_name, reasons_line, verdict_message, Entry,
    What,
};
use crate::{Case, ReportError};

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "8.11.0";

/// Writes the case's timeline, then the detection, one JSON document a line.
pub fn ecs(case: &Case, out: &mut impl Write) -> Result<(), ReportError> {
    for entry in entries(case) {
        write_line(out, &event_doc(case, &entry))?;
    }
    write_line(out, &alert_doc(case))
}

fn write_line(out: &mut impl Write, doc: &Value) -> Result<(), ReportError> {
    serde_json::to_writer(&mut *out, doc)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn common(case: &Case, time_ns: u64) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("@timestamp".into(), iso_utc(time_ns).into());
    doc.insert("ecs".into(), json!({ "version": ECS_VERSION }));
    doc.insert(
        "host".into(),
        json!({
            "hostname": case.host.hostname,
            "os": { "kernel": case.host.kernel, "full": case.host.os },
        }),
    );
    doc.insert("observer".into(), json!({ "product": "mamori", "type": "edr" }));
    doc
}

/// ECS `event.category` and `event.type` for an entry.
fn categorise(e: &Entry) -> (&'static str, &'static str) {
    match e.what {
        What::ProcSeen => ("process", "info"),
        What::Open(_) | What::VaultTouched => ("file", "access"),
        What::Written | What::Renamed | What::CanaryTouched => ("file", "change"),
        What::Created => ("file", "creation"),
        What::Deleted => ("file", "deletion"),
        What::Trusted => ("configuration", "creation"),
        What::Overflow => ("host", "info"),
    }
}

fn event_doc(case: &Case, e: &Entry) -> Value {
    let mut doc = common(case, e.time_ns);
    let (category, kind) = categorise(e);
    doc.insert(
        "event".into(),
        json!({
            "kind": "event",
            "category": [category],
            "type": [kind],
            "action": e.what.action(),
            "module": "mamori",
            "dataset": "mamori.timeline",
        }),
    );
    if let Some(path) = e.current_path().filter(|_| category == "file") {
        let mut file = Map::new();
        file.insert("path".into(), path.into());
        file.insert("name".into(), file_name(path).into());
        if let Some(ext) = extension(path).filter(|_| !e.dir) {
            file.insert("extension".into(), ext.into());
        }
        file.insert("type".into(), if e.dir { "dir" } else { "file" }.into());
        if let Some(size) = e.after.or(e.before).map(|f| f.size) {
            file.insert("size".into(), size.into());
        }
        doc.insert("file".into(), file.into());
    }
    if let Some(pid) = e.pid {
        let mut process = Map::new();
        process.insert("pid".into(), pid.into());
        if let Some(p) = e.proc {
            process.insert("executable".into(), p.exe.clone().into());
            process.insert("name".into(), file_name(&p.exe).into());
            process.insert("command_line".into(), command_line(&p.cmdline).into());
            process.insert("args".into(), p.cmdline.clone().into());
            if let Some(parent) = p.parent {
                process.insert("parent".into(), json!({ "pid": parent.pid }));
            }
            doc.insert("user".into(), json!({ "id": p.uid.to_string() }));
        }
        doc.insert("process".into(), process.into());
        if let Some(client) = event_client(case, e) {
            add_client(&mut doc, &client);
        }
    }
    doc.insert("mamori".into(), mamori_fields(case, e));
    Value::Object(doc)
}

/// What ECS has no field for: content facts, the old name of a rename, lost events.
fn mamori_fields(case: &Case, e: &Entry) -> Value {
    let mut m = Map::new();
    m.insert("incident".into(), case.incident.id.clone().into());
    let facts = |f: &mamori_event::ContentFacts| json!({ "size": f.size, "entropy": entropy(f.entropy), "kind": kind_name(f.kind) });
    if let Some(before) = e.before {
        m.insert("before".into(), facts(before));
    }
    if let Some(after) = e.after {
        m.insert("after".into(), facts(after));
    }
    match e.what {
        What::Renamed => {
            m.insert("renamed_from".into(), e.path.unwrap_or_default().into());
        }
        What::Trusted => {
            m.insert("trust".into(), json!({ "exe": e.to, "dir": e.path }));
        }
        _ => {}
    }
    if let Some(lost) = e.lost {
        m.insert("lost".into(), lost.into());
    }
    Value::Object(m)
}

fn alert_doc(case: &Case) -> Value {
    let inc = &case.incident;
    let mut doc = common(case, detected_ns(case));
    doc.insert("message".into(), verdict_message(case).into());
    doc.insert(
        "event".into(),
        json!({
            "kind": "alert",
            "category": ["intrusion_detection"],
            "type": ["info"],
            "action": "ransomware-detected",
            "module": "mamori",
            "dataset": "mamori.incident",
            "id": inc.id,
            "risk_score": inc.score,
            "reason": reasons_line(case),
            "outcome": if inc.action == mamori_store::Action::Failed { "failure" } else { "success" },
        }),
    );
    let mut process = json!({
        "pid": inc.actor.pid,
        "executable": inc.actor.exe,
        "name": file_name(&inc.actor.exe),
        "command_line": command_line(&inc.actor.cmdline),
        "args": inc.actor.cmdline,
    });
    if let Some(sha) = &case.exe_sha256 {
        process["hash"] = json!({ "sha256": sha });
    }
    doc.insert("process".into(), process);
    doc.insert("user".into(), json!({ "id": inc.actor.uid.to_string() }));
    if let Some(cut) = &inc.client {
        add_client(&mut doc, &cut.client);
    }
    let mut threat = json!({
        "framework": "MITRE ATT&CK",
        "technique": { "id": ["T1486"], "name": ["Data Encrypted for Impact"] },
        "tactic": { "id": ["TA0040"], "name": ["Impact"] },
    });
    if let Some(family) = &case.family {
        threat["software"] = json!({ "name": family.name, "type": "Malware" });
    }
    doc.insert("threat".into(), threat);
    let client = inc.client.as_ref().map(|c| &c.client);
    let mut ips: Vec<String> =
        client.and_then(|c| c.address.parse::<IpAddr>().ok()).map(|ip| ip.to_string()).into_iter().collect();
    for ip in case.remote_addrs.iter().filter_map(|a| ip_of(a)).map(|ip| ip.to_string()) {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    let mut hosts = vec![case.host.hostname.clone()];
    hosts.extend(client.map(|c| c.machine.clone()).filter(|m| !m.is_empty()));
    let mut related = json!({ "hosts": hosts });
    if !ips.is_empty() {
        related["ip"] = ips.into();
    }
    if let Some(user) = client.map(|c| &c.user).filter(|u| !u.is_empty()) {
        related["user"] = json!([user]);
    }
    if let Some(sha) = &case.exe_sha256 {
        related["hash"] = json!([sha]);
    }
    doc.insert("related".into(), related);
    let mut mamori = json!({
        "incident": inc.id,
        "action": inc.action.as_str(),
        "pids": inc.pids,
        "files": case.files.len(),
    });
    if let Some(us) = inc.stop_latency_us {
        mamori["stop_latency_us"] = us.into();
    }
    doc.insert("mamori".into(), mamori);
    Value::Object(doc)
}

/// The remote client an event came from, when the incident's actor was one:
/// who it is from the incident (the server's session filled in the machine
/// and account), the port from the event's own connection, since a client
/// that reconnected did so from another port.
fn event_client(case: &Case, e: &Entry) -> Option<Client> {
    let cut = &case.incident.client.as_ref()?.client;
    let own = e.proc.and_then(|p| p.client.as_ref());
    match own {
        Some(own) if !own.same_client(cut) => Some(own.clone()),
        Some(own) => Some(Client { port: if own.port != 0 { own.port } else { cut.port }, ..cut.clone() }),
        None => Some(cut.clone()),
    }
}

/// ECS `source` for the client's side of the connection and `user.name` for
/// the account it used; `host` stays this server, where the events happened.
fn add_client(doc: &mut Map<String, Value>, client: &Client) {
    let mut source = Map::new();
    if let Ok(ip) = client.address.parse::<IpAddr>() {
        source.insert("ip".into(), ip.to_string().into());
    }
    if client.port != 0 {
        source.insert("port".into(), client.port.into());
    }
    if !client.machine.is_empty() {
        source.insert("domain".into(), client.machine.clone().into());
    }
    if !source.is_empty() {
        doc.insert("source".into(), source.into());
    }
    if !client.user.is_empty() {
        let user = doc.entry("user").or_insert_with(|| json!({}));
        user["name"] = client.user.clone().into();
    }
}

/// The address part of `ip`, `ip:port` or `[v6]:port`; anything else is not an IP.
fn ip_of(addr: &str) -> Option<IpAddr> {
    addr.parse::<IpAddr>().ok().or_else(|| addr.parse::<SocketAddr>().ok().map(|s| s.ip()))
}
