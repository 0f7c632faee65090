//! Talking to Temporal, for every front end Cutover has: connecting, starting rollouts and
//! drills with request IDs, the service lock, drill schedules and search attributes.
//!
//! The `cutover` CLI, its webhook receiver, the worker and the activities all use this one
//! library, so there is one code path and one set of rules about IDs, search attributes and
//! refusals. It deliberately carries no CLI or HTTP-server dependencies (clap, axum): the
//! worker's activities link it.

pub mod agents;
pub mod connect;
pub mod dev_server;
pub mod history;
pub mod lock;
pub mod poll;
pub mod queue;
pub mod release;
pub mod rollout;
pub mod schedule;
pub mod search_attributes;
pub mod shutdown;
pub mod telemetry;

pub use connect::{ConnectError, ConnectOptions, Connected, connect};
pub use queue::{Begun, begin_rollout};
pub use release::{release_status, start_release};
pub use rollout::{StartError, Started, start_drill, start_rollout};
pub use schedule::{DrillSchedule, ScheduleError, create_drill_schedule, create_rollout_schedule};
pub use search_attributes::ensure_search_attributes;
