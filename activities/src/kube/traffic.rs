//! Moving traffic between a release and the one being prepared: a routed canary's shift
//! (HTTPRoute backend weights), and undoing a prepared release that never took all traffic
//! (withdraw, and a rollback of an aborted canary or blue-green).

use serde_json::Value;

use super::render::{name, route_to, service_to};
use super::state::Record;
use super::{At, KubeDriver, deadline_of, deployment_of, service_of};
use crate::error::StepFailure;

/// The recorded HTTPRoute of a release whose canary splits traffic by route weights.
pub(super) fn route_of(record: &Record) -> Option<&Value> {
    record.objects.iter().find(|o| o["kind"] == "HTTPRoute")
}

impl KubeDriver {
    /// A routed canary's shift: the HTTPRoute sends `weight`% to the new slot's Service and
    /// the rest to the traffic Service, which selects the serving slot. At 100% the route
    /// sends everything to the new slot, the Service's selector moves to it, and the route
    /// goes back to the Service alone, as the plan wrote it. Both slots stay whole; retire
    /// scales the old one down. Returns how the traffic is split, for status.
    pub(super) async fn shift_route(
        &self,
        at: &At,
        release: &str,
        (record, next): (&Record, &Record),
        (route, svc, slot): (&Value, &Value, &str),
        weight: u8,
    ) -> Result<String, StepFailure> {
        let service = name(svc);
        let backend = format!("{service}-{slot}");
        let route_name = name(route);
        let serving = record.slot.as_deref();
        if weight < 100 && record.version.is_some() {
            if let Some(old) = serving {
                at.apply(&service_to(svc, Some(old))).await?;
            }
            let split = [(service.clone(), 100 - weight), (backend.clone(), weight)];
            at.apply(&route_to(route, &service, &split)).await?;
            return Ok(format!(
                "Gateway API HTTPRoute {route_name}: {weight}% to {backend} (slot {slot}), {}% to {service} (slot {})",
                100 - weight,
                serving.unwrap_or("serving")
            ));
        }
        at.apply(&route_to(route, &service, &[(backend.clone(), 100)]))
            .await?;
        at.apply(&service_to(svc, Some(slot))).await?;
        at.apply(route).await?;
        if weight >= 100 {
            let mut promoted = next.clone();
            promoted.prepared = None;
            let promoted = record.clone().promoted(promoted);
            at.save(release, &promoted).await?;
            return Ok(format!(
                "Gateway API HTTPRoute {route_name}: 100% to {service} (slot {slot})"
            ));
        }
        Ok(format!(
            "Gateway API HTTPRoute {route_name}: all traffic to {service} (slot {slot}), the first release of {release}"
        ))
    }
}

/// Undoes a release that was prepared but never took all traffic: the serving release whole
/// and alone behind the Service (and a routed canary's route back to the Service), the
/// prepared pods scaled away. Returns what was undone.
pub(super) async fn undo_prepared(
    at: &At,
    record: &Record,
    p: &Record,
) -> Result<Vec<String>, StepFailure> {
    let serving = record.version.clone();
    let mut undone = Vec::new();
    let serving_deployment = deployment_of(record).cloned();
    match (p.slot.as_deref(), serving_deployment) {
        (Some(_), serving_deployment) => {
            // Traffic first: the serving release whole and alone behind the Service.
            if let Some(d) = &serving_deployment {
                at.scale(d, record.replicas, deadline_of(d)).await?;
            }
            if let (Some(svc), Some(slot)) = (service_of(record), record.slot.as_deref()) {
                at.apply(&service_to(svc, Some(slot))).await?;
            }
            // A routed canary's route back to the Service alone.
            if let Some(route) = route_of(p) {
                at.apply(route).await?;
            }
            if let Some(d) = deployment_of(p) {
                at.scale(d, 0, deadline_of(d)).await?;
                undone.push(format!("Deployment {} scaled to 0", name(d)));
            }
        }
        // A rolling deploy that did not finish: the serving release's Deployment
        // applied again, so its pods replace the new ones.
        (None, Some(d)) => {
            at.scale(&d, record.replicas, deadline_of(&d)).await?;
            undone.push(format!(
                "Deployment {} back to {}",
                name(&d),
                serving.as_deref().unwrap_or("?")
            ));
        }
        // The first release, unfinished: nothing served before it.
        (None, None) => {
            if let Some(d) = deployment_of(p) {
                at.scale(d, 0, deadline_of(d)).await?;
                undone.push(format!("Deployment {} scaled to 0", name(d)));
            }
        }
    }
    Ok(undone)
}
