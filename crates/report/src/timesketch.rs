//! Timeline export for Timesketch: JSON lines or CSV with its required
//! columns (`message`, `datetime`, `timestamp_desc`) and mamori's fields.

use std::io::Write;

use serde_json::{Map, Value};

use crate::time::{iso_utc, micros};
use crate::timeline::{command_line, detected_ns, entries, entropy, kind_name, verdict_message, Entry, What};
use crate::{Case, ReportError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsFormat {
    Jsonl,
    Csv,
}

/// Every column, in CSV order. JSON lines leave out the empty ones.
pub const COLUMNS: [&str; 22] = [
    "message",
    "datetime",
    "timestamp_desc",
    "timestamp",
    "data_type",
    "incident",
    "op",
    "path",
    "new_path",
    "is_dir",
    "pid",
    "ppid",
    "uid",
    "exe",
    "cmdline",
    "size_before",
    "size_after",
    "entropy_before",
    "entropy_after",
    "kind_before",
    "kind_after",
    "lost",
];

/// Writes the case's timeline, then the detection, one row each.
pub fn timesketch(case: &Case, out: &mut impl Write, format: TsFormat) -> Result<(), ReportError> {
    let mut rows: Vec<Map<String, Value>> = entries(case).iter().map(|e| event_row(case, e)).collect();
    rows.push(verdict_row(case));
    match format {
        TsFormat::Jsonl => {
            for row in rows {
                serde_json::to_writer(&mut *out, &row)?;
                out.write_all(b"\n")?;
            }
        }
        TsFormat::Csv => {
            let mut csv = csv::Writer::from_writer(&mut *out);
            csv.write_record(COLUMNS)?;
            for row in rows {
                csv.write_record(COLUMNS.iter().map(|c| cell(row.get(*c))))?;
            }
            csv.flush()?;
        }
    }
    Ok(())
}

fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn base(case: &Case, time_ns: u64, desc: &str, data_type: &str, message: String) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("message".into(), message.into());
    row.insert("datetime".into(), iso_utc(time_ns).into());
    row.insert("timestamp_desc".into(), desc.into());
    row.insert("timestamp".into(), micros(time_ns).into());
    row.insert("data_type".into(), data_type.into());
    row.insert("incident".into(), case.incident.id.clone().into());
    row
}

fn event_row(case: &Case, e: &Entry) -> Map<String, Value> {
    let mut row = base(case, e.time_ns, e.what.desc(), "mamori:event", message(e));
    row.insert("op".into(), e.what.action().into());
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            row.insert(key.into(), v);
        }
    };
    put("path", e.path.map(Into::into));
    put("new_path", e.to.map(Into::into));
    put("is_dir", e.dir.then_some(true.into()));
    put("pid", e.pid.map(Into::into));
    put("ppid", e.proc.and_then(|p| p.parent).map(|k| k.pid.into()));
    put("uid", e.proc.map(|p| p.uid.into()));
    put("exe", e.proc.map(|p| p.exe.clone().into()));
    put("cmdline", e.proc.map(|p| command_line(&p.cmdline).into()));
    put("size_before", e.before.map(|f| f.size.into()));
    put("size_after", e.after.map(|f| f.size.into()));
    put("entropy_before", e.before.map(|f| entropy(f.entropy).into()));
    put("entropy_after", e.after.map(|f| entropy(f.entropy).into()));
    put("kind_before", e.before.map(|f| kind_name(f.kind).into()));
    put("kind_after", e.after.map(|f| kind_name(f.kind).into()));
    put("lost", e.lost.map(Into::into));
    row
}

fn message(e: &Entry) -> String {
    let who = match (e.proc, e.pid) {
        (Some(p), _) => format!(" by {} (pid {})", p.exe, p.key.pid),
        (None, Some(pid)) => format!(" by pid {pid}"),
        (None, None) => String::new(),
    };
    let mut msg = match e.what {
        What::ProcSeen => {
            let cmd = e.proc.map(|p| command_line(&p.cmdline)).unwrap_or_default();
            format!("process seen{who}: {cmd}")
        }
        What::Renamed => format!("rename {} -> {}{who}", e.path.unwrap_or(""), e.to.unwrap_or("")),
        What::Trusted => format!("trust {} in {}", e.to.unwrap_or(""), e.path.unwrap_or("")),
        What::Overflow => format!("kernel event queue overflowed: at least {} events lost", e.lost.unwrap_or(0)),
        what => format!("{} {}{who}", what.action(), e.path.unwrap_or("")),
    };
    if let Some(before) = e.before {
        msg.push_str(&format!("; before: {} entropy {:.2}", kind_name(before.kind), before.entropy));
    }
    if let Some(after) = e.after {
        msg.push_str(&format!("; after: {} entropy {:.2}", kind_name(after.kind), after.entropy));
    }
    msg
}

fn verdict_row(case: &Case) -> Map<String, Value> {
    let inc = &case.incident;
    let mut row = base(case, detected_ns(case), "Detection", "mamori:alert", verdict_message(case));
    row.insert("op".into(), "detected".into());
    row.insert("pid".into(), inc.actor.pid.into());
    row.insert("uid".into(), inc.actor.uid.into());
    row.insert("exe".into(), inc.actor.exe.clone().into());
    row.insert("cmdline".into(), command_line(&inc.actor.cmdline).into());
    row
}
