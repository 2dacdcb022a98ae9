//! The lines sent: an RFC 5424 message with mamori's structured data, or a
//! CEF record carried as the MSG of one. Pure: an event in, bytes out.

use crate::alert::{Alert, Severity, What};
use crate::text::{text, Language};

/// Our SD-ID. An SD-ID of one's own must carry an IANA private enterprise
/// number; 32473 is the one RFC 5612 reserves for documentation and
/// examples, so it names no real organisation (mamori has none of its own).
pub const SD_ID: &str = "mamori@32473";

/// Largest message, header included. rsyslog's default `maxMessageSize`
/// (8 KiB) truncates beyond this on every transport, and RFC 5426 leaves
/// larger UDP datagrams to chance; under it, nothing is cut by anyone but us.
pub const MAX_MESSAGE: usize = 8 * 1024;

/// The longest value kept in one structured-data parameter or CEF
/// extension; a second, shorter try keeps the header and data well under
/// [`MAX_MESSAGE`] whatever paths an attacker chose.
const VALUE_MAX: [usize; 2] = [1024, 128];

/// UTF-8 byte order mark: RFC 5424 §6.4 says a MSG that starts with it is UTF-8.
const BOM: &str = "\u{feff}";

/// The facility's number, by the names syslog.conf and rsyslog use.
pub fn facility(name: &str) -> Option<u8> {
    Some(match name {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "ntp" => 12,
        "security" | "audit" => 13,
        "console" => 14,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    })
}

/// The syslog severity (RFC 5424 §6.2.1) of ours: an incident is `crit`,
/// not `alert` or `emerg`, which receivers page the whole team for even
/// when the host is fine.
pub fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// CEF's 0–10 scale.
pub fn cef_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 10,
        Severity::High => 8,
        Severity::Medium => 5,
        Severity::Low => 3,
        Severity::Info => 1,
    }
}

/// What goes in the header besides the event.
pub struct Header<'a> {
    pub facility: u8,
    pub app_name: &'a str,
    pub pid: u32,
}

/// An RFC 5424 message with our structured data and the English words.
pub fn rfc5424(alert: &Alert, h: &Header) -> Vec<u8> {
    let head = header(alert, h);
    let words = summary(alert);
    for max in VALUE_MAX {
        let sd = structured_data(alert, max);
        if head.len() + sd.len() + 1 + BOM.len() + 64 <= MAX_MESSAGE || max == VALUE_MAX[1] {
            let mut line = format!("{head}{sd} {BOM}");
            let room = MAX_MESSAGE.saturating_sub(line.len());
            line.push_str(&truncate_clean(&words, room));
            return line.into_bytes();
        }
    }
    unreachable!("the last try always returns")
}

