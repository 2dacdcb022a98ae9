//! Placeholder until the ECS outputs land (owned by their helper).
use crate::config::{EcsFileConfig, ElasticConfig};
use crate::output::Output;
use crate::AlertError;

pub fn file_output(_c: &EcsFileConfig) -> Result<Box<dyn Output>, AlertError> {
    Err(AlertError::config("ecs", "not built yet"))
}

pub fn bulk_output(_c: &ElasticConfig) -> Result<Box<dyn Output>, AlertError> {
    Err(AlertError::config("elasticsearch", "not built yet"))
}
