//! `cutover rollout status|watch`, and following a rollout after `start --wait`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::anyhow;
use chrono::Utc;
use cutover_client::Connected;
use cutover_workflows::RolloutWorkflow;
use cutover_workflows::status::{RolloutState, RolloutStatus};
use temporalio_client::errors::{WorkflowGetResultError, WorkflowQueryError};
use temporalio_client::{
    RpcOptions, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowGetResultOptions,
    WorkflowQueryOptions,
};
use tokio::time::Instant;

use super::{connect, rollout_id};
use crate::cli::{Global, Output};
use crate::exit::{Failure, Outcome};
use crate::render;

/// How long `watch` waits for any worker to answer before saying so.
const NO_WORKER_AFTER: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(500);

/// Prints the status once.
pub(crate) async fn status(global: &Global, id: &str, output: Output) -> Outcome {
    let id = rollout_id(id)?;
    let connected = connect(global).await?;
    let status = query(&connected, &id, Duration::from_secs(10)).await.map_err(|e| {
        Failure::Failed(match e {
            QueryProblem::NotFound => anyhow!("no rollout with ID {id}"),
            QueryProblem::NoAnswer(why) => anyhow!(
                "no worker answered for {id} ({why}); is a worker polling task queue `{}`? start one with `cutover dev up` or `cutover-worker`",
                global.task_queue
            ),
        })
    })?;
    let waiting = cutover_client::agents::waiting_for_host(&connected.client, &id, &status).await;
    match output {
        Output::Json => {
            let mut json = serde_json::to_value(&status).unwrap_or_default();
            if let (Some(text), Some(map)) = (waiting, json.as_object_mut()) {
                map.insert("waiting_for_host".to_owned(), text.into());
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        Output::Human => {
            for line in render::status_lines(&status, Some(Utc::now())) {
                println!("{line}");
            }
            if let Some(text) = waiting {
                println!("{text}");
            }
        }
    }
    Ok(())
}

/// Prints the rollout's timeline: each step's start and end, and each human action.
pub(crate) async fn history(global: &Global, id: &str, output: Output) -> Outcome {
    let id = rollout_id(id)?;
    let connected = connect(global).await?;
    let status = query(&connected, &id, Duration::from_secs(10))
        .await
        .map_err(|e| {
            Failure::Failed(match e {
                QueryProblem::NotFound => anyhow!("no rollout with ID {id}"),
                QueryProblem::NoAnswer(why) => anyhow!("no worker answered for {id} ({why})"),
            })
        })?;
    let events = render::timeline(&status);
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&events).unwrap_or_default()
        ),
        Output::Human => {
            println!(
                "{}  {} {} → {}  {}",
                status.workflow_id,
                status.service,
                status.version,
                status.environment,
                status.state.as_str()
            );
            for e in &events {
                println!(
                    "  {}  {}",
                    e.at.map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
                        .unwrap_or_else(|| "-".repeat(23)),
                    e.what
                );
            }
        }
    }
    Ok(())
}

/// Follows a rollout until it ends.
pub(crate) async fn watch(global: &Global, id: &str) -> Outcome {
    let id = rollout_id(id)?;
    let connected = connect(global).await?;
    follow(&connected, &id, &global.task_queue).await
}

