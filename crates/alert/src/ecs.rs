//! Events in the Elastic Common Schema (ECS): one document per event,
//! appended as a JSON line to a file for a shipper (Filebeat, Elastic Agent,
//! a Wazuh agent, Fluent Bit), or indexed straight into Elasticsearch or
//! OpenSearch through `_bulk`.
//!
//! Field choices, where ECS leaves room:
//! - `event.kind` is `alert` for what someone should look at (an incident,
//!   protection degraded, an audit finding) and `event` for a restore that
//!   finished and a test.
//! - `event.severity` follows the bands Elastic's detection rules use for
//!   their risk scores (low 21, medium 47, high 73, critical 99; info 0);
//!   `log.level` carries the same in words, which is what the Wazuh rules
//!   match on.
//! - ECS has no field for a list of files: `file.path` is the first file
//!   touched, `mamori.paths` the first few (bounded, see [`MAX_PATHS`]) and
//!   `mamori.files` their total count (a number, as in the report crate's
//!   ECS export, so both can share an index mapping).
//! - Everything ECS has no field for is under `mamori.`.
//!
//! A document stays well under 64 KiB (Wazuh's log collector cuts longer
//! lines, and a cut JSON line is no alert at all): every free text is bounded.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mamori_report::{Lang, ECS_VERSION};
use serde_json::{json, Map, Value};

use crate::alert::{Alert, Cause, What};
use crate::config::{read_secret, EcsFileConfig, ElasticConfig};
use crate::http::{Client, Url};
use crate::output::Output;
use crate::text::{text, Language};
use crate::{AlertError, Severity};

/// Most paths listed in `mamori.paths`.
pub const MAX_PATHS: usize = 50;
/// Most bytes of paths listed in `mamori.paths` together.
const MAX_PATHS_BYTES: usize = 8 * 1024;
/// Most bytes of any one free text (message, a detail, a command line).
const MAX_TEXT: usize = 4 * 1024;
/// Most arguments listed in `process.args`.
const MAX_ARGS: usize = 64;

/// The dataset of mamori's alert documents (`event.dataset`).
pub const DATASET: &str = "mamori.alerts";

/// `event.severity` for a severity.
pub fn severity_number(s: Severity) -> u8 {
    match s {
        Severity::Info => 0,
        Severity::Low => 21,
        Severity::Medium => 47,
        Severity::High => 73,
        Severity::Critical => 99,
    }
}

