//! The seam between the queue and the world: an output takes one event and
//! says whether it got through. Each output bounds its own waits, so a dead
//! receiver costs its own thread a timeout and nothing else.

use crate::config::AlertsConfig;
use crate::{Alert, AlertError};

pub trait Output: Send {
    /// The output's name in the config (`syslog`, `webhook`…) and in the
    /// queue's cursors: stable, one output per name.
    fn name(&self) -> &'static str;
    /// Delivers one event, or says why not (it is then tried again later).
    fn send(&mut self, alert: &Alert) -> Result<(), AlertError>;
    /// Where it sends, for people (`udp://127.0.0.1:5514`), without secrets.
    fn target(&self) -> String;
    /// Whether the receiver is there, without sending an event (for
    /// `mamori check`): connects, shakes hands (TLS, SMTP EHLO), or checks
    /// that the file can be written. Bounded like `send`. UDP cannot tell,
    /// and says so in the `Ok` text.
    fn probe(&mut self) -> Result<String, AlertError>;
}

/// Every output the config names, in a fixed order.
pub fn outputs(config: &AlertsConfig) -> Result<Vec<Box<dyn Output>>, AlertError> {
    each_output(config).into_iter().map(|(_, made)| made).collect()
}

/// One output as built from its table, or why it could not be.
pub type Made = Result<Box<dyn Output>, AlertError>;

/// Every output the config names, each built on its own with its table's
/// name, so one bad table does not hide the others (`mamori check`).
pub fn each_output(config: &AlertsConfig) -> Vec<(&'static str, Made)> {
    let mut all = Vec::new();
    if let Some(c) = &config.syslog {
        all.push(("syslog", crate::syslog::output(c, crate::syslog::Format::Rfc5424)));
    }
    if let Some(c) = &config.cef {
        all.push(("cef", crate::syslog::output(c, crate::syslog::Format::Cef)));
    }
    if let Some(c) = &config.journal {
        all.push(("journal", crate::journal::output(c, config.lang)));
    }
    if let Some(c) = &config.ecs {
        all.push(("ecs", crate::ecs::file_output(c)));
    }
    if let Some(c) = &config.elasticsearch {
        all.push(("elasticsearch", crate::ecs::bulk_output(c)));
    }
    if let Some(c) = &config.webhook {
        all.push(("webhook", crate::webhook::output(c, config.lang)));
    }
    if let Some(c) = &config.email {
        all.push(("email", crate::email::output(c, config.lang)));
    }
    all
}
