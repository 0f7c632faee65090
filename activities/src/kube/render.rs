//! From the plan's objects to what is applied for one version: the image set, the release's
//! labels, the rollout settings, and for blue-green and canary the slot the version runs in.
//!
//! Rendering is a pure function of the plan and the version, so every attempt of a step
//! applies byte-for-byte the same objects.

use cutover_workflows::plan::{KubeDeploy, Strategy};
use serde_json::{Value, json};

use crate::error::StepFailure;

/// The label naming the service that owns an object.
pub(super) const SERVICE_LABEL: &str = "cutover.dev/service";
/// The label naming a blue-green or canary Deployment's slot.
pub(super) const SLOT_LABEL: &str = "cutover.dev/slot";
/// The annotation naming the version a Deployment runs.
pub(super) const VERSION_ANNOTATION: &str = "cutover.dev/version";

/// The two slots of blue-green and canary deploys: the new version goes to the one not
/// serving.
pub(super) const SLOTS: [&str; 2] = ["blue", "green"];

/// The other slot.
pub(super) fn other_slot(slot: &str) -> &'static str {
    if slot == SLOTS[0] { SLOTS[1] } else { SLOTS[0] }
}

/// What one version of the release applies.
#[derive(Clone, Debug)]
pub(super) struct Rendered {
    /// The Deployment, named `NAME` (rolling) or `NAME-SLOT`.
    pub(super) deployment: Value,
    /// The Service carrying traffic (blue-green and canary switch its selector), if any.
    pub(super) service: Option<Value>,
    /// The canary's HTTPRoute, whose backend weights split the traffic, if the plan names one.
    pub(super) route: Option<Value>,
    /// Everything else, applied as written (plus labels).
    pub(super) others: Vec<Value>,
    /// Replicas the Deployment asks for.
    pub(super) replicas: i32,
}

