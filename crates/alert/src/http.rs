//! HTTP for the outputs that POST (webhook, Elasticsearch): one agent per
//! output (see `mamori-http`: one deadline, no redirect followed: a webhook
//! that answers 3xx is misconfigured) trusting the roots the config names,
//! or the system's. Proxies come from the service's environment.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use mamori_http::ureq;
use ureq::http::Uri;
use ureq::tls::Certificate;

use crate::AlertError;

/// Most of a response body read: an error's excerpt, or a `_bulk` answer
/// for one document, are far smaller.
const MAX_BODY: u64 = 256 * 1024;
/// Most characters of a receiver's answer quoted in an error.
const EXCERPT: usize = 300;

/// A checked `http://` or `https://` URL.
#[derive(Debug, Clone)]
pub(crate) struct Url {
    uri: Uri,
}

impl Url {
    pub(crate) fn parse(text: &str) -> Result<Url, String> {
        let uri: Uri = text.trim().parse().map_err(|e| format!("not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err("must start with http:// or https://".into()),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err("no host".into());
        }
        Ok(Url { uri })
    }

    pub(crate) fn is_https(&self) -> bool {
        self.uri.scheme_str() == Some("https")
    }

    pub(crate) fn as_str(&self) -> String {
        self.uri.to_string()
    }

    fn port(&self) -> u16 {
        self.uri.port_u16().unwrap_or(if self.is_https() { 443 } else { 80 })
    }

    /// `scheme://host:port`, nothing else: chat webhook URLs carry their
    /// secret in the path and query, and user info is a password.
    pub(crate) fn origin(&self) -> String {
        let host = self.uri.host().unwrap_or_default();
        format!("{}://{host}:{}", self.uri.scheme_str().unwrap_or("http"), self.port())
    }

    /// The URL with `suffix` appended to its path (no query).
    pub(crate) fn join(&self, suffix: &str) -> Result<Url, String> {
        let base = self.uri.path().trim_end_matches('/');
        let text = format!("{}{base}/{}", self.origin(), suffix.trim_start_matches('/'));
        Url::parse(&text)
    }
}

/// What a receiver answered: the status and the start of the body.
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The answer for an error message, bounded and on one line.
    pub(crate) fn excerpt(&self) -> String {
        excerpt(&self.body)
    }
}

pub(crate) fn excerpt(body: &str) -> String {
    let one_line: String = body.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let one_line = one_line.trim();
    match one_line.char_indices().nth(EXCERPT) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line.to_owned(),
    }
}

/// One output's HTTP client.
pub(crate) struct Client {
    agent: ureq::Agent,
}

impl Client {
    /// `key` names the config table in errors (`webhook`, `elasticsearch`).
    /// The roots are loaded only for `https` URLs, so a plain-HTTP receiver
    /// works on a host without a CA bundle.
    pub(crate) fn new(key: &str, url: &Url, ca_file: Option<&Path>, timeout: Duration) -> Result<Client, AlertError> {
        if timeout.is_zero() {
            return Err(AlertError::config(&format!("{key}.timeout_seconds"), "must be at least 1"));
        }
        let roots = if url.is_https() || ca_file.is_some() {
            roots(ca_file).map_err(|p| AlertError::config(&format!("{key}.ca_file"), p))?
        } else {
            Vec::new()
        };
        let agent = mamori_http::agent(roots, timeout);
        Ok(Client { agent })
    }

    /// POSTs `body`; a transport failure (refused, timeout, TLS) is `Err`,
    /// any HTTP answer is `Ok` for the caller to judge.
    pub(crate) fn post(
        &self,
        url: &Url,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, String> {
        let mut req = self.agent.post(url.as_str()).header("Content-Type", content_type);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        read_answer(req.send(body))
    }

    pub(crate) fn get(&self, url: &Url, headers: &[(&str, &str)]) -> Result<Answer, String> {
        let mut req = self.agent.get(url.as_str());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        read_answer(req.call())
    }

    pub(crate) fn head(&self, url: &Url) -> Result<Answer, String> {
        read_answer(self.agent.head(url.as_str()).call())
    }
}

fn read_answer(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Answer, String> {
    let mut response = result.map_err(describe)?;
    let status = response.status().as_u16();
    let mut bytes = Vec::new();
    // A body cut short (a receiver that closes early) still gave its status.
    let _ = response.body_mut().as_reader().take(MAX_BODY).read_to_end(&mut bytes);
    Ok(Answer { status, body: String::from_utf8_lossy(&bytes).into_owned() })
}

/// ureq's error in the words the user needs (the URL itself is not repeated:
/// it may hold a secret).
fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(what) => format!("no answer in time ({what})"),
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// The certificates in `ca_file`, or the system's, as ureq takes them.
fn roots(ca_file: Option<&Path>) -> Result<Vec<Certificate<'static>>, String> {
    Ok(mamori_http::roots(&crate::tls::ca_roots(ca_file)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_hides_path_query_and_user_info() {
        let url = Url::parse("https://user:pw@hooks.example.com/services/T0/B0/SECRET?x=1").unwrap();
        assert_eq!(url.origin(), "https://hooks.example.com:443");
        assert_eq!(Url::parse("http://[::1]:8080/x").unwrap().origin(), "http://[::1]:8080");
        assert!(Url::parse("ftp://x/").is_err());
        assert!(Url::parse("/just/a/path").is_err());
    }

    #[test]
    fn join_appends_to_the_base_path() {
        let url = Url::parse("https://es.example:9200/prefix/").unwrap();
        assert_eq!(url.join("_bulk").unwrap().as_str(), "https://es.example:9200/prefix/_bulk");
        let url = Url::parse("http://127.0.0.1:9200").unwrap();
        assert_eq!(url.join("_bulk").unwrap().as_str(), "http://127.0.0.1:9200/_bulk");
    }

    #[test]
    fn excerpt_is_bounded_and_one_line() {
        let long = "é\n".repeat(1000);
        let e = excerpt(&long);
        assert!(!e.contains('\n'));
        assert!(e.chars().count() <= EXCERPT + 1, "{}", e.chars().count());
    }
}
