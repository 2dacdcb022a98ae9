//! The webhook output against a real HTTP server on a loopback port: what
//! each template posts, what counts as delivered, and what never leaks.

mod http_support;

use std::time::{Duration, Instant};

use mamori_alert::config::{Template, WebhookConfig};
use mamori_alert::{outputs, Alert, AlertsConfig, Language, Output, What};

use http_support::{incident_alert, Recorder, Reply, FIRST_FILE};

const SECRET_PATH: &str = "/services/T000/B000/XyzSecretToken";

fn webhook(c: WebhookConfig, lang: Language) -> Box<dyn Output> {
    let config = AlertsConfig { lang, webhook: Some(c), ..AlertsConfig::default() };
    outputs(&config).expect("a valid webhook config").pop().unwrap()
}

fn config(url: String, template: Template) -> WebhookConfig {
    WebhookConfig { url, template, timeout_seconds: 3, ..WebhookConfig::default() }
}

/// Sends `alert` with `template` to a server that answers 200, and returns
/// what arrived.
fn post(template: Template, lang: Language, alert: &Alert) -> http_support::Request {
    let server = Recorder::start(|_| Reply::status(200, "ok"));
    let mut out = webhook(config(server.url(SECRET_PATH), template), lang);
    out.send(alert).expect("delivered");
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "exactly one request");
    let r = requests.into_iter().next().unwrap();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, SECRET_PATH);
    assert_eq!(r.header("content-type"), Some("application/json"));
    r
}

