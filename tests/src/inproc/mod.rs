//! In-process workflow tests: the real `RolloutWorkflow`, `DrillWorkflow` and `LockWorkflow`
//! (registered with the same [`cutover_workflows::register_workflows`] as `cutover-worker`)
//! run by a worker inside the test process against a real Temporal dev server, with every
//! activity that touches the world replaced by a scripted fake ([`Fakes`]). The lock
//! activities are the real ones: they only talk to Temporal.
//!
//! What is faked, and why: processes, nginx, PostgreSQL and HTTP checks are covered end to
//! end by the other suites; here the point is the workflow's decisions on paths those suites
//! cannot reach cheaply (timeouts, aborts in the middle of a deploy, cancellations). Each
//! fake records its call, so tests assert what the workflow asked for, in order.

mod fakes;
mod plan;

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
pub use fakes::{Behaviour, Call, Fakes, Script};
pub use plan::{PlanBuilder, StepBuilder};
use temporalio_client::Client;
use temporalio_sdk::{Worker, WorkerOptions};

use crate::DevServer;

/// A dev server, a task queue and a script; run a test body beside an in-process worker with
/// [`InProcess::run`].
pub struct InProcess {
    /// The server.
    pub server: DevServer,
    /// This test's own task queue.
    pub queue: String,
    /// What the fake activities do and what they were asked.
    pub script: Script,
}

impl InProcess {
    /// Starts a dev server with Cutover's search attributes.
    pub async fn start(name: &str) -> anyhow::Result<Self> {
        Ok(Self {
            server: DevServer::start().await?,
            queue: crate::unique_queue(name),
            script: Script::default(),
        })
    }

    /// The client of the server's `default` namespace.
    pub fn client(&self) -> &Client {
        self.server.client()
    }

    /// Runs `body` while an in-process worker polls this test's queue, then shuts the worker
    /// down. The worker is not `Send`, so it runs beside the body on this task rather than
    /// spawned.
    pub async fn run<F, Fut, T>(&self, body: F) -> anyhow::Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())
            .context("starting the Temporal runtime")?;
        let options =
            cutover_workflows::register_workflows(WorkerOptions::new(self.queue.clone()))?
                .register_activities(Fakes::new(self.script.clone()))
                .register_activities(cutover_activities::LockActivityImpls::new(
                    self.client().clone(),
                ))
                .graceful_shutdown_period(Duration::from_secs(1))
                .build();
        let mut worker = Worker::new(&runtime, self.client().clone(), options)
            .context("creating the in-process worker")?;
        let shutdown = worker.shutdown_handle();
        let body = async {
            let result = body().await;
            shutdown();
            result
        };
        let (ran, result) = tokio::join!(worker.run(), body);
        ran.context("running the in-process worker")?;
        result
    }

    /// Starts a rollout of `plan` on this test's queue (as `cutover rollout start` does) and
    /// returns its workflow ID.
    pub async fn start_rollout(&self, plan: &PlanBuilder) -> anyhow::Result<String> {
        let started =
            cutover_client::start_rollout(self.client(), &plan.build(), &self.queue, None).await?;
        Ok(started.workflow_id)
    }

    /// Starts a drill of `plan` (drill YAML) on this test's queue.
    pub async fn start_drill(&self, plan_yaml: &str) -> anyhow::Result<String> {
        let plan = cutover_workflows::plan::parse_drill(plan_yaml)
            .map_err(|d| anyhow::anyhow!("test drill is invalid:\n{d}"))?;
        let started = cutover_client::start_drill(self.client(), &plan, &self.queue).await?;
        Ok(started.workflow_id)
    }

    /// Stops the server.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.server.shutdown().await
    }
}
