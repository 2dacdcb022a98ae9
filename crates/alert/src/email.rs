//! Placeholder until the e-mail output lands (owned by its helper).
use crate::config::EmailConfig;
use crate::output::Output;
use crate::text::Language;
use crate::AlertError;

pub fn output(_c: &EmailConfig, _lang: Language) -> Result<Box<dyn Output>, AlertError> {
    Err(AlertError::config("email", "not built yet"))
}
