//! The ECS outputs: the lines the file output writes, read back and checked
//! field by field against ECS's types; rotation; the `_bulk` request an
//! Elasticsearch receives and how its answers count; and the Wazuh rules
//! matched against the very documents the file output writes.

mod http_support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mamori_alert::config::{EcsFileConfig, ElasticConfig};
use mamori_alert::{outputs, Alert, AlertsConfig, Output, What};
use serde_json::{json, Value};

use http_support::{every_kind, incident_alert, Recorder, Reply, EXE, FIRST_FILE};

// ------------------------------------------------------------ ECS's types

#[derive(Clone, Copy, Debug)]
enum Type {
    Keyword,
    Date,
    Long,
    Float,
    Ip,
}

impl Type {
    fn accepts(self, v: &Value) -> bool {
        match self {
            Type::Keyword => v.is_string(),
            Type::Date => v.as_str().is_some_and(|s| s.parse::<jiff::Timestamp>().is_ok()),
            Type::Long => v.is_i64() || v.is_u64(),
            Type::Float => v.is_number(),
            Type::Ip => v.as_str().is_some_and(|s| s.parse::<IpAddr>().is_ok()),
        }
    }
}

/// Every field the documents use, with its ECS type (as ECS 8.11 defines
/// it; mamori's own under `mamori.`, typed as an index mapping would).
const FIELDS: &[(&str, Type)] = &[
    ("@timestamp", Type::Date),
    ("ecs.version", Type::Keyword),
    ("message", Type::Keyword),
    ("log.level", Type::Keyword),
    ("event.kind", Type::Keyword),
    ("event.category", Type::Keyword),
    ("event.type", Type::Keyword),
    ("event.action", Type::Keyword),
    ("event.id", Type::Keyword),
    ("event.severity", Type::Long),
    ("event.risk_score", Type::Float),
    ("event.module", Type::Keyword),
    ("event.dataset", Type::Keyword),
    ("event.outcome", Type::Keyword),
    ("event.reason", Type::Keyword),
    ("host.name", Type::Keyword),
    ("host.hostname", Type::Keyword),
    ("observer.product", Type::Keyword),
    ("observer.vendor", Type::Keyword),
    ("observer.type", Type::Keyword),
    ("observer.version", Type::Keyword),
    ("process.pid", Type::Long),
    ("process.executable", Type::Keyword),
    ("process.name", Type::Keyword),
    ("process.command_line", Type::Keyword),
    ("process.args", Type::Keyword),
    ("user.id", Type::Keyword),
    ("user.name", Type::Keyword),
    ("source.ip", Type::Ip),
    ("source.port", Type::Long),
    ("source.domain", Type::Keyword),
    ("file.path", Type::Keyword),
    ("file.name", Type::Keyword),
    ("threat.framework", Type::Keyword),
    ("threat.technique.id", Type::Keyword),
    ("threat.technique.name", Type::Keyword),
    ("threat.tactic.id", Type::Keyword),
    ("threat.tactic.name", Type::Keyword),
    ("rule.name", Type::Keyword),
    ("related.ip", Type::Ip),
    ("related.user", Type::Keyword),
    ("related.hosts", Type::Keyword),
    ("mamori.incident", Type::Keyword),
    ("mamori.action", Type::Keyword),
    ("mamori.pids", Type::Long),
    ("mamori.files", Type::Long),
    ("mamori.paths", Type::Keyword),
    ("mamori.restore_command", Type::Keyword),
    ("mamori.stop_latency_us", Type::Long),
    ("mamori.restored", Type::Long),
    ("mamori.failed", Type::Long),
    ("mamori.cause", Type::Keyword),
    ("mamori.finding.check", Type::Keyword),
    ("mamori.finding.target", Type::Keyword),
    ("mamori.finding.detail", Type::Keyword),
    ("mamori.finding.fix", Type::Keyword),
];

/// Leaf fields in dotted form; an array is one field with several values.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Vec<Value>>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        Value::Array(items) => {
            assert!(items.iter().all(|i| !i.is_object() && !i.is_array()), "{prefix}: arrays of objects");
            out.insert(prefix.to_string(), items.clone());
        }
        other => {
            out.insert(prefix.to_string(), vec![other.clone()]);
        }
    }
}

