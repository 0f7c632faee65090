//! What a host agent registers on its second queue, [`cutover_workflows::hosts::AGENTS_QUEUE`].
//!
//! Nothing is scheduled there today: the worker exists so that the agent's poller, whose
//! identity names its host, shows up when `cutover agents` describes that one queue. Temporal
//! has no "list task queues" call, so this is how every agent can be found from one place.

use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// The activity an agent answers on the agents' queue.
pub struct AgentActivityImpls {
    host: String,
}

impl AgentActivityImpls {
    /// For the agent of `host`.
    pub fn new(host: &str) -> Self {
        Self {
            host: host.to_owned(),
        }
    }
}

#[activities]
impl AgentActivityImpls {
    /// `agent.describe`: the host this agent serves and the version of Cutover it runs.
    #[activity(name = "agent.describe")]
    pub async fn describe(
        self: std::sync::Arc<Self>,
        _ctx: ActivityContext,
        _input: (),
    ) -> Result<String, ActivityError> {
        Ok(format!("{} ({})", self.host, env!("CARGO_PKG_VERSION")))
    }
}
