//! The client side of Cutover: connecting to Temporal and starting rollouts.
//!
//! The `cutover` CLI is a thin layer over this library, and so will be every other way of
//! starting a rollout (the CI webhook receiver, schedules): one code path, one set of rules
//! about IDs, search attributes and refusals. The worker uses [`connect`] too.

pub mod connect;
pub mod lock;
pub mod rollout;
pub mod schedule;
pub mod search_attributes;

pub use connect::{ConnectError, ConnectOptions, Connected, connect};
pub use rollout::{StartError, Started, start_drill, start_rollout};
pub use schedule::{DrillSchedule, ScheduleError, create_drill_schedule};
pub use search_attributes::ensure_search_attributes;
