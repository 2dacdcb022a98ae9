//! Placeholder until the syslog output lands (owned by its helper).
use crate::config::SyslogConfig;
use crate::output::Output;
use crate::AlertError;

pub enum Format {
    Rfc5424,
    Cef,
}

pub fn output(_c: &SyslogConfig, _f: Format) -> Result<Box<dyn Output>, AlertError> {
    Err(AlertError::config("syslog", "not built yet"))
}
