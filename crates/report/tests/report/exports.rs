//! Timesketch and ECS exports read back the way the tools read them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use mamori_report::{ecs, timesketch, TsFormat, COLUMNS, ECS_VERSION};
use serde_json::Value;

use crate::fixture::{case, client_case, CUSTOMERS, EXE, MARKUP, NEWLINE, PAYROLL, SHA};

fn jsonl(bytes: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    assert!(text.ends_with('\n'), "every line ends with a newline");
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}"))).collect()
}

fn rfc3339_ns(s: &str) -> i128 {
    let ts: jiff::Timestamp = s.parse().unwrap_or_else(|e| panic!("not RFC 3339: {s}: {e}"));
    ts.as_nanosecond()
}

#[test]
fn timesketch_jsonl_rows_carry_the_required_columns() {
    let case = case();
    let mut out = Vec::new();
    timesketch(&case, &mut out, TsFormat::Jsonl).unwrap();
    let rows = jsonl(&out);
    assert_eq!(rows.len(), case.timeline.len() + 1, "one row per event plus the detection");
    for (row, event) in rows.iter().zip(&case.timeline) {
        for col in ["message", "datetime", "timestamp_desc"] {
            let v = row[col].as_str().unwrap_or_else(|| panic!("{col} missing in {row}"));
            assert!(!v.is_empty(), "{col} empty in {row}");
        }
        let dt = row["datetime"].as_str().unwrap();
        assert!(dt.ends_with("+00:00"), "timezone explicit: {dt}");
        // Microsecond precision: the event time truncated to microseconds.
        assert_eq!(rfc3339_ns(dt), i128::from(event.time_ns / 1000 * 1000));
        assert_eq!(row["timestamp"].as_u64(), Some(event.time_ns / 1000));
        assert!(row.as_object().unwrap().keys().all(|k| COLUMNS.contains(&k.as_str())), "unknown column in {row}");
    }
    let write = rows.iter().find(|r| r["op"] == "write" && r["path"] == CUSTOMERS).expect("the customer file's write");
    assert_eq!(write["entropy_before"].as_f64(), Some(5.125));
    assert_eq!(write["entropy_after"].as_f64(), Some(7.998));
    assert_eq!(write["kind_before"], "office");
    assert_eq!(write["kind_after"], "unknown");
    assert_eq!(write["exe"], EXE);
    assert_eq!(write["ppid"], 1);
    let last = rows.last().unwrap();
    assert_eq!(last["timestamp_desc"], "Detection");
    assert!(last["message"].as_str().unwrap().contains("INC-0007"));
}

#[test]
fn timesketch_csv_quotes_commas_newlines_and_japanese() {
    let case = case();
    let mut out = Vec::new();
    timesketch(&case, &mut out, TsFormat::Csv).unwrap();
    let mut reader = csv::Reader::from_reader(out.as_slice());
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), COLUMNS.to_vec());
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("well-formed CSV")).collect();
    assert_eq!(records.len(), case.timeline.len() + 1);
    let col = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap();
    for record in &records {
        assert_eq!(record.len(), COLUMNS.len());
        for name in ["message", "datetime", "timestamp_desc"] {
            assert!(!record[col(name)].is_empty(), "{name} empty in {record:?}");
        }
        rfc3339_ns(&record[col("datetime")]);
    }
    let paths: Vec<&str> = records.iter().map(|r| r.get(col("path")).unwrap()).collect();
    for tricky in [CUSTOMERS, NEWLINE, MARKUP] {
        assert!(paths.contains(&tricky), "{tricky:?} did not survive the CSV round trip");
    }
    let renamed = records.iter().find(|r| &r[col("op")] == "rename" && &r[col("path")] == CUSTOMERS).unwrap();
    assert_eq!(&renamed[col("new_path")], format!("{CUSTOMERS}.locked"));
}

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

