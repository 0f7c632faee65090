//! A Kubernetes target: where a release lives on a cluster, and what a deploy applies there.
//!
//! The workflow never looks inside these: it passes a deploy's location (its `root`, a
//! `kubernetes://CONTEXT/NAMESPACE` string) and spec to the target activities, and the driver
//! the plan names acts on them (ARCHITECTURE.md, rule 3).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration_serde;

/// `target: { driver: kubernetes, context: ..., namespace: ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeTarget {
    /// The kubeconfig context the worker uses; none means its current context (or, inside a
    /// cluster, the pod's service account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The namespace every object of the release lives in.
    pub namespace: String,
}

/// The scheme of a Kubernetes deploy's location.
const SCHEME: &str = "kubernetes://";

impl KubeTarget {
    /// The location every deploy and rollback step of the plan carries as its `root`:
    /// `kubernetes://CONTEXT/NAMESPACE`, with an empty context for the current one. The
    /// workflow keys undo and status by it, as it does a host's release root.
    pub fn location(&self) -> String {
        format!(
            "{SCHEME}{}/{}",
            self.context.as_deref().unwrap_or(""),
            self.namespace
        )
    }

    /// Reads a location written by [`KubeTarget::location`].
    pub fn from_location(root: &str) -> Option<Self> {
        let rest = root.strip_prefix(SCHEME)?;
        let (context, namespace) = rest.rsplit_once('/')?;
        if namespace.is_empty() {
            return None;
        }
        Some(Self {
            context: (!context.is_empty()).then(|| context.to_owned()),
            namespace: namespace.to_owned(),
        })
    }
}

/// What a deploy on Kubernetes applies, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KubeDeploy {
    /// Manifest files, as the plan names them (relative to the plan's directory).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<String>,
    /// A kustomize directory rendered when the plan is loaded (`kubectl kustomize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<String>,
    /// The image repository; the release's version becomes its tag (`repo:VERSION`), or its
    /// digest when the version is one (`repo@sha256:...`).
    pub image: String,
    /// The container that gets the image; none means the Deployment's first container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The Deployment the strategy acts on (the manifests' only Deployment when not named).
    pub deployment: String,
    /// The Service that carries traffic (blue-green and canary switch its selector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Canary deploys: the Gateway API `HTTPRoute` whose backend weights split the traffic
    /// between the two slots' Services (`SERVICE-blue`, `SERVICE-green`). Without one, or on
    /// a cluster that serves no Gateway API, the split is by replica ratio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Rolling deploys: extra pods during the rollout (`25%`, `1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<String>,
    /// Rolling deploys: pods that may be unavailable during the rollout (`0`, `25%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<String>,
    /// How long the Deployment may go without progress before the step fails
    /// (`progressDeadlineSeconds`).
    #[serde(with = "duration_serde")]
    pub progress_deadline: Duration,
    /// The objects to apply, read from `manifests` or `kustomize` when the plan was loaded,
    /// so that every attempt, on any worker, applies exactly the same objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<serde_json::Value>,
}

impl KubeDeploy {
    /// The image reference of `version`: a digest is pinned with `@`, anything else is a tag.
    pub fn image_of(&self, version: &str) -> String {
        if version.starts_with("sha256:") {
            format!("{}@{version}", self.image)
        } else {
            format!("{}:{version}", self.image)
        }
    }
}

/// A `migrate` step on Kubernetes: the migration runs as a Job in the target's namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KubeJob {
    /// Where: the target's `kubernetes://CONTEXT/NAMESPACE` location.
    pub root: String,
    /// The image; a repository without a tag or digest gets the release's version as its tag.
    pub image: String,
    /// The container's command (its entrypoint when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Plain environment variables (no secrets: they would enter history).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
    /// Secrets (existing in the namespace) whose keys become environment variables: the
    /// database URL and passwords reach the Job without passing through Cutover.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from_secrets: Vec<String>,
}

impl KubeJob {
    /// The image the Job runs for `version`.
    pub fn image_for(&self, version: &str) -> String {
        let last = self.image.rsplit('/').next().unwrap_or_default();
        if self.image.contains('@') || last.contains(':') {
            self.image.clone()
        } else if version.starts_with("sha256:") {
            format!("{}@{version}", self.image)
        } else {
            format!("{}:{version}", self.image)
        }
    }
}

/// A `provision` step on Kubernetes: what the namespace needs before the first deploy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeProvision {
    /// Labels set on the target's namespace (created if absent).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub namespace_labels: std::collections::BTreeMap<String, String>,
    /// A ServiceAccount for the service's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// `ResourceQuota` `cutover-SERVICE` limits (`spec.hard`), e.g. `requests.cpu: "4"`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub resource_quota: std::collections::BTreeMap<String, String>,
    /// Secrets to create, by name: each key's value from a secret reference, resolved by the
    /// worker, so values never enter workflow history.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub secrets: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, super::types::SecretRef>,
    >,
}

/// Kinds a plan's manifests may hold: what the driver's role may apply. `Secret` is refused on
/// purpose: a secret's value in a manifest would enter workflow history.
pub const KINDS: &[(&str, &str)] = &[
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "ServiceAccount"),
    ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
];

/// Whether a version can be an image tag or digest.
pub fn valid_image_version(version: &str) -> bool {
    if let Some(hex) = version.strip_prefix("sha256:") {
        return hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    let mut bytes = version.bytes();
    version.len() <= 128
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Whether `name` is a DNS-1123 label (namespaces, Service and Deployment names).
pub fn dns_label(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_reads_back() {
        for t in [
            KubeTarget {
                context: Some("prod-eu".into()),
                namespace: "checkout".into(),
            },
            KubeTarget {
                context: None,
                namespace: "shop".into(),
            },
        ] {
            assert_eq!(KubeTarget::from_location(&t.location()), Some(t));
        }
        assert_eq!(KubeTarget::from_location("/srv/releases"), None);
        assert_eq!(KubeTarget::from_location("kubernetes://ctx/"), None);
    }

    #[test]
    fn image_versions() {
        assert!(valid_image_version("1.4.2"));
        assert!(valid_image_version(&format!("sha256:{}", "a".repeat(64))));
        assert!(!valid_image_version("sha256:abc"));
        assert!(!valid_image_version("-x"));
        assert!(!valid_image_version("a/b"));
        assert!(!valid_image_version(&"a".repeat(129)));
    }

    #[test]
    fn dns_labels() {
        assert!(dns_label("checkout-prod"));
        assert!(!dns_label("Checkout"));
        assert!(!dns_label("a_b"));
        assert!(!dns_label("-a"));
        assert!(!dns_label(&"a".repeat(64)));
    }
}