/// Redraws the status in place (or prints each change when not on a terminal) until the
/// rollout ends. Exit 0 if it succeeded, 1 otherwise, with the reason.
pub(crate) async fn follow(connected: &Connected, id: &str, task_queue: &str) -> Outcome {
    let tty = std::io::stdout().is_terminal();
    let mut screen = Screen::new(tty);
    let handle = connected
        .client
        .get_workflow_handle::<RolloutWorkflow>(id.to_owned());
    let mut last_answer = Instant::now();
    let mut warned = false;
    loop {
        let described = handle
            .describe(WorkflowDescribeOptions::default())
            .await
            .map_err(|e| match e {
                temporalio_client::errors::WorkflowInteractionError::NotFound(_) => {
                    Failure::Failed(anyhow!("no rollout with ID {id}"))
                }
                other => Failure::Failed(anyhow!("describing {id}: {other}")),
            })?;
        let running = described.status() == WorkflowExecutionStatus::Running;
        match query(connected, id, Duration::from_secs(3)).await {
            Ok(status) => {
                last_answer = Instant::now();
                warned = false;
                let waiting =
                    cutover_client::agents::waiting_for_host(&connected.client, id, &status).await;
                screen.draw(&status, waiting);
            }
            Err(QueryProblem::NotFound) => {
                return Err(Failure::Failed(anyhow!("no rollout with ID {id}")));
            }
            Err(QueryProblem::NoAnswer(_))
                if running && !warned && last_answer.elapsed() >= NO_WORKER_AFTER =>
            {
                screen.note(&format!(
                    "no worker has answered for {}s: is a worker polling task queue `{task_queue}`? start one with `cutover dev up` or `cutover-worker`",
                    NO_WORKER_AFTER.as_secs()
                ));
                warned = true;
            }
            Err(_) => {}
        }
        if !running {
            return finish(connected, id, &mut screen).await;
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn finish(connected: &Connected, id: &str, screen: &mut Screen) -> Outcome {
    let handle = connected
        .client
        .get_workflow_handle::<RolloutWorkflow>(id.to_owned());
    match handle.get_result(WorkflowGetResultOptions::default()).await {
        Ok(summary) if summary.outcome == RolloutState::Succeeded => {
            screen.note(&format!("rollout {id} succeeded"));
            Ok(())
        }
        Ok(summary) => {
            screen.note(&format!("rollout {id} ended {}", summary.outcome.as_str()));
            Err(Failure::FailedReported)
        }
        Err(WorkflowGetResultError::Failed(f)) => {
            let rolled_back = matches!(
                f.as_ref(),
                temporalio_common::error::IncomingError::Application(app)
                    if app.type_name() == Some(cutover_workflows::rollout::ROLLED_BACK)
            );
            let verb = if rolled_back {
                "was rolled back"
            } else {
                "failed"
            };
            screen.note(&format!("rollout {id} {verb}: {}", f.failure().message));
            Err(Failure::FailedReported)
        }
        Err(WorkflowGetResultError::Cancelled { .. }) => {
            screen.note(&format!("rollout {id} was cancelled"));
            Err(Failure::FailedReported)
        }
        Err(e) => {
            screen.note(&format!("rollout {id} ended: {e}"));
            Err(Failure::FailedReported)
        }
    }
}

pub(crate) enum QueryProblem {
    NotFound,
    NoAnswer(String),
}

pub(crate) async fn query(
    connected: &Connected,
    id: &str,
    timeout: Duration,
) -> Result<RolloutStatus, QueryProblem> {
    let handle = connected
        .client
        .get_workflow_handle::<RolloutWorkflow>(id.to_owned());
    let options = WorkflowQueryOptions::builder()
        .rpc_options(RpcOptions::builder().timeout(timeout).build())
        .build();
    match handle.query(RolloutWorkflow::status, (), options).await {
        Ok(s) => Ok(s),
        Err(WorkflowQueryError::NotFound(_)) => Err(QueryProblem::NotFound),
        Err(e) => Err(QueryProblem::NoAnswer(e.to_string())),
    }
}

/// The terminal: redrawn in place on a TTY; elsewhere, each change printed once.
pub(crate) struct Screen {
    tty: bool,
    drawn: usize,
    last: Vec<String>,
}

impl Screen {
    pub(crate) fn new(tty: bool) -> Self {
        Self {
            tty,
            drawn: 0,
            last: Vec::new(),
        }
    }

    /// Draws the status, and below it what the rollout waits for, if anything.
    fn draw(&mut self, status: &RolloutStatus, waiting: Option<String>) {
        let now = self.tty.then(Utc::now);
        let mut lines = render::status_lines(status, now);
        lines.extend(waiting);
        self.draw_lines(lines);
    }

    /// Draws `lines`: in place on a terminal; elsewhere once each time they change.
    pub(crate) fn draw_lines(&mut self, lines: Vec<String>) {
        let mut out = std::io::stdout().lock();
        if self.tty {
            if self.drawn > 0 {
                // Up to the first line we drew, then clear to the end of the screen.
                let _ = write!(out, "\x1b[{}F\x1b[J", self.drawn);
            }
            for line in &lines {
                let _ = writeln!(out, "{line}");
            }
            self.drawn = lines.len();
        } else {
            if lines != self.last {
                for line in &lines {
                    let _ = writeln!(out, "{line}");
                }
                let _ = writeln!(out);
                self.last = lines;
            }
        }
        let _ = out.flush();
    }

    fn note(&mut self, text: &str) {
        println!("{text}");
        self.drawn = 0;
    }
}
