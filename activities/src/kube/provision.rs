//! `provision` on Kubernetes: the target's namespace (created if absent, labelled), a
//! ServiceAccount, a ResourceQuota and Secrets whose values come from secret references
//! resolved here, on the worker, so no value enters workflow history. Every object is
//! server-side applied, so a second run changes nothing; the output lists what changed, by
//! name only.

use k8s_openapi::api::core::v1::{Namespace, ResourceQuota, Secret, ServiceAccount};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use super::api::{FIELD_MANAGER, failure};
use crate::error::StepFailure;
use crate::secrets::Secrets;
use cutover_workflows::contracts::ProvisionOutput;
use cutover_workflows::plan::KubeProvision;

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Makes `namespace` hold what `spec` asks for `service`.
pub(super) async fn ensure(
    client: &Client,
    namespace: &str,
    service: &str,
    spec: &KubeProvision,
) -> Result<ProvisionOutput, StepFailure> {
    // Every secret is resolved before anything changes: a missing one changes nothing.
    let mut resolved = Vec::new();
    for (name, refs) in &spec.secrets {
        resolved.push((name, Secrets::resolve(refs)?));
    }
    let mut changes = Vec::new();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let existing = namespaces
        .get_opt(namespace)
        .await
        .map_err(|e| failure(format!("read namespace {namespace}"), e))?;
    let labels_set = existing.as_ref().is_some_and(|ns| {
        let have = ns.metadata.labels.clone().unwrap_or_default();
        spec.namespace_labels
            .iter()
            .all(|(k, v)| have.get(k) == Some(v))
    });
    if existing.is_none() || !labels_set {
        let object = json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": { "name": namespace, "labels": spec.namespace_labels },
        });
        namespaces
            .patch(namespace, &apply_params(), &Patch::Apply(&object))
            .await
            .map_err(|e| failure(format!("apply namespace {namespace}"), e))?;
        changes.push(if existing.is_none() {
            format!("namespace {namespace} created")
        } else {
            format!("namespace {namespace} labelled")
        });
    }
    if let Some(sa) = &spec.service_account {
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        if api
            .get_opt(sa)
            .await
            .map_err(|e| failure(format!("read ServiceAccount {sa}"), e))?
            .is_none()
        {
            let object = json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": { "name": sa, "labels": labels(service) },
            });
            api.patch(sa, &apply_params(), &Patch::Apply(&object))
                .await
                .map_err(|e| failure(format!("apply ServiceAccount {sa}"), e))?;
            changes.push(format!("ServiceAccount {sa} created"));
        }
    }
    if !spec.resource_quota.is_empty() {
        let name = format!("cutover-{service}");
        let api: Api<ResourceQuota> = Api::namespaced(client.clone(), namespace);
        let current = api
            .get_opt(&name)
            .await
            .map_err(|e| failure(format!("read ResourceQuota {name}"), e))?;
        let have = current
            .and_then(|q| q.spec.and_then(|s| s.hard))
            .unwrap_or_default();
        let same = have.len() == spec.resource_quota.len()
            && spec
                .resource_quota
                .iter()
                .all(|(k, v)| have.get(k).is_some_and(|q| &q.0 == v));
        if !same {
            let object = json!({
                "apiVersion": "v1", "kind": "ResourceQuota",
                "metadata": { "name": name, "labels": labels(service) },
                "spec": { "hard": spec.resource_quota },
            });
            api.patch(&name, &apply_params(), &Patch::Apply(&object))
                .await
                .map_err(|e| failure(format!("apply ResourceQuota {name}"), e))?;
            changes.push(format!("ResourceQuota {name} set"));
        }
    }
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for (name, values) in resolved {
        let current = api
            .get_opt(name)
            .await
            .map_err(|e| failure(format!("read Secret {name}"), e))?;
        let have = current.and_then(|s| s.data).unwrap_or_default();
        let same = values
            .iter()
            .all(|(k, v)| have.get(k).is_some_and(|b| b.0 == v.as_bytes()));
        if same && have.len() == values.iter().count() {
            continue;
        }
        let data: serde_json::Map<String, serde_json::Value> = values
            .iter()
            .map(|(k, v)| (k.to_owned(), json!(v)))
            .collect();
        let object = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": name, "labels": labels(service) },
            "type": "Opaque",
            "stringData": data,
        });
        api.patch(name, &apply_params(), &Patch::Apply(&object))
            .await
            .map_err(|e| values.redact_failure(failure(format!("apply Secret {name}"), e)))?;
        let keys: Vec<&str> = values.iter().map(|(k, _)| k).collect();
        changes.push(format!("Secret {name} set ({})", keys.join(", ")));
    }
    Ok(ProvisionOutput { changes })
}

fn labels(service: &str) -> serde_json::Value {
    json!({ super::render::SERVICE_LABEL: service, "app.kubernetes.io/managed-by": "cutover" })
}