/// The ECS document of an event.
pub fn ecs_document(alert: &Alert) -> Value {
    let words = text(alert, Language::En);
    let mut message = words.title.clone();
    for line in &words.lines {
        message.push('\n');
        message.push_str(line);
    }
    let severity = alert.severity();
    let (kind, category, kind_type) = categorise(alert);
    let mut event = json!({
        "kind": kind,
        "category": category,
        "type": kind_type,
        "action": alert.kind(),
        "id": alert.id,
        "severity": severity_number(severity),
        "module": "mamori",
        "dataset": DATASET,
    });
    let mut doc = Map::new();
    doc.insert("@timestamp".into(), alert.time_rfc3339().into());
    doc.insert("ecs".into(), json!({ "version": ECS_VERSION }));
    doc.insert("message".into(), clip(&message, MAX_TEXT).into());
    doc.insert("log".into(), json!({ "level": severity.as_str() }));
    doc.insert("host".into(), json!({ "name": alert.host, "hostname": alert.host }));
    doc.insert(
        "observer".into(),
        json!({ "product": "mamori", "vendor": "mamori", "type": "edr", "version": env!("CARGO_PKG_VERSION") }),
    );
    let mut mamori = Map::new();
    let mut related = Map::new();
    let mut hosts = vec![Value::from(alert.host.clone())];
    match &alert.what {
        What::Incident { incident, restore_command } => {
            event["outcome"] =
                if incident.action == mamori_store::Action::Failed { "failure" } else { "success" }.into();
            event["risk_score"] = incident.score.into();
            let reasons: Vec<String> = incident.reasons.iter().map(|r| mamori_report::reason(r, Lang::En)).collect();
            if !reasons.is_empty() {
                event["reason"] = clip(&reasons.join("; "), MAX_TEXT).into();
            }
            let actor = &incident.actor;
            let args = bounded(actor.cmdline.iter().map(String::as_str), MAX_ARGS, MAX_TEXT);
            doc.insert(
                "process".into(),
                json!({
                    "pid": actor.pid,
                    "executable": clip(&actor.exe, MAX_TEXT),
                    "name": clip(file_name(&actor.exe), MAX_TEXT),
                    "command_line": clip(&command_line(&actor.cmdline), MAX_TEXT),
                    "args": args,
                }),
            );
            let mut user = json!({ "id": actor.uid.to_string() });
            if let Some(cut) = &incident.client {
                let c = &cut.client;
                let mut source = Map::new();
                if let Ok(ip) = c.address.parse::<IpAddr>() {
                    source.insert("ip".into(), ip.to_string().into());
                    related.insert("ip".into(), json!([ip.to_string()]));
                }
                if c.port != 0 {
                    source.insert("port".into(), c.port.into());
                }
                if !c.machine.is_empty() {
                    source.insert("domain".into(), c.machine.clone().into());
                    hosts.push(c.machine.clone().into());
                }
                if !source.is_empty() {
                    doc.insert("source".into(), source.into());
                }
                if !c.user.is_empty() {
                    user["name"] = c.user.clone().into();
                    related.insert("user".into(), json!([c.user]));
                }
            }
            doc.insert("user".into(), user);
            if let Some(first) = incident.files.first() {
                doc.insert(
                    "file".into(),
                    json!({ "path": clip(&first.path, MAX_TEXT), "name": clip(file_name(&first.path), MAX_TEXT) }),
                );
            }
            doc.insert(
                "threat".into(),
                json!({
                    "framework": "MITRE ATT&CK",
                    "technique": { "id": "T1486", "name": "Data Encrypted for Impact" },
                    "tactic": { "id": "TA0040", "name": "Impact" },
                }),
            );
            doc.insert("rule".into(), json!({ "name": "ransomware detected and stopped" }));
            mamori.insert("incident".into(), incident.id.clone().into());
            mamori.insert("action".into(), incident.action.as_str().into());
            mamori.insert("pids".into(), incident.pids.clone().into());
            mamori.insert("files".into(), incident.files.len().into());
            let paths = bounded(incident.files.iter().map(|f| f.path.as_str()), MAX_PATHS, MAX_PATHS_BYTES);
            mamori.insert("paths".into(), paths.into());
            mamori.insert("restore_command".into(), clip(restore_command, MAX_TEXT).into());
            if let Some(us) = incident.stop_latency_us {
                mamori.insert("stop_latency_us".into(), us.into());
            }
        }
        What::RestoreFinished { incident_id, restored, failed } => {
            event["outcome"] = if *failed > 0 { "failure" } else { "success" }.into();
            doc.insert("rule".into(), json!({ "name": "restore finished" }));
            mamori.insert("incident".into(), incident_id.clone().into());
            mamori.insert("restored".into(), (*restored).into());
            mamori.insert("failed".into(), (*failed).into());
        }
        What::Degraded { cause, detail } => {
            event["reason"] = clip(detail, MAX_TEXT).into();
            doc.insert("rule".into(), json!({ "name": "protection degraded" }));
            mamori.insert("cause".into(), cause_name(*cause).into());
        }
        What::Finding(f) => {
            event["reason"] = clip(&f.detail, MAX_TEXT).into();
            doc.insert("rule".into(), json!({ "name": clip(&f.check, MAX_TEXT) }));
            mamori.insert(
                "finding".into(),
                json!({
                    "check": clip(&f.check, MAX_TEXT),
                    "target": clip(&f.target, MAX_TEXT),
                    "detail": clip(&f.detail, MAX_TEXT),
                    "fix": clip(&f.fix, MAX_TEXT),
                }),
            );
        }
        What::Test => {
            doc.insert("rule".into(), json!({ "name": "test" }));
        }
    }
    related.insert("hosts".into(), hosts.into());
    doc.insert("related".into(), related.into());
    doc.insert("event".into(), event);
    doc.insert("mamori".into(), mamori.into());
    Value::Object(doc)
}