#[test]
fn json_template_carries_the_words_and_the_event() {
    let alert = incident_alert();
    let body = post(Template::Json, Language::En, &alert).json();
    assert_eq!(body["id"], alert.id.as_str());
    assert_eq!(body["kind"], "incident");
    assert_eq!(body["severity"], "critical");
    assert_eq!(body["host"], alert.host.as_str());
    assert_eq!(body["incident"], "INC-0042");
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with(body["title"].as_str().unwrap()) && text.contains(FIRST_FILE), "{body}");
    assert!(body["time"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok());
    assert!(body["title"].as_str().unwrap().contains("ransomware detected and stopped (INC-0042)"), "{body}");
    let lines: Vec<&str> = body["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert!(lines.iter().any(|l| l.contains(FIRST_FILE)), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("mamori restore INC-0042")), "{lines:?}");
    // The event itself, as the queue holds it: a script can read every field.
    let back: Alert = serde_json::from_value(body["alert"].clone()).expect("the event round-trips");
    assert_eq!(back, alert);
}

#[test]
fn slack_template_has_text_and_blocks_with_markup_escaped() {
    let body = post(Template::Slack, Language::En, &incident_alert()).json();
    assert!(body["text"].as_str().unwrap().contains("ransomware detected"), "{body}");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
    assert_eq!(blocks[1]["type"], "section");
    assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
    let section = blocks[1]["text"]["text"].as_str().unwrap();
    assert!(section.contains(FIRST_FILE), "{section}");
    // `<c>&d.txt` would be a Slack link and an entity if sent raw.
    assert!(section.contains("&lt;c&gt;&amp;d.txt"), "{section}");
    assert!(!section.contains("<c>"), "{section}");
    assert_eq!(blocks[2]["type"], "context");
    assert!(blocks[2]["elements"][0]["text"].as_str().unwrap().contains("critical"));
}

#[test]
fn teams_template_is_a_message_with_an_adaptive_card() {
    let body = post(Template::Teams, Language::En, &incident_alert()).json();
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
    let card = &attachment["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    assert_eq!(card["$schema"], "http://adaptivecards.io/schemas/adaptive-card.json");
    let items = card["body"].as_array().unwrap();
    assert_eq!(items[0]["type"], "TextBlock");
    assert_eq!(items[0]["weight"], "Bolder");
    assert_eq!(items[0]["color"], "Attention", "a critical event stands out");
    assert!(items[0]["text"].as_str().unwrap().contains("INC-0042"));
    assert!(items.iter().all(|i| i["type"] == "TextBlock" || i["type"] == "FactSet"), "{card}");
    let facts = &items.last().unwrap()["facts"];
    assert_eq!(facts[2]["title"], "ID");
    assert!(items.iter().any(|i| i["text"].as_str().is_some_and(|t| t.contains(FIRST_FILE))));
}

#[test]
fn google_chat_template_is_text_with_a_bold_title() {
    let body = post(Template::GoogleChat, Language::En, &incident_alert()).json();
    let text = body["text"].as_str().unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.starts_with('*') && first.ends_with('*'), "{first}");
    assert!(text.contains(FIRST_FILE), "{text}");
    assert_eq!(body.as_object().unwrap().len(), 1, "only `text`: {body}");
}

#[test]
fn japanese_words_arrive_intact() {
    for template in [Template::Json, Template::Slack, Template::Teams, Template::GoogleChat] {
        let request = post(template, Language::Ja, &incident_alert());
        // As bytes on the wire: UTF-8, not escaped into \u sequences a
        // receiver might show raw.
        let raw = std::str::from_utf8(&request.body).expect("UTF-8 body");
        assert!(raw.contains("ランサムウェアを検知し停止しました"), "{template:?}: {raw}");
        assert!(raw.contains("経理/請求書 2024.xlsx"), "{template:?}: {raw}");
        request.json();
    }
}

#[test]
fn the_config_language_yields_to_the_webhooks_own() {
    let server = Recorder::start(|_| Reply::status(200, "ok"));
    let c = WebhookConfig { lang: Some(Language::Ja), ..config(server.url("/x"), Template::GoogleChat) };
    webhook(c, Language::En).send(&Alert::new(What::Test)).unwrap();
    let text = server.requests()[0].json()["text"].as_str().unwrap().to_owned();
    assert!(text.contains("テスト通知"), "{text}");
}

#[test]
fn an_error_status_fails_with_a_bounded_excerpt_and_no_secret() {
    let server = Recorder::start(|_| Reply::status(500, &"overloaded ".repeat(500)));
    let mut out = webhook(config(server.url(SECRET_PATH), Template::Slack), Language::En);
    let err = out.send(&incident_alert()).expect_err("500 is not delivered").to_string();
    assert!(err.contains("HTTP 500"), "{err}");
    assert!(err.contains("overloaded"), "{err}");
    assert!(err.len() < 600, "{} bytes: {err}", err.len());
    assert!(!err.contains("XyzSecretToken"), "{err}");
    let target = out.target();
    assert_eq!(target, format!("http://{}/…", server.addr));
    assert!(!target.contains("services"), "{target}");
}

#[test]
fn a_redirect_is_not_followed_and_fails() {
    let server = Recorder::start(|_| Reply::Status {
        status: 302,
        content_type: "text/plain",
        body: String::new(),
        extra: vec![("Location".into(), "/elsewhere".into())],
    });
    let mut out = webhook(config(server.url("/hook"), Template::Json), Language::En);
    let err = out.send(&incident_alert()).expect_err("a redirect is not delivery").to_string();
    assert!(err.contains("HTTP 302") && err.contains("not followed"), "{err}");
    let paths: Vec<String> = server.wait_for(2, Duration::from_millis(300)).into_iter().map(|r| r.path).collect();
    assert_eq!(paths, vec!["/hook".to_string()]);
}

#[test]
fn a_hanging_receiver_costs_the_timeout_only() {
    let server = Recorder::start(|_| Reply::Hang);
    let mut out =
        webhook(WebhookConfig { timeout_seconds: 1, ..config(server.url("/x"), Template::Json) }, Language::En);
    let start = Instant::now();
    let err = out.send(&incident_alert()).expect_err("no answer is no delivery").to_string();
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "took {took:?}: {err}");
}

