//! Webhooks: a JSON POST per event, shaped for its receiver.
//!
//! - `json`: mamori's own object (id, time, host, kind, severity, title,
//!   lines) with the whole event under `alert`, for scripts and automation.
//! - `slack`: an incoming webhook's `text` (what notifications show) and
//!   `blocks` (header, the lines, a context line).
//! - `teams`: a message with an Adaptive Card (1.4), the shape a Teams
//!   Workflows (Power Automate) "post to a channel when a webhook request is
//!   received" flow takes. The Office 365 connectors' MessageCard is not
//!   sent: Microsoft retired those connectors.
//! - `google-chat`: a `text` message, title in `*bold*`.
//!
//! Any answer but 2xx is a failure, kept to try again; redirects are not
//! followed (see `http.rs`). The URL of a chat webhook is its password: it
//! may come from a file, and is never shown whole (`target()` and errors
//! name only scheme, host and port).

use std::time::Duration;

use serde_json::{json, Value};

use crate::alert::Alert;
use crate::config::{read_secret, Template, WebhookConfig};
use crate::http::{Client, Url};
use crate::output::Output;
use crate::text::{text, Language, Text};
use crate::{AlertError, Severity};

/// Most characters of one line in a chat message: a path can be 4 KiB,
/// and a chat shows a few lines, not a wall.
const MAX_LINE: usize = 500;
/// Slack allows 3,000 characters in a section's text.
const SLACK_SECTION: usize = 2900;
/// Slack allows 150 characters in a header.
const SLACK_HEADER: usize = 150;

struct Webhook {
    url: Url,
    template: Template,
    lang: Language,
    client: Client,
}

/// `[alerts.webhook]`, checked: a URL (or `url_file`) that is HTTP(S), and
/// a readable CA file if one is named.
pub fn output(c: &WebhookConfig, lang: Language) -> Result<Box<dyn Output>, AlertError> {
    let text = match (&c.url_file, c.url.trim().is_empty()) {
        (Some(_), false) => return Err(AlertError::config("webhook.url_file", "either url or url_file, not both")),
        (Some(path), true) => read_secret(path)?.trim().to_owned(),
        (None, false) => c.url.trim().to_owned(),
        (None, true) => return Err(AlertError::config("webhook.url", "missing (or set url_file)")),
    };
    let key = if c.url_file.is_some() { "webhook.url_file" } else { "webhook.url" };
    // The parse error never quotes the URL: it may be the secret itself.
    let url = Url::parse(&text).map_err(|p| AlertError::config(key, p))?;
    let client = Client::new("webhook", &url, c.ca_file.as_deref(), Duration::from_secs(c.timeout_seconds))?;
    Ok(Box::new(Webhook { url, template: c.template, lang: c.lang.unwrap_or(lang), client }))
}

/// The body a template makes of an event.
pub fn body(template: Template, alert: &Alert, lang: Language) -> Value {
    let words = text(alert, lang);
    match template {
        // `text` (title and lines in one string) is what Mattermost's and
        // Rocket.Chat's incoming webhooks show; the rest is for scripts.
        Template::Json => json!({
            "id": alert.id,
            "time": alert.time_rfc3339(),
            "host": alert.host,
            "kind": alert.kind(),
            "severity": alert.severity().as_str(),
            "incident": alert.incident_id(),
            "title": words.title,
            "lines": words.lines,
            "text": std::iter::once(&words.title).chain(&words.lines).cloned().collect::<Vec<_>>().join("\n"),
            "alert": alert,
        }),
        Template::Slack => slack(alert, &words, lang),
        Template::Teams => teams(alert, &words, lang),
        Template::GoogleChat => {
            let mut text = format!("*{}*", words.title);
            for line in &words.lines {
                text.push('\n');
                text.push_str(&clip_chars(line, MAX_LINE));
            }
            json!({ "text": text })
        }
    }
}

fn labels(lang: Language) -> [&'static str; 3] {
    match lang {
        Language::Ja => ["ホスト", "重要度", "ID"],
        Language::En => ["Host", "Severity", "ID"],
    }
}

fn slack(alert: &Alert, words: &Text, lang: Language) -> Value {
    // Slack's mrkdwn takes &, < and > as markup; a path may hold any of them.
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let lines: Vec<String> = words.lines.iter().map(|l| escape(&clip_chars(l, MAX_LINE))).collect();
    let [host, severity, id] = labels(lang);
    json!({
        "text": escape(&words.title),
        "blocks": [
            { "type": "header", "text": { "type": "plain_text", "text": clip_chars(&words.title, SLACK_HEADER) } },
            { "type": "section", "text": { "type": "mrkdwn", "text": clip_chars(&lines.join("\n"), SLACK_SECTION) } },
            { "type": "context", "elements": [ { "type": "mrkdwn", "text": format!(
                "{host}: {} | {severity}: {} | {id}: {}",
                escape(&alert.host), alert.severity().as_str(), escape(&alert.id)
            ) } ] },
        ],
    })
}

fn teams(alert: &Alert, words: &Text, lang: Language) -> Value {
    let urgent = alert.severity() >= Severity::High;
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": words.title,
        "weight": "Bolder",
        "size": "Medium",
        "wrap": true,
        "color": if urgent { "Attention" } else { "Default" },
    })];
    for line in &words.lines {
        body.push(json!({ "type": "TextBlock", "text": clip_chars(line, MAX_LINE), "wrap": true, "spacing": "None" }));
    }
    let [host, severity, id] = labels(lang);
    body.push(json!({
        "type": "FactSet",
        "facts": [
            { "title": host, "value": alert.host },
            { "title": severity, "value": alert.severity().as_str() },
            { "title": id, "value": alert.id },
        ],
    }));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
            },
        }],
    })
}

fn clip_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

impl Output for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    fn send(&mut self, alert: &Alert) -> Result<(), AlertError> {
        let body = serde_json::to_vec(&body(self.template, alert, self.lang)).expect("a JSON value always serialises");
        let answer = self
            .client
            .post(&self.url, "application/json", &[], &body)
            .map_err(|p| AlertError::send("webhook", format!("{}: {p}", self.target())))?;
        if answer.ok() {
            return Ok(());
        }
        let hint = if (300..400).contains(&answer.status) {
            " (redirects are not followed: configure the final URL)"
        } else {
            ""
        };
        Err(AlertError::send(
            "webhook",
            format!("{}: HTTP {}{hint}: {}", self.target(), answer.status, answer.excerpt()),
        ))
    }

    fn target(&self) -> String {
        format!("{}/…", self.url.origin())
    }

    fn probe(&mut self) -> Result<String, AlertError> {
        // HEAD, not POST: a chat would show whatever is posted. Any HTTP
        // answer proves the name resolves, the port answers and TLS
        // verifies; many webhooks answer HEAD with 4xx, which is fine here.
        let answer =
            self.client.head(&self.url).map_err(|p| AlertError::send("webhook", format!("{}: {p}", self.target())))?;
        Ok(format!("{} answers (HTTP {} to HEAD; no event posted)", self.target(), answer.status))
    }
}
