//! The release record on the cluster: which version serves, in which slot, and the objects of
//! the current and previous releases (what a rollback re-applies). Kept in a ConfigMap
//! `cutover-SERVICE` beside the release, so any worker can act on it and `kubectl` shows it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::api::{FIELD_MANAGER, failure};
use crate::error::StepFailure;

/// What the cluster runs for one service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Record {
    /// The version serving all traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) version: Option<String>,
    /// Its slot (blue-green and canary); none for rolling deploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) slot: Option<String>,
    /// Its rendered Deployment and other objects, as applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) objects: Vec<Value>,
    /// Replicas it runs.
    #[serde(default)]
    pub(super) replicas: i32,
    /// The release before it, what a rollback goes back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) previous: Option<Box<Record>>,
    /// A release being deployed that has not taken all traffic yet: what a withdraw undoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) prepared: Option<Box<Record>>,
    /// How a canary of this release splits its traffic, when it is not by the HTTPRoute
    /// the plan named: why it fell back to a replica ratio, for status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) split_note: Option<String>,
    /// The rollback request that made this the serving release, and the version it replaced:
    /// a retried rollback is recognised and changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) rolled_back_by: Option<(String, String)>,
}

impl Record {
    /// The record after `next` took all traffic: `next`, with this release as its previous
    /// (unless it is the same version again, which changes nothing).
    pub(super) fn promoted(self, mut next: Record) -> Record {
        if self.version == next.version {
            next.previous = self.previous;
        } else if self.version.is_some() {
            let mut before = self;
            before.previous = None;
            before.prepared = None;
            before.rolled_back_by = None;
            next.previous = Some(Box::new(before));
        }
        next
    }
}

fn name(service: &str) -> String {
    format!("cutover-{service}")
}

const KEY: &str = "release.json";

/// The service's record (empty before its first release).
pub(super) async fn load(
    client: &Client,
    namespace: &str,
    service: &str,
) -> Result<Record, StepFailure> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let found = api
        .get_opt(&name(service))
        .await
        .map_err(|e| failure(format!("read the release record of {service}"), e))?;
    let Some(text) = found.and_then(|cm| cm.data.and_then(|mut d| d.remove(KEY))) else {
        return Ok(Record::default());
    };
    serde_json::from_str(&text).map_err(|e| {
        StepFailure::InvalidInput(format!(
            "the release record ConfigMap {} is not Cutover's ({e}); delete it or rename it",
            name(service)
        ))
    })
}

/// Writes the service's record.
pub(super) async fn save(
    client: &Client,
    namespace: &str,
    service: &str,
    record: &Record,
) -> Result<(), StepFailure> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let text = serde_json::to_string(record).unwrap_or_default();
    let mut data = BTreeMap::new();
    data.insert(KEY.to_owned(), text);
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name(service),
            "labels": { super::render::SERVICE_LABEL: service, "app.kubernetes.io/managed-by": "cutover" },
        },
        "data": data,
    });
    api.patch(
        &name(service),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await
    .map_err(|e| failure(format!("write the release record of {service}"), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(version: &str) -> Record {
        Record {
            version: Some(version.into()),
            ..Record::default()
        }
    }

    #[test]
    fn promotion_keeps_one_previous_release() {
        let r = Record::default().promoted(at("1"));
        assert_eq!(r.previous, None);
        let r = r.promoted(at("2"));
        assert_eq!(
            r.previous.as_deref().and_then(|p| p.version.as_deref()),
            Some("1")
        );
        let r = r.promoted(at("3"));
        let prev = r.previous.as_deref().expect("previous");
        assert_eq!(prev.version.as_deref(), Some("2"));
        assert!(prev.previous.is_none(), "only one release back is kept");
        // The same version again (a retried activity) keeps the previous release.
        let again = r.clone().promoted(at("3"));
        assert_eq!(again.previous, r.previous);
    }
}
