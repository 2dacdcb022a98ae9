//! `[alerts]` in mamori.toml: one table per output, each off unless present.
//! Every key but an output's address has a default; secrets may come from a
//! file (`*_file`), so the config itself can be world-readable.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::text::Language;
use crate::AlertError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// The language of the words sent (e-mail, chat, the journal), unless an output says otherwise.
    pub lang: Language,
    /// Longest pause between two tries of an output that is down (seconds).
    pub retry_max_seconds: u64,
    /// Most events kept on disk for outputs that are down; beyond, the oldest go.
    pub queue_max_events: u64,
    pub syslog: Option<SyslogConfig>,
    pub cef: Option<SyslogConfig>,
    pub journal: Option<JournalConfig>,
    pub ecs: Option<EcsFileConfig>,
    pub elasticsearch: Option<ElasticConfig>,
    pub webhook: Option<WebhookConfig>,
    pub email: Option<EmailConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            lang: Language::En,
            retry_max_seconds: 60,
            queue_max_events: 10_000,
            syslog: None,
            cef: None,
            journal: None,
            ecs: None,
            elasticsearch: None,
            webhook: None,
            email: None,
        }
    }
}

/// A syslog receiver: `udp://HOST:PORT`, `tcp://HOST:PORT` or `tls://HOST:PORT`
/// (RFC 5426, RFC 6587 octet counting, RFC 5425).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogConfig {
    /// Where to send: `udp://HOST:PORT`, `tcp://HOST:PORT` or `tls://HOST:PORT`
    /// (an IPv6 address in brackets). Over TLS, the certificate must name HOST.
    pub url: String,
    /// PEM certificates the receiver's certificate must chain to (TLS);
    /// the system's when absent.
    pub ca_file: Option<PathBuf>,
    /// The syslog facility, by name (`auth`, `authpriv`, `daemon`, `local0`…).
    pub facility: String,
    /// The APP-NAME of each message (1 to 48 printable ASCII characters).
    pub app_name: String,
    /// Longest wait to connect (and shake hands) and to write one message.
    pub timeout_seconds: u64,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            url: String::new(),
            ca_file: None,
            facility: "auth".into(),
            app_name: "mamori".into(),
            timeout_seconds: 5,
        }
    }
}

/// The local journal (its native socket).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JournalConfig {
    /// The language of the journal's words; the alerts' when absent.
    pub lang: Option<Language>,
    /// journald's native socket, when not `/run/systemd/journal/socket`:
    /// for tests, and for a container that mounts the host's socket elsewhere.
    pub socket: Option<PathBuf>,
}

/// ECS JSON, one object a line, appended to a file for a shipper.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EcsFileConfig {
    /// An absolute path; its directory is made (0750) if missing, the file is 0640.
    pub path: PathBuf,
    /// The file is renamed to `PATH.1` (one generation) when it would grow
    /// beyond this; 0: never here (another tool, such as logrotate, rotates it).
    pub max_mib: u64,
}

impl Default for EcsFileConfig {
    fn default() -> Self {
        EcsFileConfig { path: PathBuf::from("/var/log/mamori/alerts.json"), max_mib: 100 }
    }
}

/// An Elasticsearch or OpenSearch `_bulk` endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElasticConfig {
    /// The cluster's base URL (`https://es.example:9200`).
    pub url: String,
    /// The index or data stream (documents are sent with `create`, which both take).
    pub index: String,
    /// A file holding an API key in its encoded form (`Authorization: ApiKey …`).
    pub api_key_file: Option<PathBuf>,
    /// For basic authentication, with `password_file`; not with `api_key_file`.
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// PEM certificates the cluster's certificate must chain to; the system's when absent.
    pub ca_file: Option<PathBuf>,
    /// The whole exchange (connect, TLS, request, answer) must end within this.
    pub timeout_seconds: u64,
}

