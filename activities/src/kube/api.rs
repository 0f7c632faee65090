//! Talking to the API server: clients per kubeconfig context, server-side apply of the plan's
//! objects, and the API's refusals turned into typed step failures.

use std::collections::HashMap;

use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::{Api, Client, Config};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::error::StepFailure;

/// Every write Cutover makes carries this field manager, so `kubectl` and the API's
/// `managedFields` show which fields the release owns.
pub(super) const FIELD_MANAGER: &str = "cutover";

/// One client per kubeconfig context, made on first use and reused by every activity.
#[derive(Default)]
pub(super) struct Clients(Mutex<HashMap<Option<String>, Client>>);

impl Clients {
    /// The client for `context` (none: the current context, or the pod's service account).
    pub(super) async fn get(&self, context: Option<&str>) -> Result<Client, StepFailure> {
        let key = context.map(str::to_owned);
        let mut cache = self.0.lock().await;
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let unusable = |message: String| StepFailure::KubeRefused {
            action: "connect to the cluster".to_owned(),
            message,
        };
        let config = match context {
            Some(name) => {
                let kubeconfig = Kubeconfig::read()
                    .map_err(|e| unusable(format!("cannot read the worker's kubeconfig: {e}")))?;
                let options = KubeConfigOptions {
                    context: Some(name.to_owned()),
                    ..KubeConfigOptions::default()
                };
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| unusable(format!("kubeconfig context `{name}`: {e}")))?
            }
            None => Config::infer().await.map_err(|e| {
                unusable(format!(
                    "no kubeconfig and not in a cluster ({e}); set KUBECONFIG on the worker"
                ))
            })?,
        };
        let client = Client::try_from(config).map_err(|e| unusable(e.to_string()))?;
        cache.insert(key, client.clone());
        Ok(client)
    }
}

/// Classifies an API error: the API's refusals (403 RBAC, 400/422 invalid objects, 404 an
/// unknown kind or namespace, 401) cannot succeed on retry; the rest (5xx, 429, 409,
/// connection errors) can.
pub(super) fn failure(action: impl Into<String>, e: kube::Error) -> StepFailure {
    let action = action.into();
    match e {
        kube::Error::Api(s) if matches!(s.code, 400 | 401 | 403 | 404 | 422) => {
            StepFailure::KubeRefused {
                action,
                message: format!("{} ({} {})", s.message, s.code, s.reason),
            }
        }
        kube::Error::Api(s) => StepFailure::KubeUnavailable {
            action,
            message: format!("{} ({} {})", s.message, s.code, s.reason),
        },
        other => StepFailure::KubeUnavailable {
            action,
            message: other.to_string(),
        },
    }
}

/// The API resource of an object the driver may apply (see `cutover_workflows::plan::KINDS`):
/// known statically, so applying needs no discovery request.
pub(super) fn resource_of(object: &Value) -> Result<ApiResource, StepFailure> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let plural = match kind {
        "Deployment" => "deployments",
        "Service" => "services",
        "ConfigMap" => "configmaps",
        "ServiceAccount" => "serviceaccounts",
        "PodDisruptionBudget" => "poddisruptionbudgets",
        "HorizontalPodAutoscaler" => "horizontalpodautoscalers",
        "Ingress" => "ingresses",
        "NetworkPolicy" => "networkpolicies",
        "HTTPRoute" => "httproutes",
        // Not from manifests: the driver's own migration Jobs.
        "Job" => "jobs",
        other => {
            return Err(StepFailure::InvalidInput(format!(
                "Cutover does not apply `{other}` objects"
            )));
        }
    };
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Ok(ApiResource::from_gvk_with_plural(&gvk, plural))
}

/// `KIND NAME`, for messages.
pub(super) fn describe(object: &Value) -> String {
    format!(
        "{} {}",
        object["kind"].as_str().unwrap_or("object"),
        object["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// Server-side apply of one object in `namespace`, as field manager `cutover`, taking over
/// fields another manager set (the plan is the source of truth). Applying the same object
/// again changes nothing, so a retried activity is safe.
#[tracing::instrument(
    name = "kube.apply",
    skip_all,
    fields(namespace = %namespace, object = %describe(object))
)]
pub(super) async fn apply(
    client: &Client,
    namespace: &str,
    object: &Value,
) -> Result<DynamicObject, StepFailure> {
    let resource = resource_of(object)?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|e| failure(format!("apply {}", describe(object)), e))
}

/// Whether the cluster serves Gateway API HTTPRoutes (`gateway.networking.k8s.io/v1`): a
/// discovery request every authenticated user may make. A cluster without the CRDs answers
/// 404, which means no.
pub(super) async fn serves_http_routes(client: &Client) -> Result<bool, StepFailure> {
    match client
        .list_api_group_resources("gateway.networking.k8s.io/v1")
        .await
    {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == "httproutes")),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(failure("discover the Gateway API", e)),
    }
}
