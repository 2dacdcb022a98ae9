//! E-mail through an SMTP server: one mail per event, in Japanese or
//! English, with the incident report attached as HTML.
//!
//! The connection is never weaker than configured: `starttls` refuses to
//! go on when the server does not offer STARTTLS (rather than sending the
//! alert, and the password, in clear), and the server's certificate must
//! chain to the system's roots or to `ca_file`. `none` is for a relay on
//! this host only.
//!
//! A mail's `Message-ID` comes from the event's id, so a mail sent again
//! after a lost reply is recognisable as the same event.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use mamori_report::{Case, FileOutcome, Format, Host};
use mamori_store::Incident;

use crate::config::{read_secret, EmailConfig, SmtpSecurity};
use crate::output::Output;
use crate::text::Language;
use crate::{Alert, AlertError, What};

const NAME: &str = "email";

/// The largest report attached; a larger one is left out (the body says
/// so and how to get it), because many servers refuse mails of 10 MiB and
/// more, and base64 adds a third.
pub const MAX_ATTACHMENT: usize = 5 << 20;

/// The e-mail output for `[alerts.email]`, checked: every address parses,
/// the secrets and the CA file are read now, so a mistake shows at start
/// and in `mamori check` rather than at the first incident.
pub fn output(c: &EmailConfig, lang: Language) -> Result<Box<dyn Output>, AlertError> {
    Ok(Box::new(Email::new(c, lang)?))
}

struct Email {
    transport: SmtpTransport,
    from: Mailbox,
    to: Vec<Mailbox>,
    lang: Language,
    attach_report: bool,
    security: SmtpSecurity,
    target: String,
    username: Option<String>,
    /// [`MAX_ATTACHMENT`]; smaller in tests.
    max_attachment: usize,
}

fn default_port(security: SmtpSecurity) -> u16 {
    match security {
        SmtpSecurity::Starttls => 587,
        SmtpSecurity::Tls => 465,
        SmtpSecurity::None => 25,
    }
}