#[test]
fn a_closed_port_fails_at_once() {
    let port = http_support::closed_port();
    let mut out = webhook(config(format!("http://127.0.0.1:{port}/x"), Template::Json), Language::En);
    let start = Instant::now();
    assert!(out.send(&incident_alert()).is_err());
    assert!(out.probe().is_err());
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn url_file_is_read_and_trimmed() {
    let server = Recorder::start(|_| Reply::status(204, ""));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("webhook-url");
    std::fs::write(&file, format!("{}\n", server.url(SECRET_PATH))).unwrap();
    let c = WebhookConfig { url_file: Some(file), ..config(String::new(), Template::Json) };
    let mut out = webhook(c, Language::En);
    assert!(!out.target().contains("Secret"), "{}", out.target());
    out.send(&Alert::new(What::Test)).expect("204 is delivered");
    assert_eq!(server.requests()[0].path, SECRET_PATH);
}

#[test]
fn bad_configs_are_refused_without_quoting_the_url() {
    let config_err = |c: WebhookConfig| {
        let config = AlertsConfig { webhook: Some(c), ..AlertsConfig::default() };
        outputs(&config).err().expect("refused").to_string()
    };
    let err = config_err(config("ftp://host/SecretPath".into(), Template::Json));
    assert!(err.contains("webhook.url") && !err.contains("SecretPath"), "{err}");
    assert!(config_err(WebhookConfig::default()).contains("webhook.url"));
    let both = WebhookConfig { url_file: Some("/nonexistent".into()), ..config("http://x/".into(), Template::Json) };
    assert!(config_err(both).contains("not both"));
    let missing = WebhookConfig { url_file: Some("/nonexistent/url".into()), ..WebhookConfig::default() };
    assert!(config_err(missing).contains("/nonexistent/url"));
}

#[test]
fn probe_asks_with_head_and_posts_nothing() {
    let server = Recorder::start(|_| Reply::status(405, "POST only"));
    let mut out = webhook(config(server.url(SECRET_PATH), Template::Slack), Language::En);
    let said = out.probe().expect("any HTTP answer means reachable");
    assert!(said.contains("HTTP 405"), "{said}");
    assert!(!said.contains("XyzSecretToken"), "{said}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "HEAD");
    assert!(requests[0].body.is_empty());
}

/// A certificate for 127.0.0.1 made by `openssl` (its own CA), and a TLS
/// server answering one request per connection with 200.
mod tls {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    fn openssl(args: &[&str], dir: &Path) {
        let out =
            Command::new("openssl").args(args).current_dir(dir).output().expect("openssl (Debian package openssl)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A CA, and a certificate for 127.0.0.1 it signed: returns (CA, cert, key).
    pub fn certificate(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &["-days", "1", "-subj", "/CN=mamori test CA", "-keyout", "ca.key", "-out", "ca.pem"],
            ]
            .concat(),
            dir,
        );
        openssl(
            &[&["req", "-new"][..], &ec, &["-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "req.csr"]].concat(),
            dir,
        );
        std::fs::write(dir.join("ext.cnf"), "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1\n")
            .unwrap();
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "req.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "ext.cnf",
                "-out",
                "cert.pem",
            ],
            dir,
        );
        (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"))
    }

    /// Serves until the test ends; returns the port and the bodies received.
    pub fn serve(cert: &Path, key: &Path) -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(cert).unwrap().map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let got = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for conn in listener.incoming().take(8) {
                let Ok(conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(tls) = rustls::ServerConnection::new(Arc::clone(&config)) else { continue };
                let mut stream = BufReader::new(rustls::StreamOwned::new(tls, conn));
                let mut len = 0;
                let mut line = String::new();
                loop {
                    line.clear();
                    if stream.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        let mut body = vec![0; len];
                        if stream.read_exact(&mut body).is_ok() {
                            got.lock().unwrap().push(body);
                            let _ = stream
                                .get_mut()
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                        }
                        break;
                    }
                }
            }
        });
        (port, bodies)
    }
}

#[test]
fn https_verifies_the_receiver_against_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls::certificate(dir.path());
    let (port, bodies) = tls::serve(&cert, &key);
    let url = format!("https://127.0.0.1:{port}/hook");

    let c = WebhookConfig { ca_file: Some(ca), ..config(url.clone(), Template::Json) };
    let mut out = webhook(c, Language::En);
    out.send(&Alert::new(What::Test)).expect("delivered over TLS to a receiver the CA file vouches for");
    let got = bodies.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&got[0]).unwrap()["kind"], "test");
    assert!(out.target().starts_with("https://127.0.0.1:"));

    // The system's roots do not know this CA: refused (on a host with no
    // roots at all, the config is refused instead, which is checked too).
    let system = outputs(&AlertsConfig { webhook: Some(config(url, Template::Json)), ..AlertsConfig::default() });
    match system {
        Ok(mut all) => {
            let err = all[0].send(&Alert::new(What::Test)).expect_err("an unknown issuer is refused").to_string();
            assert!(err.contains("UnknownIssuer"), "{err}");
        }
        Err(e) => assert!(e.to_string().contains("no CA certificates"), "{e}"),
    }
    assert_eq!(bodies.lock().unwrap().len(), 1, "nothing reached the receiver without verification");

    let bad = dir.path().join("not-a-cert.pem");
    std::fs::write(&bad, "hello").unwrap();
    let config_err = outputs(&AlertsConfig {
        webhook: Some(WebhookConfig { ca_file: Some(bad), ..config("https://127.0.0.1:1/".into(), Template::Json) }),
        ..AlertsConfig::default()
    })
    .err()
    .expect("a CA file without certificates is refused")
    .to_string();
    assert!(config_err.contains("webhook.ca_file"), "{config_err}");
}
