//! `drill.switch` on Kubernetes: the application's database URL lives in a Secret key its
//! pods read. Switching writes the new primary's URL there (resolved on the worker from its
//! secret reference, so it never enters history) and restarts the Deployment, waiting until
//! its new pods are available.
//!
//! Idempotent: writing the same URL again leaves the Secret's resourceVersion unchanged, and
//! the restart stamps the pod template with that resourceVersion, so a retried switch starts
//! no second rollout.

use cutover_workflows::drill::contracts::{At, KubeEndpoint};
use cutover_workflows::plan::KubeTarget;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use secrecy::ExposeSecret;
use serde_json::json;

use super::api::{Clients, failure};
use super::wait;
use crate::error::StepFailure;

/// The field manager of the drill's writes: its own, so a drill's Secret key and restart
/// stamp never take fields away from the release's manager (`cutover`).
const DRILL_MANAGER: &str = "cutover-drill";

/// The pod-template annotation a restart sets: the Secret's resourceVersion it follows.
const RESTARTED_FOR: &str = "cutover.dev/database-endpoint";

/// Clients for the drill's Kubernetes switches, shared by every activity of a worker.
#[derive(Default)]
pub(crate) struct Endpoints {
    clients: Clients,
}

impl Endpoints {
    /// Points the application at `url` (a secret the worker resolved).
    pub(crate) async fn switch(
        &self,
        to: &KubeEndpoint,
        url: &secrecy::SecretString,
    ) -> Result<At, StepFailure> {
        let target = KubeTarget::from_location(&to.root).ok_or_else(|| {
            StepFailure::InvalidInput(format!("`{}` is not a Kubernetes location", to.root))
        })?;
        let client = self.clients.get(target.context.as_deref()).await?;
        let ns = &target.namespace;
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let patch = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": { "name": to.secret },
            "stringData": { to.key.as_str(): url.expose_secret() },
        });
        // `stringData` is write-only: the API server merges it into `data`, so this manager
        // owns that one key and nothing else of the Secret.
        let written = secrets
            .patch(
                &to.secret,
                &PatchParams::apply(DRILL_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(|e| failure(format!("write Secret {} key {}", to.secret, to.key), e))?;
        let version = written.metadata.resource_version.unwrap_or_default();
        let mut note = format!(
            "Secret {} key {} points at the new primary",
            to.secret, to.key
        );
        if let Some(name) = &to.restart {
            let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
            let restart = json!({"spec": {"template": {"metadata": {"annotations": {
                RESTARTED_FOR: format!("{}@{version}", to.secret)
            }}}}});
            let d = deployments
                .patch(
                    name,
                    &PatchParams {
                        field_manager: Some(DRILL_MANAGER.to_owned()),
                        ..PatchParams::default()
                    },
                    &Patch::Merge(&restart),
                )
                .await
                .map_err(|e| failure(format!("restart Deployment {name}"), e))?;
            let selector = d
                .spec
                .and_then(|s| s.selector.match_labels)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            wait::rolled_out(&client, ns, (name, &selector, None), to.rollout_within).await?;
            note.push_str(&format!("; Deployment {name} restarted and rolled out"));
        }
        Ok(At {
            at_ms: chrono::Utc::now().timestamp_millis(),
            note,
        })
    }
}