impl Email {
    fn new(c: &EmailConfig, lang: Language) -> Result<Email, AlertError> {
        let server = c.server.trim();
        if server.is_empty() {
            return Err(AlertError::config(
                "email.server",
                "is empty: name the SMTP server (e.g. \"mail.example.jp\")",
            ));
        }
        let from: Mailbox = c
            .from
            .parse()
            .map_err(|e| AlertError::config("email.from", format!("{:?} is not an e-mail address: {e}", c.from)))?;
        if c.to.is_empty() {
            return Err(AlertError::config("email.to", "names no recipient"));
        }
        let to = c
            .to
            .iter()
            .map(|t| {
                t.parse().map_err(|e| AlertError::config("email.to", format!("{t:?} is not an e-mail address: {e}")))
            })
            .collect::<Result<Vec<Mailbox>, _>>()?;
        if c.timeout_seconds == 0 {
            return Err(AlertError::config("email.timeout_seconds", "must be at least 1"));
        }
        if c.port == Some(0) {
            return Err(AlertError::config("email.port", "must not be 0"));
        }
        let port = c.port.unwrap_or(default_port(c.security));

        let credentials = match (&c.username, &c.password_file) {
            (None, Some(_)) => {
                return Err(AlertError::config("email.password_file", "is set without `alerts.email.username`"))
            }
            (Some(_), None) => {
                return Err(AlertError::config("email.username", "needs `alerts.email.password_file` (the password)"))
            }
            (Some(_), Some(_)) if c.security == SmtpSecurity::None => return Err(AlertError::config(
                "email.username",
                "with `security = \"none\"` the password would cross the network in clear: use \"starttls\" or \"tls\"",
            )),
            (Some(user), Some(file)) => Some(Credentials::new(user.clone(), read_secret(file)?)),
            (None, None) => None,
        };

        let tls = match c.security {
            SmtpSecurity::None => {
                if c.ca_file.is_some() {
                    return Err(AlertError::config("email.ca_file", "has no use with `security = \"none\"`"));
                }
                Tls::None
            }
            SmtpSecurity::Starttls => Tls::Required(tls_parameters(server, c.ca_file.as_deref())?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(server, c.ca_file.as_deref())?),
        };
        // Not `relay()`/`starttls_relay()`: those pick the system roots and the
        // port themselves; every choice here comes from the config.
        let mut builder = SmtpTransport::builder_dangerous(server)
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(c.timeout_seconds)));
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        let target = match c.security {
            SmtpSecurity::Starttls => format!("smtp://{server}:{port} (STARTTLS)"),
            SmtpSecurity::Tls => format!("smtps://{server}:{port}"),
            SmtpSecurity::None => format!("smtp://{server}:{port} (no TLS)"),
        };
        Ok(Email {
            transport: builder.build(),
            from,
            to,
            lang: c.lang.unwrap_or(lang),
            attach_report: c.attach_report,
            security: c.security,
            target,
            username: c.username.clone(),
            max_attachment: MAX_ATTACHMENT,
        })
    }

    /// Says what went wrong in words that point at the fix; lettre's own
    /// words for the two mistakes people make most are too terse.
    fn error(&self, e: lettre::transport::smtp::Error) -> AlertError {
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let said = s.to_string();
            if !why.contains(&said) {
                why = format!("{why}: {said}");
            }
            source = s.source();
        }
        if self.security == SmtpSecurity::Starttls && e.is_client() && why.contains("STARTTLS") {
            why = "the server does not offer STARTTLS; refusing to send in clear (use `security = \"tls\"` for \
                   port 465, or `\"none\"` only for a relay on this host)"
                .to_owned();
        } else if e.is_tls() || why.contains("certificate") {
            why = format!(
                "{why} (is the server's certificate issued for this name by a CA in `ca_file` or the system's roots?)"
            );
        }
        AlertError::send(NAME, format!("{}: {why}", self.target))
    }

    fn message(&self, alert: &Alert) -> Result<Message, AlertError> {
        let words = crate::text::text(alert, self.lang);
        let ja = self.lang == Language::Ja;
        let mut body = words.lines.join("\n");
        body.push_str("\n\n");

        let mut attachment = None;
        if let What::Incident { incident, .. } = &alert.what {
            let id = &incident.id;
            let command =
                format!("mamori report {id} --lang {} --format html --out report.html", if ja { "ja" } else { "en" });
            if self.attach_report {
                let html = mamori_report::render(&case(alert, incident), self.lang.into(), Format::Html);
                if html.len() <= self.max_attachment {
                    attachment = Some((report_file_name(id, self.lang), html));
                    body.push_str(&if ja {
                        format!("インシデントレポートを添付しました。証拠と復元の結果を含む完全なレポートは、あとで次のコマンドで作れます:\n  {command}\n")
                    } else {
                        format!("The incident report is attached. The full report, with the evidence and what restore did, can be made later with:\n  {command}\n")
                    });
                } else {
                    body.push_str(&if ja {
                        format!(
                            "インシデントレポートは大きすぎるため ({}) 添付していません。次のコマンドで作れます:\n  {command}\n",
                            size(html.len())
                        )
                    } else {
                        format!(
                            "The incident report is too large to attach ({}). Make it with:\n  {command}\n",
                            size(html.len())
                        )
                    });
                }
            } else {
                body.push_str(&if ja {
                    format!("インシデントレポートは次のコマンドで作れます:\n  {command}\n")
                } else {
                    format!("The incident report can be made with:\n  {command}\n")
                });
            }
            body.push('\n');
        }
        body.push_str(&if ja {
            format!("ホスト: {}\n時刻: {}\nイベント ID: {}\n", alert.host, alert.time_rfc3339(), alert.id)
        } else {
            format!("Host: {}\nTime: {}\nEvent id: {}\n", alert.host, alert.time_rfc3339(), alert.id)
        });

        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(words.title)
            .date(UNIX_EPOCH + Duration::from_nanos(alert.time_ns))
            .message_id(Some(message_id(alert)))
            // RFC 3834: an out-of-office reply to an alert helps no one.
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-generated".into()));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let text = SinglePart::plain(body);
        let built = match attachment {
            None => builder.singlepart(text),
            Some((name, html)) => {
                let html_type = ContentType::parse("text/html; charset=utf-8").expect("a valid content type");
                builder.multipart(
                    MultiPart::mixed().singlepart(text).singlepart(Attachment::new(name).body(html, html_type)),
                )
            }
        };
        built.map_err(|e| AlertError::send(NAME, format!("cannot build the mail: {e}")))
    }
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{bytes} bytes")
    }
}