/// A document's fields, each checked to be in the table with its type.
fn known_fields(doc: &Value) -> BTreeMap<String, Vec<Value>> {
    let types: BTreeMap<&str, Type> = FIELDS.iter().copied().collect();
    let mut fields = BTreeMap::new();
    flatten("", doc, &mut fields);
    for (name, values) in &fields {
        let ty = types.get(name.as_str()).unwrap_or_else(|| panic!("field {name} not in the table: {doc}"));
        for v in values {
            assert!(ty.accepts(v), "{name} = {v} is not a {ty:?}");
        }
    }
    fields
}

/// ECS's allowed `event.type` values per `event.category` (ECS 8.11), for
/// the categories mamori uses.
fn allowed_types(category: &str) -> &'static [&'static str] {
    match category {
        "malware" => &["info"],
        "intrusion_detection" => &["allowed", "denied", "info"],
        "file" => &["access", "change", "creation", "deletion", "info"],
        "host" => &["access", "change", "end", "info", "start"],
        "configuration" => &["access", "change", "creation", "deletion", "info"],
        other => panic!("category {other} not used by mamori"),
    }
}

fn check_document(doc: &Value, alert: &Alert) {
    let fields = known_fields(doc);
    for required in [
        "@timestamp",
        "ecs.version",
        "message",
        "event.kind",
        "event.category",
        "event.type",
        "event.action",
        "event.id",
        "event.severity",
        "event.module",
        "event.dataset",
        "host.name",
        "host.hostname",
        "rule.name",
    ] {
        assert!(fields.contains_key(required), "{required} missing: {doc}");
    }
    assert_eq!(doc["ecs"]["version"], mamori_report::ECS_VERSION);
    assert_eq!(doc["event"]["id"], alert.id.as_str());
    assert_eq!(doc["event"]["action"], alert.kind());
    assert_eq!(doc["event"]["module"], "mamori");
    assert_eq!(doc["event"]["dataset"], "mamori.alerts");
    assert_eq!(doc["log"]["level"], alert.severity().as_str());
    assert_eq!(doc["@timestamp"], alert.time_rfc3339().as_str());
    let kind = doc["event"]["kind"].as_str().unwrap();
    assert!(["alert", "event"].contains(&kind), "{kind}");
    let categories = &fields["event.category"];
    let types = &fields["event.type"];
    // Every type is allowed for at least one of the categories given.
    for t in types {
        let t = t.as_str().unwrap();
        assert!(categories.iter().any(|c| allowed_types(c.as_str().unwrap()).contains(&t)), "{categories:?}/{t}");
    }
    let message = doc["message"].as_str().unwrap();
    assert!(message.is_ascii() || message.chars().all(|c| c as u32 >= 0x20 || c == '\n'));
}

// ---------------------------------------------------------------- the file

fn file_output(path: &Path, max_mib: u64) -> Box<dyn Output> {
    let config =
        AlertsConfig { ecs: Some(EcsFileConfig { path: path.to_owned(), max_mib }), ..AlertsConfig::default() };
    outputs(&config).expect("a valid ecs config").pop().unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'), "every line ends with a newline");
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}"))).collect()
}

/// The documents the file output writes for every kind of event.
fn written_documents() -> Vec<(Alert, Value)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log/mamori/alerts.json");
    let mut out = file_output(&path, 100);
    let alerts = every_kind();
    for alert in &alerts {
        out.send(alert).expect("written");
    }
    let docs = lines(&path);
    assert_eq!(docs.len(), alerts.len());
    alerts.into_iter().zip(docs).collect()
}

#[test]
fn every_line_uses_known_fields_with_their_ecs_types() {
    for (alert, doc) in written_documents() {
        check_document(&doc, &alert);
    }
}

