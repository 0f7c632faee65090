//! Waiting for a Deployment to roll out, by watching it and its pods (no polling): a watch
//! resumes from its last resourceVersion after a dropped connection, and relists on
//! `410 Gone` (kube-runtime's watcher). A rollout that stops progressing fails with what
//! explains it: the Deployment's condition, the pods' waiting reasons, their events and last
//! log lines.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, LogParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as Watched};
use kube::{Api, Client};

use super::api::failure;
use crate::error::StepFailure;

/// Container waiting reasons that mean the pods will not become ready by waiting.
const STUCK: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// Where a Deployment's rollout stands.
#[derive(Debug, PartialEq)]
enum Progress {
    /// Every replica is updated and available, and no old one is left.
    Done,
    /// Still moving.
    Moving,
    /// The controller gave up (`ProgressDeadlineExceeded`), with its message.
    Stalled(String),
}

fn progress(d: &Deployment) -> Progress {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(status) = &d.status else {
        return Progress::Moving;
    };
    if let Some(c) = status.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        return Progress::Stalled(c.message.clone().unwrap_or_default());
    }
    let observed = status.observed_generation.unwrap_or(0) >= generation;
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    if observed && updated >= want && available >= want && total == updated {
        Progress::Done
    } else {
        Progress::Moving
    }
}

/// A pod of the version being rolled out (`version`: the template's `cutover.dev/version`;
/// none, any pod) that is stuck for good: `container: reason (message)`. A terminating pod,
/// or one of an older version the controller is about to replace, says nothing about this
/// rollout.
fn stuck(pod: &Pod, version: Option<&str>) -> Option<String> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    if let Some(version) = version {
        let of = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(super::render::VERSION_ANNOTATION));
        if of.map(String::as_str) != Some(version) {
            return None;
        }
    }
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|c| {
        let waiting = c.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref()?;
        STUCK.contains(&reason).then(|| {
            format!(
                "container `{}` of pod {}: {reason}{}",
                c.name,
                pod.metadata.name.as_deref().unwrap_or("?"),
                waiting
                    .message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            )
        })
    })
}

/// Waits until Deployment `name` has rolled out, or fails with the reason. `selector` finds
/// its pods, `version` (the template's `cutover.dev/version`, when it has one) the ones this
/// rollout starts; `deadline` is a backstop in case no controller reports progress at all.
#[tracing::instrument(name = "kube.rollout_wait", skip_all, fields(namespace = %namespace, deployment = %target.0))]
pub(super) async fn rolled_out(
    client: &Client,
    namespace: &str,
    target: (&str, &str, Option<&str>),
    deadline: Duration,
) -> Result<(), StepFailure> {
    let (name, selector, version) = target;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut deployment_events = watcher::watcher(
        deployments,
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .default_backoff()
    .boxed();
    let mut pod_events = watcher::watcher(pods, watcher::Config::default().labels(selector))
        .default_backoff()
        .boxed();
    let backstop = tokio::time::sleep(deadline + deadline / 2 + Duration::from_secs(10));
    tokio::pin!(backstop);
    let mut last_error = None;
    loop {
        tokio::select! {
            event = deployment_events.next() => match event {
                Some(Ok(Watched::Apply(d) | Watched::InitApply(d))) => match progress(&d) {
                    Progress::Done => return Ok(()),
                    Progress::Moving => {}
                    Progress::Stalled(message) => {
                        let why = explain(client, namespace, selector).await;
                        return Err(StepFailure::DeployFailed(format!(
                            "Deployment {name} made no progress: {message}{why}"
                        )));
                    }
                },
                Some(Ok(Watched::Delete(_))) => {
                    return Err(StepFailure::DeployFailed(format!(
                        "Deployment {name} was deleted during the rollout"
                    )));
                }
                Some(Ok(_)) => {}
                // The watcher retries with backoff, resuming from where it was.
                Some(Err(e)) => last_error = Some(e.to_string()),
                None => return Err(StepFailure::KubeUnavailable {
                    action: format!("watch Deployment {name}"),
                    message: last_error.unwrap_or_else(|| "the watch ended".to_owned()),
                }),
            },
            event = pod_events.next() => {
                if let Some(Ok(Watched::Apply(pod) | Watched::InitApply(pod))) = event
                    && let Some(reason) = stuck(&pod, version)
                {
                    let why = explain(client, namespace, selector).await;
                    return Err(StepFailure::DeployFailed(format!(
                        "Deployment {name} cannot become ready: {reason}{why}"
                    )));
                }
            }
            () = &mut backstop => {
                let why = explain(client, namespace, selector).await;
                return Err(StepFailure::DeployFailed(format!(
                    "Deployment {name} did not roll out within {}s and no controller reported why{why}{}",
                    (deadline + deadline / 2).as_secs(),
                    last_error.map(|e| format!("; last API error: {e}")).unwrap_or_default(),
                )));
            }
        }
    }
}

/// What explains a stuck rollout, for the step's reason: each stuck or unready pod's waiting
/// reason, its latest events and its last log lines (when the kubelet can serve them).
pub(super) async fn explain(client: &Client, namespace: &str, selector: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let list = match pods.list(&ListParams::default().labels(selector)).await {
        Ok(l) => l.items,
        Err(e) => return format!("; pods could not be listed: {}", failure("list pods", e)),
    };
    let mut out = String::new();
    let current = list
        .iter()
        .filter(|p| !ready(p) && p.metadata.deletion_timestamp.is_none());
    for pod in current.take(3) {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        out.push_str(&format!("\n  pod {pod_name}"));
        if let Some(reason) = stuck(pod, None) {
            out.push_str(&format!(": {reason}"));
        }
        let fields = format!("involvedObject.name={pod_name}");
        if let Ok(mut found) = events.list(&ListParams::default().fields(&fields)).await {
            found
                .items
                .sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
            for e in found.items.iter().rev().take(5).rev() {
                out.push_str(&format!(
                    "\n    event {}: {}",
                    e.reason.as_deref().unwrap_or("?"),
                    e.message.as_deref().unwrap_or("").trim()
                ));
            }
        }
        let params = LogParams {
            tail_lines: Some(10),
            ..LogParams::default()
        };
        match pods.logs(&pod_name, &params).await {
            Ok(text) if !text.trim().is_empty() => {
                for line in text.lines() {
                    out.push_str(&format!("\n    log: {line}"));
                }
            }
            Ok(_) => {}
            Err(e) => out.push_str(&format!("\n    logs unavailable: {}", short(&e))),
        }
    }
    out
}

fn short(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.chars().take(200).collect(),
        other => other.to_string().chars().take(200).collect(),
    }
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(v: serde_json::Value) -> Deployment {
        serde_json::from_value(v).expect("a deployment")
    }

    #[test]
    fn progress_reads_the_status() {
        let moving = deployment(
            json!({"metadata": {"generation": 2}, "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}}),
        );
        assert_eq!(progress(&moving), Progress::Moving);
        let old_left = deployment(
            json!({"metadata": {"generation": 2}, "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}}),
        );
        assert_eq!(progress(&old_left), Progress::Moving);
        let done = deployment(
            json!({"metadata": {"generation": 2}, "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}}),
        );
        assert_eq!(progress(&done), Progress::Done);
        let stalled = deployment(
            json!({"metadata": {"generation": 2}, "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": {"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"x\" has timed out progressing."}]}}),
        );
        assert!(matches!(progress(&stalled), Progress::Stalled(m) if m.contains("timed out")));
    }
}
