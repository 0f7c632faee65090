//! `cutover plan show --objects`: what a Kubernetes deploy would apply, rendered exactly as
//! the driver renders it, and, when the cluster answers, passed through server-side apply
//! with `dryRun=All` so the API server's defaults, admission and RBAC have their say without
//! anything being changed.

use cutover_workflows::plan::{DeploySpec, KubeTarget, Strategy};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::Value;

use super::api::{self, FIELD_MANAGER};
use super::render::{self, other_slot, preview, render, service_to, slot_backend};
use super::{kube_spec, state};

/// One object of a dry run.
#[derive(Debug, Serialize)]
pub struct Object {
    /// `KIND NAME`.
    pub object: String,
    /// The object as the API server would store it (dry run), or as rendered when no cluster
    /// was reached.
    pub manifest: Value,
    /// The API server's refusal, when it refused the object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// What a deploy step would apply.
#[derive(Debug, Serialize)]
pub struct DryRun {
    /// `kubernetes://CONTEXT/NAMESPACE`.
    pub location: String,
    /// The slot the version would run in (blue-green and canary), read from the release
    /// record when the cluster was reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// Why the API server did not check the objects (unreachable), if it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unchecked: Option<String>,
    /// The objects, in the order the deploy applies them.
    pub objects: Vec<Object>,
}

/// Renders `version` of `service` for the deploy `spec` and asks the cluster (when a client
/// can be made and answers) to dry-run every object.
///
/// # Errors
/// The spec is not a Kubernetes deploy, or its objects cannot be rendered.
pub async fn dry_run(
    service: &str,
    version: &str,
    spec: &DeploySpec,
) -> Result<DryRun, crate::StepFailure> {
    let k = kube_spec(spec)?;
    let target = KubeTarget::from_location(&spec.root).ok_or_else(|| {
        crate::StepFailure::InvalidInput(format!("`{}` is not a Kubernetes location", spec.root))
    })?;
    let clients = api::Clients::default();
    let client = clients.get(target.context.as_deref()).await;
    let (client, mut unchecked) = match client {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let slotted = spec.strategy != Strategy::Rolling;
    let mut slot = slotted.then(|| render::SLOTS[0].to_owned());
    if let (Some(c), true) = (&client, slotted) {
        match state::load(c, &target.namespace, service).await {
            Ok(record) => {
                if let Some(serving) = record.slot.as_deref() {
                    slot = Some(other_slot(serving).to_owned());
                }
            }
            Err(e) => unchecked = Some(e.to_string()),
        }
    }
    let r = render(k, spec.strategy, service, version, slot.as_deref())?;
    let mut objects: Vec<Value> = r.others.clone();
    objects.push(r.deployment.clone());
    if let Some(svc) = &r.service {
        objects.push(service_to(svc, slot.as_deref()));
        match (spec.strategy, slot.as_deref(), &r.route) {
            (Strategy::BlueGreen, Some(s), _) => objects.push(preview(svc, s)),
            (Strategy::Canary, Some(s), Some(route)) => {
                objects.push(slot_backend(svc, s));
                objects.push(route.clone());
            }
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(objects.len());
    for object in objects {
        let described = api::describe(&object);
        let checked = match (&client, &unchecked) {
            (Some(c), None) => Some(server_dry_run(c, &target.namespace, &object).await),
            _ => None,
        };
        out.push(match checked {
            Some(Ok(manifest)) => Object {
                object: described,
                manifest,
                refused: None,
            },
            Some(Err(Refusal::Refused(message))) => Object {
                object: described,
                manifest: object,
                refused: Some(message),
            },
            Some(Err(Refusal::Unreachable(message))) => {
                unchecked = Some(message);
                Object {
                    object: described,
                    manifest: object,
                    refused: None,
                }
            }
            None => Object {
                object: described,
                manifest: object,
                refused: None,
            },
        });
    }
    Ok(DryRun {
        location: spec.root.clone(),
        slot,
        unchecked,
        objects: out,
    })
}

enum Refusal {
    Refused(String),
    Unreachable(String),
}

async fn server_dry_run(
    client: &Client,
    namespace: &str,
    object: &Value,
) -> Result<Value, Refusal> {
    let resource: ApiResource =
        api::resource_of(object).map_err(|e| Refusal::Refused(e.to_string()))?;
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = true;
    match api.patch(name, &params, &Patch::Apply(object)).await {
        Ok(stored) => {
            let mut v = serde_json::to_value(stored).unwrap_or(Value::Null);
            if let Some(meta) = v["metadata"].as_object_mut() {
                meta.remove("managedFields");
            }
            Ok(v)
        }
        Err(e) => match api::failure(format!("apply {}", api::describe(object)), e) {
            crate::StepFailure::KubeRefused { message, .. } => Err(Refusal::Refused(message)),
            other => Err(Refusal::Unreachable(other.to_string())),
        },
    }
}