/// Every field the export uses, with its ECS type (mamori's own under `mamori.`).
const FIELDS: &[(&str, Type)] = &[
    ("@timestamp", Type::Date),
    ("ecs.version", Type::Keyword),
    ("message", Type::Keyword),
    ("event.kind", Type::Keyword),
    ("event.category", Type::Keyword),
    ("event.type", Type::Keyword),
    ("event.action", Type::Keyword),
    ("event.module", Type::Keyword),
    ("event.dataset", Type::Keyword),
    ("event.id", Type::Keyword),
    ("event.risk_score", Type::Float),
    ("event.reason", Type::Keyword),
    ("event.outcome", Type::Keyword),
    ("file.path", Type::Keyword),
    ("file.name", Type::Keyword),
    ("file.extension", Type::Keyword),
    ("file.type", Type::Keyword),
    ("file.size", Type::Long),
    ("process.pid", Type::Long),
    ("process.name", Type::Keyword),
    ("process.executable", Type::Keyword),
    ("process.command_line", Type::Keyword),
    ("process.args", Type::Keyword),
    ("process.parent.pid", Type::Long),
    ("process.hash.sha256", Type::Keyword),
    ("user.id", Type::Keyword),
    ("user.name", Type::Keyword),
    ("source.ip", Type::Ip),
    ("source.port", Type::Long),
    ("source.domain", Type::Keyword),
    ("host.hostname", Type::Keyword),
    ("host.os.kernel", Type::Keyword),
    ("host.os.full", Type::Keyword),
    ("observer.product", Type::Keyword),
    ("observer.type", Type::Keyword),
    ("threat.framework", Type::Keyword),
    ("threat.technique.id", Type::Keyword),
    ("threat.technique.name", Type::Keyword),
    ("threat.tactic.id", Type::Keyword),
    ("threat.tactic.name", Type::Keyword),
    ("threat.software.name", Type::Keyword),
    ("threat.software.type", Type::Keyword),
    ("related.ip", Type::Ip),
    ("related.hosts", Type::Keyword),
    ("related.hash", Type::Keyword),
    ("related.user", Type::Keyword),
    ("mamori.incident", Type::Keyword),
    ("mamori.action", Type::Keyword),
    ("mamori.pids", Type::Long),
    ("mamori.files", Type::Long),
    ("mamori.stop_latency_us", Type::Long),
    ("mamori.renamed_from", Type::Keyword),
    ("mamori.lost", Type::Long),
    ("mamori.before.size", Type::Long),
    ("mamori.before.entropy", Type::Float),
    ("mamori.before.kind", Type::Keyword),
    ("mamori.after.size", Type::Long),
    ("mamori.after.entropy", Type::Float),
    ("mamori.after.kind", Type::Keyword),
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

#[test]
fn ecs_lines_of_a_client_use_known_fields_with_their_types() {
    let mut out = Vec::new();
    ecs(&client_case(), &mut out).unwrap();
    for doc in jsonl(&out) {
        known_fields(&doc);
    }
}

#[test]
fn ecs_lines_use_known_fields_with_their_types() {
    let mut case = case();
    case.family = Some(mamori_report::Family {
        name: "Lockbit".into(),
        confidence: "high".into(),
        evidence: vec![],
        matched: vec![],
        decryptor: None,
    });
    let mut out = Vec::new();
    ecs(&case, &mut out).unwrap();
    let docs = jsonl(&out);
    assert_eq!(docs.len(), case.timeline.len() + 1);
    for doc in &docs {
        let fields = known_fields(doc);
        for required in [
            "@timestamp",
            "event.kind",
            "event.category",
            "event.type",
            "event.action",
            "ecs.version",
            "host.hostname",
            "host.os.kernel",
        ] {
            assert!(fields.contains_key(required), "{required} missing: {doc}");
        }
        assert_eq!(doc["ecs"]["version"], ECS_VERSION);
        // Allowed ECS category/type pairs for the categories used.
        let category = doc["event"]["category"][0].as_str().unwrap();
        let kind = doc["event"]["type"][0].as_str().unwrap();
        let allowed: &[&str] = match category {
            "file" => &["access", "change", "creation", "deletion", "info"],
            "process" => &["access", "change", "end", "info", "start"],
            "intrusion_detection" => &["allowed", "denied", "info"],
            "host" => &["access", "change", "end", "info", "start"],
            "configuration" => &["access", "change", "creation", "deletion", "info"],
            other => panic!("category {other} not used by mamori"),
        };
        assert!(allowed.contains(&kind), "{category}/{kind}");
        if category == "file" {
            assert!(doc["file"]["path"].is_string() && doc["file"]["name"].is_string(), "{doc}");
        }
    }
    let (alert, events) = docs.split_last().unwrap();
    assert!(events.iter().all(|d| d["event"]["kind"] == "event"));
    assert_eq!(alert["event"]["kind"], "alert");
    assert_eq!(alert["event"]["category"][0], "intrusion_detection");
    assert_eq!(alert["threat"]["technique"]["id"], serde_json::json!(["T1486"]));
    assert_eq!(alert["threat"]["framework"], "MITRE ATT&CK");
    // Tools read the reasons as they always were: English sentences.
    let reason = alert["event"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "recognised files rewritten into unrecognisable ciphertext-like data (4 files): {CUSTOMERS}, {PAYROLL} and 2 more; "
        )),
        "{reason}"
    );
    assert!(reason.ends_with("; 2 further file operations were not listed"), "{reason}");
    assert_eq!(alert["threat"]["software"]["name"], "Lockbit");
    assert_eq!(alert["process"]["hash"]["sha256"], SHA);
    assert_eq!(alert["related"]["ip"], serde_json::json!(["203.0.113.9", "2001:db8::5"]));

    let rename = events.iter().find(|d| d["event"]["action"] == "rename").unwrap();
    assert_eq!(rename["file"]["path"], format!("{CUSTOMERS}.locked"));
    assert_eq!(rename["file"]["extension"], "locked");
    assert_eq!(rename["mamori"]["renamed_from"], CUSTOMERS);
    let write = events.iter().find(|d| d["event"]["action"] == "write").unwrap();
    assert_eq!(write["file"]["extension"], "xlsx");
    assert_eq!(write["file"]["size"], 18_016);
    assert_eq!(write["process"]["parent"]["pid"], 1);
    assert_eq!(write["process"]["command_line"], format!("{EXE} --path /srv/share 'a b'"));
    assert_eq!(write["user"]["id"], "1001");
    let child = events.iter().find(|d| d["process"]["pid"] == 4243 && d["event"]["category"][0] == "file").unwrap();
    assert_eq!(child["process"]["parent"]["pid"], 4242);
}