#[test]
fn an_incident_names_the_process_the_client_the_files_and_the_technique() {
    let (alert, doc) = written_documents().into_iter().next().unwrap();
    assert!(matches!(alert.what, What::Incident { .. }));
    assert_eq!(doc["event"]["kind"], "alert");
    assert_eq!(doc["event"]["category"], json!(["malware", "intrusion_detection"]));
    assert_eq!(doc["event"]["severity"], 99);
    assert_eq!(doc["event"]["outcome"], "success");
    assert_eq!(doc["threat"]["framework"], "MITRE ATT&CK");
    assert_eq!(doc["threat"]["technique"]["id"], "T1486");
    assert_eq!(doc["threat"]["technique"]["name"], "Data Encrypted for Impact");
    assert_eq!(doc["threat"]["tactic"]["id"], "TA0040");
    assert_eq!(doc["threat"]["tactic"]["name"], "Impact");
    assert_eq!(doc["process"]["pid"], 4242);
    assert_eq!(doc["process"]["executable"], EXE);
    assert_eq!(doc["process"]["name"], "locker");
    assert_eq!(doc["process"]["command_line"], format!("{EXE} --path /srv/share 'a b'"));
    assert_eq!(doc["process"]["args"][3], "a b");
    assert_eq!(doc["user"]["id"], "1001");
    assert_eq!(doc["user"]["name"], "tanaka");
    assert_eq!(doc["source"]["ip"], "192.0.2.7");
    assert_eq!(doc["source"]["port"], 50123);
    assert_eq!(doc["source"]["domain"], "PC-TANAKA");
    assert_eq!(doc["related"]["ip"], json!(["192.0.2.7"]));
    assert_eq!(doc["related"]["user"], json!(["tanaka"]));
    assert_eq!(doc["related"]["hosts"], json!([alert.host, "PC-TANAKA"]));
    assert_eq!(doc["file"]["path"], FIRST_FILE);
    assert_eq!(doc["file"]["name"], "請求書 2024.xlsx");
    assert_eq!(doc["mamori"]["files"], 3);
    assert_eq!(doc["mamori"]["paths"], json!([FIRST_FILE, "/srv/share/b.docx", "/srv/share/<c>&d.txt"]));
    assert_eq!(doc["mamori"]["incident"], "INC-0042");
    assert_eq!(doc["mamori"]["restore_command"], "mamori restore INC-0042");
    assert_eq!(doc["mamori"]["pids"], json!([4242, 4243]));
    assert!(doc["message"].as_str().unwrap().starts_with("[mamori] "), "English words: {}", doc["message"]);
    assert!(doc["event"]["reason"].as_str().unwrap().contains("ciphertext"));
}

#[test]
fn the_other_kinds_say_what_they_are() {
    let docs = written_documents();
    let by_action = |action: &'static str| docs.iter().filter(move |(_, d)| d["event"]["action"] == action);
    let restores: Vec<_> = by_action("restore-finished").map(|(_, d)| d).collect();
    assert_eq!(restores[0]["event"]["kind"], "event");
    assert_eq!(restores[0]["event"]["outcome"], "success");
    assert_eq!(restores[1]["event"]["outcome"], "failure");
    assert_eq!(restores[1]["mamori"]["failed"], 1);
    let causes: Vec<&str> =
        by_action("protection-degraded").map(|(_, d)| d["mamori"]["cause"].as_str().unwrap()).collect();
    assert_eq!(causes, ["agent_stopping", "vault_skipped", "queue_overflow", "folder_gone"]);
    let severities: Vec<u64> =
        by_action("audit-finding").map(|(_, d)| d["event"]["severity"].as_u64().unwrap()).collect();
    assert_eq!(severities, [0, 21, 47, 73, 99]);
    let (_, finding) = by_action("audit-finding").next().unwrap();
    assert_eq!(finding["mamori"]["finding"]["check"], "smb-guest-write");
    assert_eq!(finding["rule"]["name"], "smb-guest-write");
    let (_, test) = by_action("test").next().unwrap();
    assert_eq!(test["event"]["kind"], "event");
}

#[test]
fn the_file_and_its_directory_are_made_private_enough() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mamori/alerts.json");
    let mut out = file_output(&path, 100);
    assert!(out.probe().unwrap().contains("can be appended to"));
    out.send(&Alert::new(What::Test)).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o640);
    assert_eq!(mode(path.parent().unwrap()), 0o750);
    assert_eq!(out.target(), path.display().to_string());
}

#[test]
fn a_link_in_the_files_place_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "keep\n").unwrap();
    let path = dir.path().join("alerts.json");
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    let mut out = file_output(&path, 100);
    assert!(out.send(&Alert::new(What::Test)).is_err());
    assert!(out.probe().is_err());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
}

#[test]
fn a_fifo_in_place_of_the_file_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.json");
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path the test owns.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mut out = file_output(&path, 100);
    // Opened to write without a reader, a FIFO would wait forever.
    let err = out.send(&Alert::new(What::Test)).unwrap_err().to_string();
    assert!(err.contains("alerts.json"), "{err}");
}

