//! Cutover's deterministic half: plans, activity contracts and the workflows that run them.
//!
//! Nothing in this crate touches the world. Workflows decide; the `cutover-activities` crate
//! acts (ARCHITECTURE.md, rule 1). The activity *contracts* — names, inputs, outputs and the
//! error kinds they may fail with — live here so that both sides compile against one
//! definition.

mod activity_error;
pub mod analysis;
pub mod contracts;
pub mod control;
pub mod drill;
mod duration_serde;
pub mod guard;
pub mod hosts;
pub mod input;
pub mod lock;
pub mod name;
pub mod notify;
pub mod observe;
pub mod plan;
pub mod queue;
mod register;
pub mod release;
pub mod rollout;
pub mod status;

pub use register::{WorkflowRegistry, register_workflows};
pub use rollout::RolloutWorkflow;

/// The default task queue workers poll and clients start workflows on.
pub const DEFAULT_TASK_QUEUE: &str = "cutover";

/// Search attributes set on every rollout so `temporal workflow list --query` finds it.
pub mod search_attributes {
    /// Keyword: the service being released.
    pub const SERVICE: &str = "CutoverService";
    /// Keyword: the environment it is released to.
    pub const ENVIRONMENT: &str = "CutoverEnvironment";
    /// Keyword: the version being released.
    pub const VERSION: &str = "CutoverVersion";
    /// All of them, for `temporal server start-dev --search-attribute NAME=Keyword`.
    pub const ALL: [&str; 3] = [SERVICE, ENVIRONMENT, VERSION];
}

/// The workflow ID of a rollout. One rollout per service and environment may run at a time,
/// and Temporal enforces that for us through the ID.
pub fn rollout_workflow_id(service: &str, environment: &str) -> String {
    format!("rollout/{service}/{environment}")
}
