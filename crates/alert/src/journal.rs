//! Placeholder until the journal output lands (owned by its helper).
use crate::config::JournalConfig;
use crate::output::Output;
use crate::text::Language;
use crate::AlertError;

pub fn output(_c: &JournalConfig, _lang: Language) -> Result<Box<dyn Output>, AlertError> {
    Err(AlertError::config("journal", "not built yet"))
}