#[test]
fn the_file_rotates_before_it_would_pass_the_limit() {
    const MIB: usize = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.json");
    let rotated = dir.path().join("alerts.json.1");
    // A file 64 KiB short of the limit: a small event still fits.
    let pad = |len: usize| format!("{{\"pad\":\"{}\"}}\n", "x".repeat(len - 11));
    std::fs::write(&path, pad(MIB - 64 * 1024)).unwrap();
    let mut out = file_output(&path, 1);
    out.send(&Alert::new(What::Test)).unwrap();
    assert!(!rotated.exists(), "a line that fits does not rotate");
    let before = std::fs::metadata(&path).unwrap().len();
    assert_eq!(lines(&path).len(), 2);

    // 100 bytes short: the next event would pass the limit.
    std::fs::write(&path, pad(MIB - 100)).unwrap();
    let alert = incident_alert();
    out.send(&alert).unwrap();
    let old = lines(&rotated);
    assert_eq!(old.len(), 1, "the old generation is kept whole");
    assert!(old[0]["pad"].is_string());
    let new = lines(&path);
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["event"]["id"], alert.id.as_str());
    assert!(std::fs::metadata(&rotated).unwrap().len() <= MIB as u64);
    assert!(before <= MIB as u64);

    // Once more: the older generation goes, one `.1` only.
    std::fs::write(&path, pad(MIB - 100)).unwrap();
    out.send(&alert).unwrap();
    assert!(lines(&rotated)[0]["pad"].is_string());
    assert!(!dir.path().join("alerts.json.2").exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn a_huge_incident_stays_a_short_line() {
    let mut alert = incident_alert();
    if let What::Incident { incident, .. } = &mut alert.what {
        let long = format!("/srv/share/{}", "長い名前".repeat(300));
        incident.files = (0..20_000)
            .map(|i| mamori_event::FileTouch { path: format!("{long}/{i}"), op: mamori_event::FileOp::Write, to: None })
            .collect();
        incident.actor.cmdline = (0..10_000).map(|i| format!("--arg-{i}-{}", "y".repeat(500))).collect();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.json");
    file_output(&path, 100).send(&alert).unwrap();
    let len = std::fs::metadata(&path).unwrap().len();
    // Wazuh's log collector cuts lines at 64 KiB; a cut line is no alert.
    assert!(len < 48 * 1024, "{len} bytes");
    eprintln!("the longest incident line: {len} bytes");
    let doc = &lines(&path)[0];
    check_document(doc, &alert);
    assert_eq!(doc["mamori"]["files"], 20_000, "the count stays exact");
    assert!(doc["mamori"]["paths"].as_array().unwrap().len() <= 50);
}

#[test]
fn a_relative_path_is_refused() {
    let config = AlertsConfig {
        ecs: Some(EcsFileConfig { path: PathBuf::from("alerts.json"), max_mib: 1 }),
        ..AlertsConfig::default()
    };
    let err = outputs(&config).err().expect("refused").to_string();
    assert!(err.contains("ecs.path"), "{err}");
}

// ----------------------------------------------------------- Elasticsearch

fn bulk_output(c: ElasticConfig) -> Box<dyn Output> {
    let config = AlertsConfig { elasticsearch: Some(c), ..AlertsConfig::default() };
    outputs(&config).expect("a valid elasticsearch config").pop().unwrap()
}

fn created(status: u16, id: &str) -> Value {
    json!({ "took": 3, "errors": status >= 300, "items": [ { "create": {
        "_index": "mamori-alerts", "_id": id, "status": status,
        "error": if status >= 300 { json!({ "type": if status == 409 { "version_conflict_engine_exception" } else { "document_parsing_exception" }, "reason": "[x]: failed" }) } else { Value::Null },
    } } ] })
}

#[test]
fn bulk_posts_ndjson_create_with_the_events_id_and_an_api_key() {
    let server = Recorder::start(|r| {
        let id = r.body.split(|&b| b == b'\n').next().map(|l| serde_json::from_slice::<Value>(l).unwrap());
        let id = id.unwrap()["create"]["_id"].as_str().unwrap_or_default().to_owned();
        Reply::json(200, created(201, &id))
    });
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("api-key");
    std::fs::write(&key, "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==\n").unwrap();
    let mut out = bulk_output(ElasticConfig {
        url: server.url("/"),
        index: "mamori-alerts".into(),
        api_key_file: Some(key),
        timeout_seconds: 3,
        ..ElasticConfig::default()
    });
    let alerts = every_kind();
    for alert in &alerts {
        out.send(alert).expect("indexed");
    }
    let requests = server.requests();
    assert_eq!(requests.len(), alerts.len());
    for (r, alert) in requests.iter().zip(&alerts) {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/_bulk");
        assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(
            r.header("authorization"),
            Some("ApiKey VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==")
        );
        let text = std::str::from_utf8(&r.body).unwrap();
        assert!(text.ends_with('\n'), "NDJSON ends with a newline");
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "the action, then the document");
        assert_eq!(lines[0], json!({ "create": { "_index": "mamori-alerts", "_id": alert.id } }));
        check_document(&lines[1], alert);
    }
    assert_eq!(out.target(), format!("http://{}/ index mamori-alerts", server.addr));
}

#[test]
fn bulk_sends_basic_credentials_from_the_password_file() {
    let server = Recorder::start(|_| Reply::json(200, created(201, "x")));
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret:with-colon\n").unwrap();
    let mut out = bulk_output(ElasticConfig {
        url: server.url("/es-prefix"),
        username: Some("mamori".into()),
        password_file: Some(pw),
        timeout_seconds: 3,
        ..ElasticConfig::default()
    });
    out.send(&Alert::new(What::Test)).unwrap();
    let r = &server.requests()[0];
    assert_eq!(r.path, "/es-prefix/_bulk");
    // base64("mamori:s3cret:with-colon")
    assert_eq!(r.header("authorization"), Some("Basic bWFtb3JpOnMzY3JldDp3aXRoLWNvbG9u"));
}

#[test]
fn bulk_item_errors_fail_but_an_existing_id_is_delivered() {
    let server = Recorder::start(|r| {
        let status = if r.body.windows(4).any(|w| w == b"test") { 400 } else { 409 };
        Reply::json(200, created(status, "x"))
    });
    let mut out = bulk_output(ElasticConfig { url: server.url(""), timeout_seconds: 3, ..ElasticConfig::default() });
    // 409 on `create`: a retry of an event the cluster already has.
    out.send(&incident_alert()).expect("409 on create counts as delivered");
    let err = out.send(&Alert::new(What::Test)).expect_err("a rejected document is not delivered").to_string();
    assert!(err.contains("400") && err.contains("document_parsing_exception"), "{err}");
}

#[test]
fn bulk_http_errors_and_garbage_fail() {
    for (reply, expect) in [
        (Reply::json(401, json!({ "error": { "type": "security_exception" } })), "HTTP 401"),
        (Reply::status(429, "too many requests"), "HTTP 429"),
        (Reply::status(200, "<html>a proxy page</html>"), "not a _bulk answer"),
    ] {
        let reply = std::sync::Mutex::new(Some(reply));
        let server = Recorder::start(move |_| reply.lock().unwrap().take().unwrap_or(Reply::status(500, "")));
        let mut out =
            bulk_output(ElasticConfig { url: server.url(""), timeout_seconds: 3, ..ElasticConfig::default() });
        let err = out.send(&Alert::new(What::Test)).expect_err(expect).to_string();
        assert!(err.contains(expect), "{err}");
    }
}

#[test]
fn bulk_probe_reads_the_cluster_without_indexing() {
    let server = Recorder::start(|r| {
        if r.method == "GET" && r.path == "/" {
            Reply::json(200, json!({ "cluster_name": "soc", "version": { "number": "8.15.0" } }))
        } else {
            Reply::status(404, "")
        }
    });
    let mut out = bulk_output(ElasticConfig { url: server.url("/"), timeout_seconds: 3, ..ElasticConfig::default() });
    let said = out.probe().unwrap();
    assert!(said.contains("soc") && said.contains("8.15.0"), "{said}");
    assert!(server.requests().iter().all(|r| r.method == "GET"));
}

#[test]
fn bulk_configs_that_cannot_work_are_refused() {
    let err = |c: ElasticConfig| {
        let config = AlertsConfig { elasticsearch: Some(c), ..AlertsConfig::default() };
        outputs(&config).err().expect("refused").to_string()
    };
    let base = ElasticConfig { url: "http://127.0.0.1:9200".into(), ..ElasticConfig::default() };
    assert!(err(ElasticConfig { index: "Upper".into(), ..base.clone() }).contains("elasticsearch.index"));
    assert!(err(ElasticConfig { url: "es:9200".into(), ..base.clone() }).contains("elasticsearch.url"));
    assert!(err(ElasticConfig { username: Some("u".into()), ..base.clone() }).contains("password_file"));
    assert!(err(ElasticConfig { api_key_file: Some("/k".into()), username: Some("u".into()), ..base.clone() })
        .contains("not both"));
    assert!(err(ElasticConfig { api_key_file: Some("/nonexistent/key".into()), ..base }).contains("/nonexistent/key"));
}

// ------------------------------------------------------------------- Wazuh

fn wazuh(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/wazuh").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Rule {
    id: u32,
    level: u32,
    parents: Vec<u32>,
    decoded_as: Option<String>,
    fields: Vec<(String, String)>,
    mitre: Vec<String>,
}

fn rules() -> Vec<Rule> {
    let text = wazuh("mamori_rules.xml");
    let doc = roxmltree::Document::parse(&text).expect("mamori_rules.xml is well-formed XML");
    let child_text = |n: roxmltree::Node, tag: &str| -> Vec<String> {
        n.descendants().filter(|c| c.has_tag_name(tag)).map(|c| c.text().unwrap_or("").trim().to_owned()).collect()
    };
    doc.descendants()
        .filter(|n| n.has_tag_name("rule"))
        .map(|n| Rule {
            id: n.attribute("id").unwrap().parse().unwrap(),
            level: n.attribute("level").unwrap().parse().unwrap(),
            parents: child_text(n, "if_sid")
                .iter()
                .flat_map(|s| s.split(',').map(|p| p.trim().parse().unwrap()).collect::<Vec<u32>>())
                .collect(),
            decoded_as: child_text(n, "decoded_as").pop(),
            fields: n
                .children()
                .filter(|c| c.has_tag_name("field"))
                .map(|c| (c.attribute("name").unwrap().to_owned(), c.text().unwrap().to_owned()))
                .collect(),
            mitre: child_text(n, "id"),
        })
        .collect()
}

/// Wazuh's OS_Regex, for what these rules use: alternatives by `|`, each an
/// anchored literal or `\.+` (anything but nothing).
fn os_regex_matches(pattern: &str, value: &str) -> bool {
    pattern.split('|').any(|alt| {
        if alt == r"\.+" {
            return !value.is_empty();
        }
        let literal = alt.strip_prefix('^').and_then(|a| a.strip_suffix('$'));
        let literal = literal.unwrap_or_else(|| panic!("pattern {alt:?} not anchored on both ends"));
        assert!(!literal.contains('\\'), "pattern {alt:?}: only literals are checked here");
        literal == value
    })
}

/// How Wazuh's JSON decoder sees a document: dotted names, arrays joined.
fn wazuh_fields(doc: &Value) -> BTreeMap<String, String> {
    let mut flat = BTreeMap::new();
    flatten("", doc, &mut flat);
    flat.into_iter()
        .map(|(k, vs)| {
            let v =
                vs.iter().map(|v| v.as_str().map(str::to_owned).unwrap_or(v.to_string())).collect::<Vec<_>>().join(",");
            (k, v)
        })
        .collect()
}

fn rule_matches(rule: &Rule, all: &[Rule], fields: &BTreeMap<String, String>) -> bool {
    let own = rule.fields.iter().all(|(name, pattern)| fields.get(name).is_some_and(|v| os_regex_matches(pattern, v)));
    if !own {
        return false;
    }
    if rule.parents.is_empty() {
        // The agent's road: Wazuh's built-in JSON decoder.
        return rule.decoded_as.as_deref() == Some("json");
    }
    rule.parents.iter().any(|p| {
        let parent =
            all.iter().find(|r| r.id == *p).unwrap_or_else(|| panic!("rule {} names unknown parent {p}", rule.id));
        rule_matches(parent, all, fields)
    })
}

#[test]
fn wazuh_files_are_well_formed_with_ids_in_the_local_range() {
    let decoders = wazuh("mamori_decoders.xml");
    let doc = roxmltree::Document::parse(&decoders).expect("mamori_decoders.xml is well-formed XML");
    let names: Vec<&str> =
        doc.descendants().filter(|n| n.has_tag_name("decoder")).filter_map(|n| n.attribute("name")).collect();
    assert_eq!(names, ["mamori-json"]);
    let all = rules();
    assert!(all.len() >= 10);
    let mut ids: Vec<u32> = all.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "rule ids are unique");
    assert!(ids.iter().all(|id| (100_000..=120_000).contains(id)), "{ids:?}");
    assert!(all.iter().all(|r| r.level <= 16));
    // The syslog road's parent names the decoder defined here.
    assert!(all.iter().any(|r| r.decoded_as.as_deref() == Some("mamori-json")));
}