fn tls_parameters(server: &str, ca_file: Option<&Path>) -> Result<TlsParameters, AlertError> {
    let mut builder = TlsParameters::builder(server.to_owned());
    if ca_file.is_some() {
        // The CA named is the only one trusted, as for every other output's `ca_file`.
        builder = builder.certificate_store(CertificateStore::None);
        for der in crate::tls::ca_roots(ca_file).map_err(|p| AlertError::config("email.ca_file", p))? {
            let cert = Certificate::from_der(der.to_vec())
                .map_err(|e| AlertError::config("email.ca_file", format!("TLS setup: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build_rustls().map_err(|e| AlertError::config("email.ca_file", format!("TLS setup: {e}")))
}

/// `<ID.mamori@HOST>`: the same event gives the same id, whichever try
/// delivered it. Characters a msg-id cannot hold become `-`.
fn message_id(alert: &Alert) -> String {
    fn clean(s: &str) -> String {
        let s: String =
            s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' }).collect();
        s.trim_matches('.').to_owned()
    }
    let host = clean(&alert.host);
    let host = if host.is_empty() { "localhost".to_owned() } else { host };
    format!("<{}.mamori@{host}>", clean(&alert.id))
}

fn report_file_name(incident_id: &str, lang: Language) -> String {
    let id: String =
        incident_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("mamori-{id}-{}.html", if lang == Language::Ja { "ja" } else { "en" })
}

/// The report's input from what the event carries: the incident and the
/// host. The timeline, evidence, family and restore outcomes are not in
/// the event (and restore has not run yet); the full report has them.
fn case(alert: &Alert, incident: &Incident) -> Case {
    Case {
        incident: incident.clone(),
        timeline: Vec::new(),
        // The queue is on the host the event happened on, so its kernel and OS are this one's.
        host: Host { hostname: alert.host.clone(), ..Host::this_machine() },
        files: incident
            .files
            .iter()
            .map(|f| FileOutcome { path: f.path.clone(), op: f.op, to: f.to.clone(), restored: None })
            .collect(),
        family: None,
        candidates: Vec::new(),
        notes: Vec::new(),
        exe_sha256: None,
        remote_addrs: Vec::new(),
        isolation: incident.notes.iter().find(|n| n.starts_with("network isolation")).cloned(),
        evidence: None,
        timezone: jiff::tz::TimeZone::system().iana_name().map(str::to_owned),
    }
}

impl Output for Email {
    fn name(&self) -> &'static str {
        NAME
    }

    fn send(&mut self, alert: &Alert) -> Result<(), AlertError> {
        let message = self.message(alert)?;
        self.transport.send(&message).map_err(|e| self.error(e))?;
        Ok(())
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    fn probe(&mut self) -> Result<String, AlertError> {
        // Connects, EHLO, STARTTLS or TLS with the certificate checked, AUTH
        // when configured, then NOOP and QUIT: everything a send does but the mail.
        match self.transport.test_connection() {
            Ok(true) => {
                let how = match self.security {
                    SmtpSecurity::Starttls => "STARTTLS, certificate verified",
                    SmtpSecurity::Tls => "TLS, certificate verified",
                    SmtpSecurity::None => "no encryption",
                };
                Ok(match &self.username {
                    Some(user) => format!("{}: EHLO ok ({how}), logged in as {user}", self.target),
                    None => format!("{}: EHLO ok ({how})", self.target),
                })
            }
            Ok(false) => Err(AlertError::send(NAME, format!("{}: the server did not answer NOOP", self.target))),
            Err(e) => Err(self.error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EmailConfig {
        EmailConfig {
            server: "mail.example.jp".into(),
            from: "mamori <mamori@example.jp>".into(),
            to: vec!["ops@example.jp".into()],
            ..EmailConfig::default()
        }
    }

    fn key_of(r: Result<Email, AlertError>) -> String {
        match r {
            Err(AlertError::Config { key, .. }) => key,
            Err(e) => panic!("not a config error: {e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn a_bad_config_names_its_key() {
        let lang = Language::En;
        assert_eq!(key_of(Email::new(&EmailConfig { server: " ".into(), ..config() }, lang)), "email.server");
        assert_eq!(key_of(Email::new(&EmailConfig { from: "nobody".into(), ..config() }, lang)), "email.from");
        assert_eq!(key_of(Email::new(&EmailConfig { to: vec![], ..config() }, lang)), "email.to");
        assert_eq!(
            key_of(Email::new(&EmailConfig { to: vec!["ops@example.jp".into(), "a b".into()], ..config() }, lang)),
            "email.to"
        );
        assert_eq!(
            key_of(Email::new(&EmailConfig { password_file: Some("/nonexistent".into()), ..config() }, lang)),
            "email.password_file"
        );
        assert_eq!(key_of(Email::new(&EmailConfig { username: Some("u".into()), ..config() }, lang)), "email.username");
        assert_eq!(
            key_of(Email::new(&EmailConfig { ca_file: Some("/nonexistent.pem".into()), ..config() }, lang)),
            "email.ca_file"
        );
        assert_eq!(key_of(Email::new(&EmailConfig { timeout_seconds: 0, ..config() }, lang)), "email.timeout_seconds");
        let shown = Email::new(&EmailConfig { to: vec![], ..config() }, lang).err().unwrap().to_string();
        assert!(shown.starts_with("`alerts.email.to`"), "{shown}");
    }

    #[test]
    fn ports_follow_security() {
        for (security, port) in [
            (SmtpSecurity::Starttls, "587 (STARTTLS)"),
            (SmtpSecurity::Tls, "465"),
            (SmtpSecurity::None, "25 (no TLS)"),
        ] {
            let e = Email::new(&EmailConfig { security, ..config() }, Language::En).unwrap();
            assert!(e.target.ends_with(&format!("mail.example.jp:{port}")), "{}", e.target);
        }
        let e = Email::new(&EmailConfig { port: Some(2525), ..config() }, Language::En).unwrap();
        assert_eq!(e.target, "smtp://mail.example.jp:2525 (STARTTLS)");
    }

    fn incident() -> Alert {
        let incident: Incident = serde_json::from_value(serde_json::json!({
            "id": "INC-0007", "detected_at": "2026-12-04T02:00:00Z",
            "actor": {"pid": 7, "start": 1, "exe": "/tmp/enc", "cmdline": ["/tmp/enc"], "uid": 1000},
            "pids": [7], "procs": [{"pid": 7, "start": 1}], "action": "suspended", "score": 90.0,
            "reasons": [], "files": [{"path": "/srv/a.docx", "op": "write"}], "protected": ["/srv"],
            "stop_latency_us": null, "notes": []
        }))
        .unwrap();
        Alert::new(What::Incident { incident: Box::new(incident), restore_command: "mamori restore INC-0007".into() })
    }

    fn formatted(e: &Email, alert: &Alert) -> String {
        String::from_utf8(e.message(alert).unwrap().formatted()).unwrap()
    }

    #[test]
    fn a_report_too_large_is_left_out_and_the_body_says_how_to_get_it() {
        let mut e = Email::new(&config(), Language::En).unwrap();
        let alert = incident();
        let attached = formatted(&e, &alert);
        assert!(attached.contains("filename=\"mamori-INC-0007-en.html\""), "{attached}");
        assert!(attached.contains("The incident report is attached."));
        assert!(attached.contains("Content-Disposition: attachment"), "{attached}");

        e.max_attachment = 100;
        let left_out = formatted(&e, &alert);
        assert!(!left_out.contains("Content-Disposition: attachment"), "{left_out}");
        assert!(left_out.contains("The incident report is too large to attach ("), "{left_out}");
        assert!(left_out.contains("mamori report INC-0007 --lang en --format html --out report.html"), "{left_out}");
    }

    #[test]
    fn only_incidents_carry_a_report() {
        let e = Email::new(&config(), Language::En).unwrap();
        let mail = formatted(&e, &Alert::new(What::Test));
        assert!(!mail.contains("multipart"), "{mail}");
        assert!(!mail.contains("mamori report"), "{mail}");
    }

    #[test]
    fn message_id_is_the_events_and_well_formed() {
        let mut alert = Alert::new(What::Test);
        alert.host = "srv 01_東京".into();
        alert.id = "18a-2f-0".into();
        assert_eq!(message_id(&alert), "<18a-2f-0.mamori@srv-01--->");
        alert.host = String::new();
        assert_eq!(message_id(&alert), "<18a-2f-0.mamori@localhost>");
    }
}
