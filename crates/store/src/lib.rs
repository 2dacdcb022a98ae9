//! mamori's persistent state in its state directory: incidents and trusts in
//! an SQLite database, and the running agent's lock and status.

mod agent;
mod db;
mod error;
mod model;

pub use agent::{agent_status, AgentLock, AgentStatus, VaultStatus, VaultUserStatus};
pub use db::{Store, DB_FILE};
pub use error::StoreError;
pub use model::{
    Action, ActorInfo, Client, ClientCut, CutKind, CutStep, FileOp, FileTouch, Finding, Incident, Indicator, ProcKey,
    Reason, Trust,
};