/// `event.kind`, `event.category`, `event.type`, from ECS's allowed values.
fn categorise(alert: &Alert) -> (&'static str, Value, Value) {
    match &alert.what {
        // Malware stopped: `malware` allows only `info`; `intrusion_detection`
        // allows `denied` (it was stopped).
        What::Incident { .. } => ("alert", json!(["malware", "intrusion_detection"]), json!(["info", "denied"])),
        What::RestoreFinished { .. } => ("event", json!(["file"]), json!(["change"])),
        What::Degraded { cause: Cause::AgentStopping, .. } => ("alert", json!(["host"]), json!(["end"])),
        What::Degraded { .. } => ("alert", json!(["host"]), json!(["change"])),
        What::Finding(_) => ("alert", json!(["configuration"]), json!(["info"])),
        What::Test => ("event", json!(["host"]), json!(["info"])),
    }
}

/// The cause as the queue spells it (`agent_stopping`…).
fn cause_name(cause: Cause) -> String {
    serde_json::to_value(cause).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// The first strings, at most `count` of them and `max_bytes` together.
fn bounded<'a>(all: impl Iterator<Item = &'a str>, count: usize, max_bytes: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut bytes = 0;
    for s in all.take(count) {
        let s = clip(s, MAX_TEXT);
        bytes += s.len();
        if bytes > max_bytes {
            break;
        }
        out.push(s);
    }
    out
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The arguments as a shell would take them back: plain words bare, the
/// rest in single quotes.
fn command_line(args: &[String]) -> String {
    args.iter()
        .take(MAX_ARGS)
        .map(|a| {
            if !a.is_empty() && !a.chars().any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\' | '$' | '`')) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `max` bytes, cut at a character boundary, marked when cut.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut cut = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// One line of the file: the document and its newline.
pub fn ecs_line(alert: &Alert) -> Vec<u8> {
    let mut line = serde_json::to_vec(&ecs_document(alert)).expect("a JSON value always serialises");
    line.push(b'\n');
    line
}

// ---------------------------------------------------------------- the file

struct FileOutput {
    path: PathBuf,
    /// 0: never rotated here.
    max_bytes: u64,
}

/// `[alerts.ecs]`: one document a line, appended to `path`.
pub fn file_output(c: &EcsFileConfig) -> Result<Box<dyn Output>, AlertError> {
    if c.path.as_os_str().is_empty() || !c.path.is_absolute() {
        return Err(AlertError::config("ecs.path", "an absolute path of a file"));
    }
    if c.path.file_name().is_none() {
        return Err(AlertError::config("ecs.path", "names a directory, not a file"));
    }
    Ok(Box::new(FileOutput { path: c.path.clone(), max_bytes: c.max_mib.saturating_mul(1 << 20) }))
}

impl FileOutput {
    fn rotated(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".1");
        PathBuf::from(name)
    }

    fn make_dir(&self) -> Result<(), AlertError> {
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .map_err(|e| AlertError::send("ecs", format!("{}: {e}", dir.display())))
    }

    /// Opens for appending; never through a link (the directory may be one
    /// a log shipper's package made, but the file is mamori's), and never
    /// anything but a regular file (a FIFO put there would hold the thread).
    fn open(&self) -> Result<File, AlertError> {
        self.make_dir()?;
        let err = |e: std::io::Error| AlertError::send("ecs", format!("{}: {e}", self.path.display()));
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(&self.path)
            .map_err(err)?;
        if !file.metadata().map_err(err)?.is_file() {
            return Err(err(std::io::Error::other("not a regular file")));
        }
        Ok(file)
    }
}

impl Output for FileOutput {
    fn name(&self) -> &'static str {
        "ecs"
    }

    fn send(&mut self, alert: &Alert) -> Result<(), AlertError> {
        let line = ecs_line(alert);
        let err = |e: std::io::Error| AlertError::send("ecs", format!("{}: {e}", self.path.display()));
        let mut file = self.open()?;
        let mut size = file.metadata().map_err(err)?.len();
        if self.max_bytes > 0 && size > 0 && size + line.len() as u64 > self.max_bytes {
            // One generation: shippers follow a renamed file to its end
            // before they take up the new one.
            std::fs::rename(&self.path, self.rotated()).map_err(err)?;
            file = self.open()?;
            size = file.metadata().map_err(err)?.len();
        }
        // One write(2) of the whole line, so a shipper never reads half of
        // it; if the disk took only part, that part is cut off again so
        // the retry does not leave a broken line before the whole one.
        match file.write(&line) {
            Ok(n) if n == line.len() => {}
            Ok(n) => {
                let _ = file.set_len(size);
                return Err(AlertError::send(
                    "ecs",
                    format!("{}: only {n} of {} bytes written", self.path.display(), line.len()),
                ));
            }
            Err(e) => {
                let _ = file.set_len(size);
                return Err(err(e));
            }
        }
        // An alert is worth a sync: the queue forgets it once this returns.
        file.sync_data().map_err(err)
    }

    fn target(&self) -> String {
        self.path.display().to_string()
    }

    fn probe(&mut self) -> Result<String, AlertError> {
        let file = self.open()?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(format!("{} can be appended to ({size} bytes now)", self.path.display()))
    }
}

// ------------------------------------------------------------ Elasticsearch

struct BulkOutput {
    base: Url,
    bulk: Url,
    index: String,
    authorization: Option<String>,
    client: Client,
}

/// `[alerts.elasticsearch]`: each event indexed with `create` and its id as
/// `_id`. A retry after a lost answer therefore cannot index it twice: the
/// cluster answers 409 (the id exists), which counts as delivered. The
/// `create` action also makes the index name work as a data stream.
pub fn bulk_output(c: &ElasticConfig) -> Result<Box<dyn Output>, AlertError> {
    let base = Url::parse(&c.url).map_err(|p| AlertError::config("elasticsearch.url", p))?;
    let bulk = base.join("_bulk").map_err(|p| AlertError::config("elasticsearch.url", p))?;
    check_index(&c.index).map_err(|p| AlertError::config("elasticsearch.index", p))?;
    let authorization = match (&c.api_key_file, &c.username, &c.password_file) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(AlertError::config(
                "elasticsearch.api_key_file",
                "either an API key or a username and password_file, not both",
            ))
        }
        (Some(key), None, None) => Some(format!("ApiKey {}", read_secret(key)?.trim())),
        (None, Some(user), Some(pw)) => Some(mamori_http::basic_auth(user.as_bytes(), read_secret(pw)?.as_bytes())),
        (None, Some(_), None) => return Err(AlertError::config("elasticsearch.password_file", "needed with username")),
        (None, None, Some(_)) => return Err(AlertError::config("elasticsearch.username", "needed with password_file")),
        (None, None, None) => None,
    };
    let client = Client::new("elasticsearch", &base, c.ca_file.as_deref(), Duration::from_secs(c.timeout_seconds))?;
    Ok(Box::new(BulkOutput { base, bulk, index: c.index.clone(), authorization, client }))
}

/// Elasticsearch's rules for an index (or data stream) name.
fn check_index(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err("1 to 255 bytes".into());
    }
    if name.starts_with(['-', '_', '+']) || name == "." || name == ".." {
        return Err("may not start with -, _ or +, nor be . or ..".into());
    }
    if let Some(c) = name.chars().find(|c| c.is_uppercase() || r#"\/*?"<>| ,#:"#.contains(*c)) {
        return Err(format!("may not contain {c:?} (lowercase, no \\ / * ? \" < > | , # : or space)"));
    }
    Ok(())
}

impl BulkOutput {
    fn headers(&self) -> Vec<(&str, &str)> {
        self.authorization.as_deref().map(|a| vec![("Authorization", a)]).unwrap_or_default()
    }
}

/// The `_bulk` body for one event: the action line, then the document.
pub fn bulk_body(index: &str, alert: &Alert) -> Vec<u8> {
    let action = json!({ "create": { "_index": index, "_id": alert.id } });
    let mut body = serde_json::to_vec(&action).expect("a JSON value always serialises");
    body.push(b'\n');
    body.extend(ecs_line(alert));
    body
}

/// Whether a `_bulk` answer says the one document is in the index.
fn bulk_result(answer: &crate::http::Answer) -> Result<(), String> {
    if !answer.ok() {
        return Err(format!("HTTP {}: {}", answer.status, answer.excerpt()));
    }
    let v: Value =
        serde_json::from_str(&answer.body).map_err(|e| format!("not a _bulk answer ({e}): {}", answer.excerpt()))?;
    if v["errors"] == Value::Bool(false) {
        return Ok(());
    }
    if v["errors"] != Value::Bool(true) {
        return Err(format!("not a _bulk answer: {}", answer.excerpt()));
    }
    let items = v["items"]
        .as_array()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| format!("errors without items: {}", answer.excerpt()))?;
    for item in items {
        let result = item.get("create").unwrap_or(&Value::Null);
        let status = result["status"].as_u64().unwrap_or(0);
        // Already there: an earlier try got through and its answer was lost.
        if status == 409 || (200..300).contains(&status) {
            continue;
        }
        let error = &result["error"];
        return Err(format!(
            "HTTP {status} for the document: {}: {}",
            error["type"].as_str().unwrap_or("error"),
            crate::http::excerpt(error["reason"].as_str().unwrap_or(&error.to_string()))
        ));
    }
    Ok(())
}

impl Output for BulkOutput {
    fn name(&self) -> &'static str {
        "elasticsearch"
    }

    fn send(&mut self, alert: &Alert) -> Result<(), AlertError> {
        let body = bulk_body(&self.index, alert);
        let answer = self
            .client
            .post(&self.bulk, "application/x-ndjson", &self.headers(), &body)
            .map_err(|p| AlertError::send("elasticsearch", p))?;
        bulk_result(&answer).map_err(|p| AlertError::send("elasticsearch", p))
    }

    fn target(&self) -> String {
        format!("{}/ index {}", self.base.origin(), self.index)
    }

    fn probe(&mut self) -> Result<String, AlertError> {
        let answer = self.client.get(&self.base, &self.headers()).map_err(|p| AlertError::send("elasticsearch", p))?;
        if !answer.ok() {
            return Err(AlertError::send("elasticsearch", format!("HTTP {}: {}", answer.status, answer.excerpt())));
        }
        let v: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
        let name = v["cluster_name"].as_str().unwrap_or("?");
        let version = v["version"]["number"].as_str().unwrap_or("?");
        let distribution = v["version"]["distribution"].as_str().unwrap_or("elasticsearch");
        Ok(format!("cluster {name} answers ({distribution} {version}); credentials accepted"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_at_a_character_boundary() {
        let s = "あ".repeat(100);
        let c = clip(&s, 10);
        assert!(c.len() <= 10, "{}", c.len());
        assert!(c.ends_with('…'));
        assert_eq!(clip("short", 10), "short");
    }

    #[test]
    fn index_names_follow_elasticsearch() {
        assert!(check_index("mamori-alerts").is_ok());
        assert!(check_index("logs-mamori.alerts-default").is_ok());
        for bad in ["", "Upper", "_x", "a b", "a*", "a,b"] {
            assert!(check_index(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn command_line_quotes_what_a_shell_would_split() {
        let args: Vec<String> = ["/bin/x", "a b", "it's", "$HOME"].iter().map(|s| s.to_string()).collect();
        assert_eq!(command_line(&args), r#"/bin/x 'a b' 'it'\''s' '$HOME'"#);
    }
}