impl Default for ElasticConfig {
    fn default() -> Self {
        ElasticConfig {
            url: String::new(),
            index: "mamori-alerts".into(),
            api_key_file: None,
            username: None,
            password_file: None,
            ca_file: None,
            timeout_seconds: 10,
        }
    }
}

/// The shape of a webhook's body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Template {
    /// The event as mamori's own JSON.
    #[default]
    Json,
    Slack,
    Teams,
    #[serde(rename = "google-chat", alias = "googlechat")]
    GoogleChat,
}

/// An HTTP(S) endpoint that gets a JSON POST per event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://`; only scheme, host and port are ever shown.
    pub url: String,
    /// A file holding the URL instead (chat webhook URLs are secrets); read
    /// when mamori starts.
    pub url_file: Option<PathBuf>,
    pub template: Template,
    /// The language of the words; `alerts.lang` when absent.
    pub lang: Option<Language>,
    /// PEM certificates the receiver's certificate must chain to; the system's when absent.
    pub ca_file: Option<PathBuf>,
    /// The whole exchange (connect, TLS, request, answer) must end within this.
    pub timeout_seconds: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            url: String::new(),
            url_file: None,
            template: Template::Json,
            lang: None,
            ca_file: None,
            timeout_seconds: 5,
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS (refused if the server cannot).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on this host (`localhost:25`), where
    /// the mail does not cross a network; no login is allowed with it.
    None,
}

/// E-mail through an SMTP server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP server's name (checked against its certificate) or address.
    pub server: String,
    /// 587 for `starttls`, 465 for `tls`, 25 for `none` when absent.
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    /// The sender, `mamori@example.jp` or `mamori <mamori@example.jp>`.
    pub from: String,
    /// One or more recipients, each as `from`.
    pub to: Vec<String>,
    /// Log in (AUTH PLAIN or LOGIN) as this user; needs `password_file`.
    pub username: Option<String>,
    /// The file holding the password (its first line), readable by root only.
    pub password_file: Option<PathBuf>,
    /// The mail's language, when not `alerts.lang`.
    pub lang: Option<Language>,
    /// Attach the incident report (HTML) to an incident's mail.
    pub attach_report: bool,
    /// PEM certificates the server's certificate must chain to (a company
    /// CA); only these are then trusted. The system's roots when absent.
    pub ca_file: Option<PathBuf>,
    /// Bounds connecting and each wait for the server's reply (seconds).
    pub timeout_seconds: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            server: String::new(),
            port: None,
            security: SmtpSecurity::Starttls,
            from: String::new(),
            to: Vec::new(),
            username: None,
            password_file: None,
            lang: None,
            attach_report: true,
            ca_file: None,
            timeout_seconds: 15,
        }
    }
}

/// Reads a secret from a file, trimmed of the line end; the file's contents
/// are never shown in an error.
pub fn read_secret(path: &Path) -> Result<String, AlertError> {
    let err = |source| AlertError::Secret { path: path.to_owned(), source };
    let bytes = read_regular(path, MAX_SECRET).map_err(err)?;
    let text = String::from_utf8(bytes).map_err(|_| err(std::io::Error::other("not UTF-8 text")))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// Largest secret file read.
const MAX_SECRET: u64 = 64 << 10;

/// Reads a file the config names (a secret, a CA bundle): a regular file
/// of at most `max` bytes. Opened without blocking, so a FIFO put there
/// fails instead of holding the output's thread.
pub(crate) fn read_regular(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!("larger than {} KiB", max >> 10)));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_file_must_be_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Without O_NONBLOCK this open would wait for a writer forever.
        let err = read_regular(&fifo, 1024).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 2048]).unwrap();
        assert!(read_regular(&big, 1024).unwrap_err().to_string().contains("larger than 1 KiB"));
        std::fs::write(&big, "s3cret\n").unwrap();
        assert_eq!(read_secret(&big).unwrap(), "s3cret");
    }
}