#[test]
fn every_rule_field_exists_in_the_documents_with_the_value_matched() {
    let all = rules();
    let docs: Vec<(Alert, BTreeMap<String, String>)> =
        written_documents().into_iter().map(|(a, d)| (a, wazuh_fields(&d))).collect();
    // Each rule that raises an alert is reached by at least one document.
    for rule in all.iter().filter(|r| r.decoded_as.as_deref() != Some("mamori-json")) {
        assert!(
            docs.iter().any(|(_, f)| rule_matches(rule, &all, f)),
            "rule {} matches none of the documents mamori writes",
            rule.id
        );
        for (name, _) in &rule.fields {
            assert!(docs.iter().any(|(_, f)| f.contains_key(name)), "rule {}: no document has {name}", rule.id);
        }
    }
    // And each document ends in exactly one rule, at the level meant for it.
    for (alert, fields) in &docs {
        let matched: Vec<&Rule> = all.iter().filter(|r| rule_matches(r, &all, fields)).collect();
        let leaves: Vec<&&Rule> =
            matched.iter().filter(|r| !matched.iter().any(|c| c.parents.contains(&r.id))).collect();
        assert_eq!(leaves.len(), 1, "{}: {:?}", alert.kind(), leaves.iter().map(|r| r.id).collect::<Vec<_>>());
        let rule = leaves[0];
        let expected = match &alert.what {
            What::Incident { .. } => 15,
            What::RestoreFinished { failed: 0, .. } => 5,
            What::RestoreFinished { .. } => 8,
            What::Degraded { cause: mamori_alert::Cause::AgentStopping | mamori_alert::Cause::FolderGone, .. } => 12,
            What::Degraded { .. } => 10,
            What::Finding(f) => match f.severity {
                mamori_alert::Severity::Info => 3,
                mamori_alert::Severity::Low => 5,
                mamori_alert::Severity::Medium => 7,
                mamori_alert::Severity::High => 10,
                mamori_alert::Severity::Critical => 12,
            },
            What::Test => 3,
        };
        assert_eq!(rule.level, expected, "{} ended in rule {}", alert.kind(), rule.id);
        if matches!(alert.what, What::Incident { .. }) {
            assert_eq!(rule.mitre, ["T1486"], "rule {}", rule.id);
            assert_eq!(rule.id, 100711, "an SMB client's incident names the client");
        }
    }
}

#[test]
fn every_field_quoted_in_a_rule_description_exists() {
    let text = wazuh("mamori_rules.xml");
    let all = rules();
    let docs: Vec<BTreeMap<String, String>> = written_documents().iter().map(|(_, d)| wazuh_fields(d)).collect();
    let doc = roxmltree::Document::parse(&text).unwrap();
    for rule in doc.descendants().filter(|n| n.has_tag_name("rule")) {
        let id: u32 = rule.attribute("id").unwrap().parse().unwrap();
        let r = all.iter().find(|r| r.id == id).unwrap();
        let description = rule.children().find(|c| c.has_tag_name("description")).unwrap().text().unwrap();
        for quoted in description.split("$(").skip(1).map(|s| s.split(')').next().unwrap()) {
            let reached: Vec<_> = docs.iter().filter(|f| rule_matches(r, &all, f)).collect();
            assert!(!reached.is_empty() || r.decoded_as.as_deref() == Some("mamori-json"));
            for f in reached {
                assert!(f.contains_key(quoted), "rule {id} quotes $({quoted}), missing in a document it matches");
            }
        }
    }
}