/// A CEF record as the MSG of an RFC 5424 message without structured data
/// (ArcSight, QRadar and Sentinel's agent find `CEF:` at the start of MSG;
/// a BOM there would hide it).
pub fn cef(alert: &Alert, h: &Header) -> Vec<u8> {
    let head = format!("{}- ", header(alert, h));
    for max in VALUE_MAX {
        let record = cef_record(alert, max);
        if head.len() + record.len() + 64 <= MAX_MESSAGE || max == VALUE_MAX[1] {
            // The words go last, cut to what is left: escaping at most
            // doubles them, so half the room in raw bytes always fits.
            let room = MAX_MESSAGE.saturating_sub(head.len() + record.len() + " msg=".len());
            let words = summary(alert);
            let mut msg = escape_cef_extension(&truncate_clean(&words, room));
            if msg.len() > room {
                msg = escape_cef_extension(&truncate_clean(&words, room / 2));
            }
            return format!("{head}{record} msg={msg}").into_bytes();
        }
    }
    unreachable!("the last try always returns")
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID ` (with the space).
fn header(alert: &Alert, h: &Header) -> String {
    let pri = u16::from(h.facility) * 8 + u16::from(syslog_severity(alert.severity()));
    format!(
        "<{pri}>1 {} {} {} {} {} ",
        timestamp(alert.time_ns),
        header_field(&alert.host, 255),
        header_field(h.app_name, 48),
        h.pid,
        header_field(alert.kind(), 32),
    )
}

/// RFC 3339 in UTC with microseconds, the finest RFC 5424 allows.
fn timestamp(ns: u64) -> String {
    let ts = jiff::Timestamp::from_nanosecond(ns as i128).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    format!("{ts:.6}")
}

/// A header field: printable US-ASCII without spaces, at most `max`
/// characters, `-` when empty (RFC 5424 §6).
fn header_field(s: &str, max: usize) -> String {
    let f: String = s.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if f.is_empty() {
        "-".into()
    } else {
        f
    }
}

/// The event's facts by name, the same for structured data and (renamed) CEF.
pub(crate) struct Facts {
    pub(crate) incident: Option<String>,
    pub(crate) exe: Option<String>,
    pub(crate) pid: Option<u32>,
    pub(crate) uid: Option<u32>,
    pub(crate) files: Option<u64>,
    pub(crate) first_file: Option<String>,
    pub(crate) action: Option<&'static str>,
    pub(crate) client: Option<String>,
    pub(crate) client_user: Option<String>,
    pub(crate) client_machine: Option<String>,
    pub(crate) restore: Option<String>,
    pub(crate) failed: Option<u64>,
    pub(crate) cause: Option<&'static str>,
    pub(crate) check: Option<String>,
    pub(crate) target: Option<String>,
}

pub(crate) fn facts(alert: &Alert) -> Facts {
    let mut f = Facts {
        incident: None,
        exe: None,
        pid: None,
        uid: None,
        files: None,
        first_file: None,
        action: None,
        client: None,
        client_user: None,
        client_machine: None,
        restore: None,
        failed: None,
        cause: None,
        check: None,
        target: None,
    };
    match &alert.what {
        What::Incident { incident, restore_command } => {
            f.incident = Some(incident.id.clone());
            f.exe = Some(incident.actor.exe.clone());
            f.pid = Some(incident.actor.pid);
            f.uid = Some(incident.actor.uid);
            f.files = Some(incident.files.len() as u64);
            f.first_file = incident.files.first().map(|t| t.path.clone());
            f.action = Some(incident.action.as_str());
            if let Some(cut) = &incident.client {
                let c = &cut.client;
                f.client = Some(c.address.clone()).filter(|s| !s.is_empty());
                f.client_user = Some(c.user.clone()).filter(|s| !s.is_empty());
                f.client_machine = Some(c.machine.clone()).filter(|s| !s.is_empty());
            }
            f.restore = Some(restore_command.clone());
        }
        What::RestoreFinished { incident_id, restored, failed, .. } => {
            f.incident = Some(incident_id.clone());
            f.files = Some(*restored);
            f.failed = Some(*failed);
        }
        What::Degraded { cause, .. } => {
            f.cause = Some(match cause {
                crate::Cause::AgentStopping => "agent_stopping",
                crate::Cause::VaultSkipped => "vault_skipped",
                crate::Cause::QueueOverflow => "queue_overflow",
                crate::Cause::FolderGone => "folder_gone",
            });
        }
        What::Finding(finding) => {
            f.check = Some(finding.check.clone());
            f.target = Some(finding.target.clone());
        }
        What::Test => {}
    }
    f
}

/// `[mamori@32473 id="…" kind="…" …]`, each value cut to `max` bytes.
fn structured_data(alert: &Alert, max: usize) -> String {
    let f = facts(alert);
    let mut params: Vec<(&str, String)> =
        vec![("id", alert.id.clone()), ("kind", alert.kind().into()), ("severity", alert.severity().as_str().into())];
    let mut opt = |name, v: Option<String>| {
        if let Some(v) = v {
            params.push((name, v));
        }
    };
    opt("incident", f.incident);
    opt("exe", f.exe);
    opt("pid", f.pid.map(|v| v.to_string()));
    opt("uid", f.uid.map(|v| v.to_string()));
    opt("action", f.action.map(Into::into));
    opt("files", f.files.map(|v| v.to_string()));
    opt("failed", f.failed.map(|v| v.to_string()));
    opt("client", f.client);
    opt("clientUser", f.client_user);
    opt("clientMachine", f.client_machine);
    opt("restore", f.restore);
    opt("cause", f.cause.map(Into::into));
    opt("check", f.check);
    opt("target", f.target);
    let mut sd = format!("[{SD_ID}");
    for (name, value) in params {
        sd.push_str(&format!(" {name}=\"{}\"", escape_param_value(&truncate_clean(&value, max))));
    }
    sd.push(']');
    sd
}

/// RFC 5424 §6.3.3: inside a PARAM-VALUE, `"`, `\` and `]` are escaped
/// with a backslash; everything else is taken as it is.
pub fn escape_param_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The English title and the lines that are not lists, on one line.
fn summary(alert: &Alert) -> String {
    let t = text(alert, Language::En);
    let rest: Vec<&str> =
        t.lines.iter().filter(|l| !l.starts_with(' ')).map(|l| l.strip_prefix("- ").unwrap_or(l)).collect();
    one_line(&format!("{} — {}", t.title, rest.join(" ")))
}

/// Control characters (a file name may hold a newline) become spaces, so
/// the message stays one line in every receiver's file.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// At most `max` bytes of `s`, cut at a character boundary, with `…` when cut.
pub fn truncate_clean(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    const MORE: &str = "…";
    let mut end = max.saturating_sub(MORE.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    if max < MORE.len() {
        return String::new();
    }
    format!("{}{MORE}", &s[..end])
}

/// The CEF header's name of each kind: short, fixed, for a SIEM's rules.
fn cef_name(alert: &Alert) -> String {
    match &alert.what {
        What::Incident { .. } => "Ransomware detected and stopped".into(),
        What::RestoreFinished { .. } => "Restore finished".into(),
        What::Degraded { .. } => "Protection degraded".into(),
        What::Finding(f) => format!("Audit finding: {}", f.check),
        What::Test => "Test alert".into(),
    }
}

/// `CEF:0|mamori|mamori|VERSION|SIGNATURE|NAME|SEVERITY|EXTENSIONS`.
fn cef_record(alert: &Alert, max: usize) -> String {
    let f = facts(alert);
    let cut = |s: String| truncate_clean(&s, max);
    let mut ext: Vec<(&str, String)> = vec![
        ("rt", (alert.time_ns / 1_000_000).to_string()),
        ("externalId", alert.id.clone()),
        ("dvchost", cut(alert.host.clone())),
        ("dhost", cut(alert.host.clone())),
    ];
    let mut opt = |key, v: Option<String>| {
        if let Some(v) = v {
            ext.push((key, cut(v)));
        }
    };
    // The actor is the event's source: its program, pid and user; for an
    // SMB client, also the client's address, account and machine.
    opt("sproc", f.exe);
    opt("spid", f.pid.map(|v| v.to_string()));
    opt("suid", f.uid.map(|v| v.to_string()));
    opt("suser", f.client_user);
    opt("src", f.client);
    opt("shost", f.client_machine);
    opt("fname", f.first_file);
    opt("cnt", f.files.map(|v| v.to_string()));
    opt("act", f.action.map(Into::into));
    if let Some(id) = f.incident {
        opt("cs1Label", Some("incidentId".into()));
        opt("cs1", Some(id));
    }
    if let Some(cmd) = f.restore {
        opt("cs2Label", Some("restoreCommand".into()));
        opt("cs2", Some(cmd));
    }
    if let Some(cause) = f.cause {
        opt("cs3Label", Some("cause".into()));
        opt("cs3", Some(cause.into()));
    }
    if let Some(check) = f.check {
        opt("cs3Label", Some("check".into()));
        opt("cs3", Some(check));
    }
    if let Some(target) = f.target {
        opt("cs4Label", Some("target".into()));
        opt("cs4", Some(target));
    }
    if let Some(failed) = f.failed {
        opt("cn1Label", Some("failed".into()));
        opt("cn1", Some(failed.to_string()));
    }
    let extensions: Vec<String> = ext.into_iter().map(|(k, v)| format!("{k}={}", escape_cef_extension(&v))).collect();
    format!(
        "CEF:0|mamori|mamori|{}|{}|{}|{}|{}",
        escape_cef_header(env!("CARGO_PKG_VERSION")),
        escape_cef_header(alert.kind()),
        escape_cef_header(&truncate_clean(&cef_name(alert), max)),
        cef_severity(alert.severity()),
        extensions.join(" ")
    )
}

/// CEF header fields: `\` and `|` are escaped with a backslash; a header
/// cannot hold a line break, so one becomes a space.
pub fn escape_cef_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '\r' | '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// CEF extension values: `\` and `=` are escaped with a backslash, line
/// breaks are written `\n` and `\r`; `|` needs nothing here.
pub fn escape_cef_extension(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_values_escape_quote_backslash_and_bracket_only() {
        assert_eq!(escape_param_value(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(escape_param_value("[x] = 'y' ü"), "[x\\] = 'y' ü");
        assert_eq!(escape_param_value(""), "");
        // An escaped value never ends a parameter or the element early.
        let e = escape_param_value(r#"x\"]"#);
        assert_eq!(e, r#"x\\\"\]"#);
    }

    #[test]
    fn cef_header_escapes_pipe_and_backslash_and_drops_newlines() {
        assert_eq!(escape_cef_header(r"a|b\c"), r"a\|b\\c");
        assert_eq!(escape_cef_header("a\nb\rc"), "a b c");
        assert_eq!(escape_cef_header("a=b"), "a=b");
    }

    #[test]
    fn cef_extension_escapes_equals_backslash_and_newlines_but_not_pipes() {
        assert_eq!(escape_cef_extension(r"C:\x=1|2"), r"C:\\x\=1|2");
        assert_eq!(escape_cef_extension("a\nb\r"), r"a\nb\r");
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate_clean("abc", 3), "abc");
        assert_eq!(truncate_clean("abcdef", 5), "ab…");
        // "あ" is three bytes: never cut in the middle.
        let t = truncate_clean("ああああ", 8);
        assert_eq!(t, "あ…");
        assert!(t.len() <= 8);
        assert_eq!(truncate_clean("abc", 1), "");
    }

    #[test]
    fn facilities_by_name() {
        assert_eq!(facility("auth"), Some(4));
        assert_eq!(facility("local7"), Some(23));
        assert_eq!(facility("nope"), None);
    }

    #[test]
    fn a_huge_event_stays_within_the_limit() {
        let alert = Alert {
            id: "1-2-3".into(),
            time_ns: 1_700_000_000_123_456_789,
            host: "h".into(),
            what: What::Finding(crate::Finding {
                check: "c".repeat(20_000),
                severity: Severity::Low,
                target: "]".repeat(20_000),
                detail: "d".repeat(20_000),
                fix: "f".into(),
            }),
        };
        let h = Header { facility: 4, app_name: "mamori", pid: 1 };
        for bytes in [rfc5424(&alert, &h), cef(&alert, &h)] {
            assert!(bytes.len() <= MAX_MESSAGE, "{}", bytes.len());
            let s = String::from_utf8(bytes).unwrap();
            assert!(s.starts_with("<37>1 2023-11-14T22:13:20.123456Z h mamori 1 audit-finding "), "{s:.80}");
        }
    }
}
