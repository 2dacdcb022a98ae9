//! Placeholder until the webhook output lands (owned by its helper).
use crate::config::WebhookConfig;
use crate::output::Output;
use crate::text::Language;
use crate::AlertError;

pub fn output(_c: &WebhookConfig, _lang: Language) -> Result<Box<dyn Output>, AlertError> {
    Err(AlertError::config("webhook", "not built yet"))
}
