//! Telling people, at once: each event of mamori's (an incident, a restore
//! finished, protection degraded, an audit finding) goes to every output
//! configured under `[alerts]`: syslog (RFC 5424, or CEF) over UDP, TCP or
//! TLS, the local journal, ECS JSON to a file or an Elasticsearch/OpenSearch
//! `_bulk` endpoint, a webhook (plain JSON, Slack, Teams, Google Chat), and
//! e-mail.
//!
//! Every event is first written to a queue on disk ([`Spool`]); a thread
//! per output delivers from it in order ([`Dispatcher`]), so a slow or dead
//! output never delays a stop, nor the other outputs, and gets what it
//! missed once it is back.

mod alert;
pub mod config;
mod dispatch;
mod ecs;
mod email;
mod error;
mod http;
mod journal;
mod output;
mod spool;
mod syslog;
mod text;
mod tls;
mod webhook;

pub use alert::{Alert, Cause, Finding, Severity, What};
pub use config::AlertsConfig;
pub use dispatch::{Dispatcher, Sender};
pub use error::AlertError;
pub use output::{each_output, outputs, Output};
pub use spool::Spool;
pub use text::{text, Language, Text};
