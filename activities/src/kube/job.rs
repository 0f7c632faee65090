//! Migrations as Jobs: `kind: migrate` on a Kubernetes target runs the plan's image and
//! command once, as a Job in the target's namespace, and its exit code is the step's verdict.
//!
//! A Job is named after the rollout, its run and the step, so an attempt retried after a lost
//! worker adopts the Job already running instead of running the migration twice. A failed Job
//! is kept for inspection; a later attempt (a person's `retry`) creates the next one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as Watched};
use kube::{Api, Client};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::api;
use crate::error::StepFailure;
use cutover_workflows::contracts::{JobInput, JobOutput};

/// The label that ties a step's Jobs together across attempts.
const KEY_LABEL: &str = "cutover.dev/job-key";

/// `SERVICE-STEP-HASH`, at most 52 characters (a Job's pods add a suffix to its name).
fn key(input: &JobInput, run_id: &str) -> String {
    let digest = Sha256::digest(format!(
        "{}/{run_id}/{}",
        input.step.rollout, input.step.step
    ));
    let hash = hex::encode(&digest[..5]);
    let mut base = format!("{}-{}", input.service, input.step.step).replace(['_', '.'], "-");
    base.truncate(40);
    format!("{}-{hash}", base.trim_end_matches('-'))
}

fn manifest(input: &JobInput, name: &str, key: &str) -> Value {
    let spec = &input.spec;
    let mut container = json!({
        "name": "migrate",
        "image": spec.image_for(&input.version),
        "env": spec.env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "envFrom": spec.env_from_secrets.iter().map(|s| json!({"secretRef": {"name": s}})).collect::<Vec<_>>(),
    });
    if !spec.command.is_empty() {
        container["command"] = json!(spec.command);
    }
    if !spec.args.is_empty() {
        container["args"] = json!(spec.args);
    }
    let labels = json!({
        super::render::SERVICE_LABEL: input.service,
        KEY_LABEL: key,
        "app.kubernetes.io/managed-by": "cutover",
    });
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": { super::render::VERSION_ANNOTATION: input.version },
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": { "labels": labels },
                "spec": { "restartPolicy": "Never", "containers": [container] },
            },
        },
    })
}

/// How a Job stands.
fn verdict(job: &Job) -> Option<bool> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find_map(|c| match (c.type_.as_str(), c.status.as_str()) {
            ("Complete", "True") => Some(true),
            ("Failed", "True") => Some(false),
            _ => None,
        })
}

/// Runs (or adopts) the step's Job in `namespace` and waits for its verdict.
pub(super) async fn run(
    client: &Client,
    namespace: &str,
    input: &JobInput,
    run_id: &str,
    attempt: u32,
) -> Result<JobOutput, StepFailure> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let key = key(input, run_id);
    let existing = jobs
        .list(&ListParams::default().labels(&format!("{KEY_LABEL}={key}")))
        .await
        .map_err(|e| api::failure(format!("list the Jobs of step {}", input.step.step), e))?;
    // A running or finished-well Job of this step is adopted; only failed ones are left be.
    let adopted = existing
        .items
        .iter()
        .find(|j| verdict(j) != Some(false))
        .and_then(|j| j.metadata.name.clone());
    let name = match adopted {
        Some(name) => name,
        None => {
            let name = if existing.items.is_empty() {
                key.clone()
            } else {
                format!("{key}-{attempt}")
            };
            api::apply(client, namespace, &manifest(input, &name, &key)).await?;
            name
        }
    };
    let mut events = watcher::watcher(
        jobs,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .default_backoff()
    .boxed();
    let mut last_error = None;
    let tail = Tail::default();
    let following = follow(client, namespace, name.clone(), tail.clone());
    tokio::pin!(following);
    let mut followed = false;
    let succeeded = loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = &mut following, if !followed => {
                followed = true;
                continue;
            }
        };
        match event {
            Some(Ok(Watched::Apply(j) | Watched::InitApply(j))) => {
                if let Some(v) = verdict(&j) {
                    break v;
                }
            }
            Some(Ok(Watched::Delete(_))) => {
                return Err(StepFailure::DeployFailed(format!(
                    "Job {name} was deleted before it finished"
                )));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => last_error = Some(e.to_string()),
            None => {
                return Err(StepFailure::KubeUnavailable {
                    action: format!("watch Job {name}"),
                    message: last_error.unwrap_or_else(|| "the watch ended".to_owned()),
                });
            }
        }
    };
    // The container has exited: its log ends within moments.
    if !followed {
        let _ = tokio::time::timeout(Duration::from_secs(3), &mut following).await;
    }
    let (exit, mut logs) = outcome(client, namespace, &name, !tail.is_empty()).await;
    if !tail.is_empty() {
        logs = tail.lines();
    }
    if succeeded {
        Ok(JobOutput { job: name, logs })
    } else {
        let tail = if logs.is_empty() {
            String::new()
        } else {
            format!("; last log lines:\n  {}", logs.join("\n  "))
        };
        Err(StepFailure::JobFailed {
            job: name,
            detail: format!(
                "{}{tail}",
                exit.map_or("its pod failed".to_owned(), |c| format!("exit code {c}"))
            ),
        })
    }
}

