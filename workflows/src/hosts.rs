//! Host agents' task queues: how the workflow sends an activity to one machine.
//!
//! A rollout's host activities (processes, nginx, data directories) must run on the machine
//! the plan names, never on whichever worker happens to poll. Temporal routes by task queue,
//! so each host's agent (`cutover-worker --host NAME`) polls a queue of its own, and every
//! agent also polls [`AGENTS_QUEUE`] so that `cutover agents` can find them all.

/// The prefix of every host's task queue.
pub const HOST_QUEUE_PREFIX: &str = "cutover-host-";

/// The queue every agent polls besides its own, so that its poller (and so its host name,
/// carried in the poller's identity) can be listed.
pub const AGENTS_QUEUE: &str = "cutover-agents";

/// The identity an agent polls with: `cutover-agent/<host>/<pid>@<machine>`.
pub const AGENT_IDENTITY_PREFIX: &str = "cutover-agent/";

/// The task queue of host `name`'s agent.
pub fn task_queue(name: &str) -> String {
    format!("{HOST_QUEUE_PREFIX}{name}")
}

/// `opts` sent to `host`'s agent: its task queue, and a limit on how long the task may wait
/// there for the agent (after which the activity fails with a schedule-to-start timeout
/// instead of waiting forever). Without a host, `opts` unchanged: old histories replay.
pub fn route(
    mut opts: temporalio_sdk::ActivityOptions,
    host: Option<&str>,
    wait: std::time::Duration,
) -> temporalio_sdk::ActivityOptions {
    if let Some(host) = host {
        opts.task_queue = Some(task_queue(host));
        opts.schedule_to_start_timeout = Some(wait);
    }
    opts
}

/// The identity of the agent for `host` running as `pid` on `machine`.
pub fn agent_identity(host: &str, pid: u32, machine: &str) -> String {
    format!("{AGENT_IDENTITY_PREFIX}{host}/{pid}@{machine}")
}

/// The host name in an agent's poller identity, if it is one.
pub fn host_of_identity(identity: &str) -> Option<&str> {
    identity
        .strip_prefix(AGENT_IDENTITY_PREFIX)?
        .split('/')
        .next()
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agents_identity_names_its_host() {
        let id = agent_identity("web-2", 42, "box.example");
        assert_eq!(id, "cutover-agent/web-2/42@box.example");
        assert_eq!(host_of_identity(&id), Some("web-2"));
        assert_eq!(host_of_identity("1234@box"), None);
        assert_eq!(host_of_identity("cutover-agent//1@x"), None);
        assert_eq!(task_queue("web-2"), "cutover-host-web-2");
    }
}