/// A Deployment's pod selector (`matchLabels` as `k=v,...`), for finding its pods.
pub(super) fn selector_of(deployment: &Value) -> String {
    deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// An object's name.
pub(super) fn name(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Renders `version` of `service` from the plan's objects, into `slot` for blue-green and
/// canary deploys.
pub(super) fn render(
    spec: &KubeDeploy,
    strategy: Strategy,
    service: &str,
    version: &str,
    slot: Option<&str>,
) -> Result<Rendered, StepFailure> {
    let mut deployment = None;
    let mut traffic = None;
    let mut route = None;
    let mut others = Vec::new();
    for object in &spec.objects {
        let mut object = object.clone();
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("namespace");
        }
        label(&mut object, SERVICE_LABEL, service);
        label(&mut object, "app.kubernetes.io/managed-by", "cutover");
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let named = name(&object);
        if kind == "Deployment" && named == spec.deployment {
            deployment = Some(object);
        } else if kind == "Service" && spec.service.as_deref() == Some(named.as_str()) {
            traffic = Some(object);
        } else if kind == "HTTPRoute" && spec.route.as_deref() == Some(named.as_str()) {
            route = Some(object);
        } else {
            others.push(object);
        }
    }
    let mut deployment = deployment.ok_or_else(|| {
        StepFailure::InvalidInput(format!(
            "the plan's objects hold no Deployment `{}`",
            spec.deployment
        ))
    })?;
    let replicas = deployment["spec"]["replicas"]
        .as_i64()
        .map_or(1, |r| r.clamp(0, 10_000) as i32);
    set_image(&mut deployment, spec, version)?;
    let d = &mut deployment;
    d["metadata"]["annotations"][VERSION_ANNOTATION] = json!(version);
    d["spec"]["template"]["metadata"]["annotations"][VERSION_ANNOTATION] = json!(version);
    d["spec"]["progressDeadlineSeconds"] = json!(spec.progress_deadline.as_secs().max(1));
    if strategy == Strategy::Rolling && (spec.max_surge.is_some() || spec.max_unavailable.is_some())
    {
        let mut rolling = serde_json::Map::new();
        for (key, value) in [
            ("maxSurge", &spec.max_surge),
            ("maxUnavailable", &spec.max_unavailable),
        ] {
            if let Some(v) = value {
                rolling.insert(key.to_owned(), int_or_percent(v));
            }
        }
        d["spec"]["strategy"] = json!({ "type": "RollingUpdate", "rollingUpdate": rolling });
    }
    if let Some(slot) = slot {
        let base = name(d);
        d["metadata"]["name"] = json!(format!("{base}-{slot}"));
        label(d, SLOT_LABEL, slot);
        d["spec"]["selector"]["matchLabels"][SLOT_LABEL] = json!(slot);
        d["spec"]["template"]["metadata"]["labels"][SLOT_LABEL] = json!(slot);
    }
    Ok(Rendered {
        deployment,
        service: traffic,
        route,
        others,
        replicas,
    })
}

/// The traffic Service with its selector sent to `slot` (none: every slot's pods, as a
/// canary by replica ratio needs).
pub(super) fn service_to(service: &Value, slot: Option<&str>) -> Value {
    let mut s = service.clone();
    match slot {
        Some(slot) => s["spec"]["selector"][SLOT_LABEL] = json!(slot),
        None => {
            if let Some(sel) = s["spec"]["selector"].as_object_mut() {
                sel.remove(SLOT_LABEL);
            }
        }
    }
    s
}

/// A preview Service, `NAME-preview`, selecting only `slot`: the new version reachable before
/// it takes traffic.
pub(super) fn preview(service: &Value, slot: &str) -> Value {
    let name = format!("{}-preview", name(service));
    slot_service(service, slot, &name)
}

/// The Service of one slot, `NAME-SLOT`: the backend an HTTPRoute sends a canary's share to.
pub(super) fn slot_backend(service: &Value, slot: &str) -> Value {
    let name = format!("{}-{slot}", name(service));
    slot_service(service, slot, &name)
}

/// A copy of the traffic Service named `name` and selecting only `slot`.
fn slot_service(service: &Value, slot: &str, name: &str) -> Value {
    let mut s = service_to(service, Some(slot));
    s["metadata"]["name"] = json!(name);
    if let Some(spec) = s["spec"].as_object_mut() {
        // The cluster assigns the copy its own address and node ports.
        for key in ["clusterIP", "clusterIPs", "loadBalancerIP"] {
            spec.remove(key);
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports {
                if let Some(p) = p.as_object_mut() {
                    p.remove("nodePort");
                }
            }
        }
    }
    s
}

/// The HTTPRoute with every backendRef naming Service `service` replaced by `weights`, a list
/// of (Service name, weight): the same port, the traffic split between them.
pub(super) fn route_to(route: &Value, service: &str, weights: &[(String, u8)]) -> Value {
    let mut r = route.clone();
    if let Some(rules) = r["spec"]["rules"].as_array_mut() {
        for rule in rules {
            let Some(refs) = rule["backendRefs"].as_array() else {
                continue;
            };
            let mut split = Vec::with_capacity(refs.len() + 1);
            for b in refs {
                if b["name"] == service {
                    for (name, weight) in weights {
                        let mut each = b.clone();
                        each["name"] = json!(name);
                        each["weight"] = json!(weight);
                        split.push(each);
                    }
                } else {
                    split.push(b.clone());
                }
            }
            rule["backendRefs"] = Value::Array(split);
        }
    }
    r
}

fn label(object: &mut Value, key: &str, value: &str) {
    object["metadata"]["labels"][key] = json!(value);
}

fn int_or_percent(v: &str) -> Value {
    v.parse::<i64>().map_or_else(|_| json!(v), |n| json!(n))
}

fn set_image(deployment: &mut Value, spec: &KubeDeploy, version: &str) -> Result<(), StepFailure> {
    let image = spec.image_of(version);
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .ok_or_else(|| {
            StepFailure::InvalidInput(format!(
                "Deployment `{}` has no containers",
                spec.deployment
            ))
        })?;
    let target = match &spec.container {
        Some(c) => containers
            .iter_mut()
            .find(|x| x["name"].as_str() == Some(c.as_str())),
        None => containers.first_mut(),
    };
    let container = target.ok_or_else(|| {
        StepFailure::InvalidInput(format!(
            "Deployment `{}` has no container `{}`",
            spec.deployment,
            spec.container.as_deref().unwrap_or("")
        ))
    })?;
    container["image"] = json!(image);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec() -> KubeDeploy {
        KubeDeploy {
            manifests: vec!["app.yaml".into()],
            kustomize: None,
            image: "registry.example.com/shop".into(),
            container: None,
            deployment: "shop".into(),
            service: Some("shop".into()),
            route: None,
            max_surge: Some("1".into()),
            max_unavailable: Some("0".into()),
            progress_deadline: Duration::from_secs(60),
            objects: vec![
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop", "namespace": "x"},
                    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "shop"}},
                      "template": {"metadata": {"labels": {"app": "shop"}}, "spec": {"containers": [{"name": "app"}]}}}}),
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "shop"},
                    "spec": {"selector": {"app": "shop"}, "ports": [{"port": 80}]}}),
            ],
        }
    }

    #[test]
    fn rolling_sets_image_labels_and_surge() {
        let r = render(&spec(), Strategy::Rolling, "shop", "1.2.3", None).expect("renders");
        let d = &r.deployment;
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.example.com/shop:1.2.3"
        );
        assert_eq!(d["metadata"]["name"], "shop");
        assert!(d["metadata"].get("namespace").is_none());
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 1);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 60);
        assert_eq!(r.replicas, 3);
        assert_eq!(selector_of(&r.deployment), "app=shop");
    }

    #[test]
    fn slots_rename_and_select() {
        let r = render(
            &spec(),
            Strategy::BlueGreen,
            "shop",
            "sha256:ab",
            Some("green"),
        )
        .expect("renders");
        assert_eq!(name(&r.deployment), "shop-green");
        assert_eq!(
            selector_of(&r.deployment),
            "app=shop,cutover.dev/slot=green"
        );
        assert_eq!(
            r.deployment["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.example.com/shop@sha256:ab"
        );
        let svc = r.service.expect("traffic service");
        assert_eq!(
            service_to(&svc, Some("green"))["spec"]["selector"][SLOT_LABEL],
            "green"
        );
        assert!(
            service_to(&svc, None)["spec"]["selector"]
                .get(SLOT_LABEL)
                .is_none()
        );
        assert_eq!(preview(&svc, "green")["metadata"]["name"], "shop-preview");
        let backend = slot_backend(&svc, "green");
        assert_eq!(backend["metadata"]["name"], "shop-green");
        assert_eq!(backend["spec"]["selector"][SLOT_LABEL], "green");
    }

    #[test]
    fn a_route_splits_the_backend_naming_the_service_and_keeps_the_others() {
        let route = json!({"kind": "HTTPRoute", "metadata": {"name": "shop"}, "spec": {"rules": [
            {"backendRefs": [{"name": "shop", "port": 80}, {"name": "other", "port": 81}]},
            {"matches": [{"path": {"value": "/x"}}]}
        ]}});
        let split = route_to(
            &route,
            "shop",
            &[("shop".to_owned(), 75), ("shop-green".to_owned(), 25)],
        );
        assert_eq!(
            split["spec"]["rules"][0]["backendRefs"],
            json!([{"name": "shop", "port": 80, "weight": 75},
                   {"name": "shop-green", "port": 80, "weight": 25},
                   {"name": "other", "port": 81}])
        );
        assert!(split["spec"]["rules"][1].get("backendRefs").is_none());
    }
}