/// The last lines of a Job's output, as it was followed.
#[derive(Clone, Default)]
struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    fn push(&self, line: String) {
        if let Ok(mut t) = self.0.lock() {
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.lock().map_or(true, |t| t.is_empty())
    }

    fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Lines of a Job's output kept for the step's output and failure.
const TAIL_LINES: usize = 20;

/// Streams the output of Job `job`'s pod as it runs: each line goes to the worker's log,
/// tagged with the Job, as it is printed, and the last lines are kept in `tail`. Waits for
/// the pod to start (a watch), then follows its log until the container exits. Returns at
/// once if the log cannot be read (the verdict does not depend on it).
async fn follow(client: &Client, namespace: &str, job: String, tail: Tail) {
    let job = job.as_str();
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let config = watcher::Config::default().labels(&format!("job-name={job}"));
    let mut started = watcher::watcher(pods.clone(), config)
        .default_backoff()
        .boxed();
    let pod = loop {
        match started.next().await {
            Some(Ok(Watched::Apply(p) | Watched::InitApply(p))) => {
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                if matches!(phase, Some("Running" | "Succeeded" | "Failed")) {
                    break p.metadata.name.unwrap_or_default();
                }
            }
            Some(_) => {}
            None => return,
        }
    };
    drop(started);
    let params = LogParams {
        follow: true,
        ..LogParams::default()
    };
    let stream = match pods.log_stream(&pod, &params).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(job, pod, error = %e, "the Job's output cannot be followed");
            return;
        }
    };
    let mut lines = stream.lines();
    while let Some(Ok(line)) = lines.next().await {
        tracing::info!(job, "{line}");
        tail.push(line);
    }
}

/// The Job's pod's exit code and, unless `have_logs`, its last log lines (when the kubelet
/// can serve them).
async fn outcome(
    client: &Client,
    namespace: &str,
    job: &str,
    have_logs: bool,
) -> (Option<i32>, Vec<String>) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let Ok(list) = pods
        .list(&ListParams::default().labels(&format!("job-name={job}")))
        .await
    else {
        return (None, Vec::new());
    };
    let Some(pod) = list.items.last() else {
        return (None, Vec::new());
    };
    let exit = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.state.as_ref()?.terminated.as_ref())
        .map(|t| t.exit_code);
    if have_logs {
        return (exit, Vec::new());
    }
    let name = pod.metadata.name.clone().unwrap_or_default();
    let params = LogParams {
        tail_lines: Some(TAIL_LINES as i64),
        ..LogParams::default()
    };
    let logs = match pods.logs(&name, &params).await {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(e) => vec![format!(
            "(logs unavailable: {})",
            match e {
                kube::Error::Api(s) => s.message,
                other => other.to_string(),
            }
            .chars()
            .take(200)
            .collect::<String>()
        )],
    };
    (exit, logs)
}
