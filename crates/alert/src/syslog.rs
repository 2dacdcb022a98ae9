//! Syslog: RFC 5424 messages with mamori's structured data (output
//! `syslog`), or CEF records for SIEMs (output `cef`), to a receiver over
//! UDP (RFC 5426, a datagram per message), TCP (RFC 6587, octet counting)
//! or TLS (RFC 5425). The connection stays open between events; after any
//! error it is dropped, and the next send connects again.

mod format;
mod transport;

use std::time::Duration;

use crate::config::SyslogConfig;
use crate::output::Output;
use crate::{Alert, AlertError};

pub(crate) use format::{facts, syslog_severity};
use transport::{Endpoint, Scheme, Transport};

/// What is written on the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 5424 with structured data.
    Rfc5424,
    /// ArcSight's Common Event Format, as the MSG of an RFC 5424 message.
    Cef,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Rfc5424 => "syslog",
            Format::Cef => "cef",
        }
    }
}

struct SyslogOutput {
    format: Format,
    facility: u8,
    app_name: String,
    pid: u32,
    transport: Transport,
}

/// The output of `[alerts.syslog]` or `[alerts.cef]`, checked: a URL,
/// facility or CA file that cannot work is an error naming its key.
pub fn output(c: &SyslogConfig, format: Format) -> Result<Box<dyn Output>, AlertError> {
    let table = format.name();
    let endpoint = Endpoint::parse(&c.url).map_err(|p| AlertError::config(&format!("{table}.url"), p))?;
    let facility = format::facility(&c.facility).ok_or_else(|| {
        AlertError::config(
            &format!("{table}.facility"),
            format!("unknown facility {:?} (auth, authpriv, daemon, user, local0 … local7)", c.facility),
        )
    })?;
    if c.app_name.is_empty() || !c.app_name.chars().all(|ch| ch.is_ascii_graphic()) || c.app_name.len() > 48 {
        return Err(AlertError::config(
            &format!("{table}.app_name"),
            "1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)",
        ));
    }
    if c.ca_file.is_some() && endpoint.scheme != Scheme::Tls {
        return Err(AlertError::config(&format!("{table}.ca_file"), "only for a tls:// url"));
    }
    let tls = match endpoint.scheme {
        Scheme::Tls => Some(
            transport::tls_config(c.ca_file.as_deref())
                .map_err(|p| AlertError::config(&format!("{table}.ca_file"), p))?,
        ),
        _ => None,
    };
    let timeout = Duration::from_secs(c.timeout_seconds.max(1));
    Ok(Box::new(SyslogOutput {
        format,
        facility,
        app_name: c.app_name.clone(),
        pid: std::process::id(),
        transport: Transport::new(endpoint, tls, timeout),
    }))
}

impl SyslogOutput {
    fn message(&self, alert: &Alert) -> Vec<u8> {
        let h = format::Header { facility: self.facility, app_name: &self.app_name, pid: self.pid };
        match self.format {
            Format::Rfc5424 => format::rfc5424(alert, &h),
            Format::Cef => format::cef(alert, &h),
        }
    }
}

impl Output for SyslogOutput {
    fn name(&self) -> &'static str {
        self.format.name()
    }

    fn send(&mut self, alert: &Alert) -> Result<(), AlertError> {
        let message = self.message(alert);
        self.transport.send(&message).map_err(|e| AlertError::send(self.format.name(), e))
    }

    fn target(&self) -> String {
        self.transport.endpoint().to_string()
    }

    fn probe(&mut self) -> Result<String, AlertError> {
        self.transport.probe().map_err(|e| AlertError::send(self.format.name(), e))
    }
}
