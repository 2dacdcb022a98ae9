//! The actor's events as flat entries that both exports share: processes
//! resolved from their `Proc` introductions, and each write paired with the
//! content the file had when it was opened.

use std::collections::HashMap;

use mamori_event::{ContentFacts, Event, EventKind, FileKind, Format, OpenMode, ProcInfo, ProcKey};

use crate::text::EN;
use crate::time::parse_rfc3339;
use crate::Case;

/// What an entry records. `action` names it for machines, `desc` for Timesketch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum What {
    ProcSeen,
    Open(OpenMode),
    Written,
    Created,
    Deleted,
    Renamed,
    VaultTouched,
    CanaryTouched,
    Trusted,
    Overflow,
}

impl What {
    pub(crate) fn action(self) -> &'static str {
        match self {
            What::ProcSeen => "process-seen",
            What::Open(OpenMode::Read) => "open-read",
            What::Open(OpenMode::Write) => "open-write",
            What::Open(OpenMode::Truncate) => "open-truncate",
            What::Open(OpenMode::Unknown) => "open",
            What::Written => "write",
            What::Created => "create",
            What::Deleted => "delete",
            What::Renamed => "rename",
            What::VaultTouched => "vault-touched",
            What::CanaryTouched => "canary-touched",
            What::Trusted => "trust-added",
            What::Overflow => "events-lost",
        }
    }

    pub(crate) fn desc(self) -> &'static str {
        match self {
            What::ProcSeen => "Process first seen",
            What::Open(_) => "File opened",
            What::Written => "File written",
            What::Created => "File created",
            What::Deleted => "File deleted",
            What::Renamed => "File renamed",
            What::VaultTouched => "Vault touched",
            What::CanaryTouched => "Decoy file touched",
            What::Trusted => "Trust added",
            What::Overflow => "Events lost",
        }
    }
}

pub(crate) struct Entry<'a> {
    pub time_ns: u64,
    pub what: What,
    /// The file (the old name for a rename), or the trusted folder.
    pub path: Option<&'a str>,
    /// The new name for a rename, or the trusted program.
    pub to: Option<&'a str>,
    pub dir: bool,
    pub pid: Option<u32>,
    pub proc: Option<&'a ProcInfo>,
    pub before: Option<&'a ContentFacts>,
    pub after: Option<&'a ContentFacts>,
    pub lost: Option<u64>,
}

impl Entry<'_> {
    /// The path a reader looks for: the new name after a rename.
    pub(crate) fn current_path(&self) -> Option<&str> {
        self.to.filter(|_| self.what == What::Renamed).or(self.path)
    }
}

pub(crate) fn entries(case: &Case) -> Vec<Entry<'_>> {
    let procs: HashMap<ProcKey, &ProcInfo> = case
        .timeline
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Proc(info) => Some((info.key, info)),
            _ => None,
        })
        .collect();
    let mut opened: HashMap<(Option<ProcKey>, &str), &ContentFacts> = HashMap::new();
    case.timeline
        .iter()
        .map(|event| {
            let entry = entry(event, &procs, &opened);
            if let EventKind::Open { path, before: Some(facts), .. } = &event.kind {
                opened.insert((event.proc, path.as_str()), facts);
            }
            entry
        })
        .collect()
}

fn entry<'a>(
    event: &'a Event,
    procs: &HashMap<ProcKey, &'a ProcInfo>,
    opened: &HashMap<(Option<ProcKey>, &'a str), &'a ContentFacts>,
) -> Entry<'a> {
    let mut e = Entry {
        time_ns: event.time_ns,
        what: What::ProcSeen,
        path: None,
        to: None,
        dir: false,
        pid: event.proc.map(|k| k.pid),
        proc: event.proc.and_then(|k| procs.get(&k).copied()),
        before: None,
        after: None,
        lost: None,
    };
    match &event.kind {
        EventKind::Proc(info) => {
            e.pid = Some(info.key.pid);
            e.proc = Some(info);
        }
        EventKind::Open { path, mode, before } => {
            e.what = What::Open(*mode);
            e.path = Some(path);
            e.before = before.as_ref();
        }
        EventKind::CloseWrite { path, after } => {
            e.what = What::Written;
            e.path = Some(path);
            e.before = opened.get(&(event.proc, path.as_str())).copied();
            e.after = Some(after);
        }
        EventKind::Create { path, dir } => {
            e.what = What::Created;
            e.path = Some(path);
            e.dir = *dir;
        }
        EventKind::Delete { path, dir, before } => {
            e.what = What::Deleted;
            e.path = Some(path);
            e.dir = *dir;
            e.before = before.as_ref();
        }
        EventKind::Rename { from, to, dir, .. } => {
            e.what = What::Renamed;
            e.path = Some(from);
            e.to = Some(to);
            e.dir = *dir;
        }
        EventKind::Guarded { path } => {
            e.what = What::VaultTouched;
            e.path = Some(path);
        }
        EventKind::Canary { path } => {
            e.what = What::CanaryTouched;
            e.path = Some(path);
        }
        EventKind::Trust { exe, dir } => {
            e.what = What::Trusted;
            e.path = Some(dir);
            e.to = Some(exe);
        }
        EventKind::Overflow { lost } => {
            e.what = What::Overflow;
            e.lost = Some(*lost);
        }
    }
    e
}

/// The time of the detection: the incident's own, else the last event's.
pub(crate) fn detected_ns(case: &Case) -> u64 {
    parse_rfc3339(&case.incident.detected_at).or_else(|| case.timeline.last().map(|e| e.time_ns)).unwrap_or(0)
}

/// A short name for what a file holds, e.g. `office`, `pdf (broken)`, `text`.
pub(crate) fn kind_name(kind: FileKind) -> String {
    match kind {
        FileKind::Empty => "empty".into(),
        FileKind::Text => "text".into(),
        FileKind::Unknown => "unknown".into(),
        FileKind::Known { format, intact: true } => format_name(format).into(),
        FileKind::Known { format, intact: false } => format!("{} (broken)", format_name(format)),
    }
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Zip => "zip",
        Format::Office => "office",
        Format::Ole => "ole",
        Format::Pdf => "pdf",
        Format::Png => "png",
        Format::Jpeg => "jpeg",
        Format::Gif => "gif",
        Format::Webp => "webp",
        Format::Tiff => "tiff",
        Format::Bmp => "bmp",
        Format::Gzip => "gzip",
        Format::Bzip2 => "bzip2",
        Format::Xz => "xz",
        Format::Zstd => "zstd",
        Format::SevenZip => "7z",
        Format::Rar => "rar",
        Format::Tar => "tar",
        Format::Sqlite => "sqlite",
        Format::Elf => "elf",
        Format::Mp3 => "mp3",
        Format::Mp4 => "mp4",
        Format::Qcow2 => "qcow2",
        Format::Other => "other",
    }
}

/// The file name part of a path.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The extension of a path's file name, without the dot; none for dot files.
pub(crate) fn extension(path: &str) -> Option<&str> {
    let name = file_name(path);
    match name.rfind('.') {
        Some(0) | None => None,
        Some(i) if i + 1 < name.len() => Some(&name[i + 1..]),
        Some(_) => None,
    }
}

/// Arguments joined for reading; arguments with blanks or quotes are single-quoted.
pub(crate) fn command_line(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty() && !a.chars().any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\')) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Entropy to three decimals, so exports show 7.998 rather than 7.99800014.
pub(crate) fn entropy(value: f32) -> f64 {
    (f64::from(value) * 1000.0).round() / 1000.0
}

/// One line for the detection itself, shared by both exports.
pub(crate) fn verdict_message(case: &Case) -> String {
    let inc = &case.incident;
    let pids = inc.pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
    let mut msg = format!(
        "mamori {}: ransomware activity by {} (pid {}), score {:.1}; processes {}: {}",
        inc.id,
        inc.actor.exe,
        inc.actor.pid,
        inc.score,
        inc.action.as_str(),
        if pids.is_empty() { "none".into() } else { pids },
    );
    if !inc.reasons.is_empty() {
        msg.push_str("; ");
        msg.push_str(&reasons_line(case));
    }
    msg
}

/// The incident's reasons on one line, in English whatever the report's
/// language: exports are read by tools, and keep the sentences they always had.
pub(crate) fn reasons_line(case: &Case) -> String {
    case.incident.reasons.iter().map(|r| EN.reason(r)).collect::<Vec<_>>().join("; ")
}
