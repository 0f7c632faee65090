//! The Kubernetes driver: the deploy operations of [`DeployDriver`] on a cluster, through its
//! API server (kube-rs), for plans with `target.driver: kubernetes`.
//!
//! - rolling: the Deployment applied with the new image; the Deployment controller replaces
//!   pods under the plan's `max_surge`/`max_unavailable`.
//! - blue-green: the new version in the other slot's Deployment (`NAME-blue`/`NAME-green`),
//!   reachable through `SERVICE-preview`; the switch moves the Service's selector.
//! - canary through a Gateway API HTTPRoute (the plan's `route`, when the cluster serves
//!   `gateway.networking.k8s.io/v1`): both slots run whole and the route's backend weights
//!   send `weight`% to the new slot's Service `SERVICE-SLOT`, the rest to the Service, which
//!   keeps selecting the serving slot until 100%.
//! - canary by replica ratio (no route, or no Gateway API on the cluster): the Service
//!   selects both slots while the new slot holds `weight`% of the replicas.
//! - rollback: the previous release's recorded objects re-applied; its pods are available
//!   before traffic moves back.
//!
//! What serves, and the objects of the current and previous release, live in the release
//! record ([`state`]), so every operation is idempotent and any worker can continue a
//! rollout another started.

mod api;
mod dry_run;
mod endpoint;
mod job;
mod provision;
mod render;
mod state;
mod traffic;
mod wait;

pub use dry_run::{DryRun, Object as DryRunObject, dry_run};
pub(crate) use endpoint::Endpoints;

use std::time::{Duration, Instant};

use cutover_workflows::contracts::{
    PrepareOutput, ProvisionOutput, RetireOutput, RollbackOutput, ShiftOutput, WithdrawOutput,
};
use cutover_workflows::plan::{DeploySpec, KubeDeploy, KubeTarget, ProvisionSpec, Strategy};
use kube::Client;
use serde_json::{Value, json};

use crate::drivers::DeployDriver;
use crate::error::StepFailure;
use render::{Rendered, name, other_slot, render, service_to, slot_backend};
use state::Record;
use traffic::{route_of, undo_prepared};

/// The Kubernetes deploy driver; one per worker, its clients shared by every activity.
#[derive(Default)]
pub(crate) struct KubeDriver {
    clients: api::Clients,
}

impl KubeDriver {
    /// `kube.job`: runs (or adopts) a migration Job and waits for its verdict.
    pub(crate) async fn job(
        &self,
        input: &cutover_workflows::contracts::JobInput,
        run_id: &str,
        attempt: u32,
    ) -> Result<cutover_workflows::contracts::JobOutput, StepFailure> {
        let at = self.at(&input.spec.root).await?;
        job::run(&at.client, &at.namespace, input, run_id, attempt).await
    }
}

/// A client and the namespace a deploy's location names.
struct At {
    client: Client,
    namespace: String,
}

impl KubeDriver {
    async fn at(&self, root: &str) -> Result<At, StepFailure> {
        let target = KubeTarget::from_location(root).ok_or_else(|| {
            StepFailure::InvalidInput(format!(
                "`{root}` is not a Kubernetes location (kubernetes://CONTEXT/NAMESPACE)"
            ))
        })?;
        Ok(At {
            client: self.clients.get(target.context.as_deref()).await?,
            namespace: target.namespace,
        })
    }
}

fn kube_spec(spec: &DeploySpec) -> Result<&KubeDeploy, StepFailure> {
    spec.kubernetes.as_deref().ok_or_else(|| {
        StepFailure::InvalidInput("the deploy step has no Kubernetes section".to_owned())
    })
}

/// A Deployment object with `replicas` set.
fn with_replicas(deployment: &Value, replicas: i32) -> Value {
    let mut d = deployment.clone();
    d["spec"]["replicas"] = json!(replicas);
    d
}

/// The recorded Deployment of a release.
fn deployment_of(record: &Record) -> Option<&Value> {
    record.objects.iter().find(|o| o["kind"] == "Deployment")
}

/// The recorded traffic Service of a release, if it has one.
fn service_of(record: &Record) -> Option<&Value> {
    record.objects.iter().find(|o| o["kind"] == "Service")
}

impl At {
    async fn apply(&self, object: &Value) -> Result<(), StepFailure> {
        api::apply(&self.client, &self.namespace, object)
            .await
            .map(|_| ())
    }

    /// Applies `deployment` with `replicas` and waits until it has rolled out.
    async fn scale(
        &self,
        deployment: &Value,
        replicas: i32,
        deadline: Duration,
    ) -> Result<(), StepFailure> {
        self.apply(&with_replicas(deployment, replicas)).await?;
        self.rolled_out(deployment, deadline).await
    }

    async fn rolled_out(&self, deployment: &Value, deadline: Duration) -> Result<(), StepFailure> {
        let selector = render::selector_of(deployment);
        let version = deployment["spec"]["template"]["metadata"]["annotations"]
            [render::VERSION_ANNOTATION]
            .as_str();
        wait::rolled_out(
            &self.client,
            &self.namespace,
            (&name(deployment), &selector, version),
            deadline,
        )
        .await
    }

    async fn record(&self, service: &str) -> Result<Record, StepFailure> {
        state::load(&self.client, &self.namespace, service).await
    }

    async fn save(&self, service: &str, record: &Record) -> Result<(), StepFailure> {
        state::save(&self.client, &self.namespace, service, record).await
    }
}

/// The deadline of a recorded release's waits: its Deployment's own progress deadline.
fn deadline_of(deployment: &Value) -> Duration {
    Duration::from_secs(
        deployment["spec"]["progressDeadlineSeconds"]
            .as_u64()
            .unwrap_or(600),
    )
}

/// The record of a release as rendered; a routed canary's record also keeps its slot's
/// backend Service and the route as the plan wrote it (all traffic to the Service).
fn record_of(version: &str, slot: Option<&str>, r: &Rendered) -> Record {
    let mut objects = vec![r.deployment.clone()];
    objects.extend(r.service.clone());
    if let (Some(route), Some(svc), Some(slot)) = (&r.route, &r.service, slot) {
        objects.push(slot_backend(svc, slot));
        objects.push(route.clone());
    }
    Record {
        version: Some(version.to_owned()),
        slot: slot.map(str::to_owned),
        objects,
        replicas: r.replicas,
        previous: None,
        prepared: None,
        split_note: None,
        rolled_back_by: None,
    }
}

impl DeployDriver for KubeDriver {
    async fn provision(
        &self,
        service: &str,
        _version: &str,
        spec: &ProvisionSpec,
    ) -> Result<ProvisionOutput, StepFailure> {
        let k = spec.kubernetes.as_deref().ok_or_else(|| {
            StepFailure::InvalidInput("the provision step has no Kubernetes section".to_owned())
        })?;
        let at = self.at(&spec.root).await?;
        provision::ensure(&at.client, &at.namespace, service, k).await
    }

    async fn prepare(
        &self,
        service: &str,
        version: &str,
        spec: &DeploySpec,
    ) -> Result<PrepareOutput, StepFailure> {
        let k = kube_spec(spec)?;
        let at = self.at(&spec.root).await?;
        let mut record = at.record(service).await?;
        if record.version.as_deref() == Some(version) {
            return Ok(PrepareOutput {
                version: version.to_owned(),
                ports: Vec::new(),
                previous: record.previous.as_ref().and_then(|p| p.version.clone()),
                already_current: true,
            });
        }
        let slot = match (&record.prepared, &record.slot) {
            (Some(p), _) if p.version.as_deref() == Some(version) => {
                p.slot.clone().unwrap_or_default()
            }
            (_, Some(serving)) => other_slot(serving).to_owned(),
            (_, None) => render::SLOTS[0].to_owned(),
        };
        let mut r = render(k, spec.strategy, service, version, Some(&slot))?;
        let mut split_note = None;
        if r.route.is_some() && !api::serves_http_routes(&at.client).await? {
            r.route = None;
            split_note = Some("the cluster serves no Gateway API HTTPRoute".to_owned());
        }
        for object in &r.others {
            at.apply(object).await?;
        }
        // A canary by replica ratio starts with one pod, its weights set the replicas; a
        // routed canary and blue-green start whole.
        let start = if spec.strategy == Strategy::Canary && r.route.is_none() {
            r.replicas.min(1)
        } else {
            r.replicas
        };
        // Recorded before it is created, so a withdraw after a crash finds it.
        let mut prepared = record_of(version, Some(&slot), &r);
        prepared.split_note = split_note;
        record.prepared = Some(Box::new(prepared));
        at.save(service, &record).await?;
        at.scale(&r.deployment, start, k.progress_deadline).await?;
        if let (Some(svc), Some(_)) = (&r.service, &r.route) {
            at.apply(&slot_backend(svc, &slot)).await?;
        }
        if let Some(svc) = &r.service
            && spec.strategy == Strategy::BlueGreen
        {
            at.apply(&render::preview(svc, &slot)).await?;
        }
        Ok(PrepareOutput {
            version: version.to_owned(),
            ports: Vec::new(),
            previous: record.version.clone(),
            already_current: false,
        })
    }

    async fn shift(
        &self,
        service: &str,
        root: &str,
        version: &str,
        weight: u8,
    ) -> Result<ShiftOutput, StepFailure> {
        let at = self.at(root).await?;
        let started = Instant::now();
        let record = at.record(service).await?;
        let done = ShiftOutput {
            weight,
            applied_ms: 0.0,
            by: None,
        };
        let Some(next) = record
            .prepared
            .as_deref()
            .filter(|p| p.version.as_deref() == Some(version))
        else {
            if record.version.as_deref() == Some(version) {
                return Ok(done);
            }
            return Err(StepFailure::InvalidInput(format!(
                "{version} of {service} was not prepared on this cluster"
            )));
        };
        let deployment = deployment_of(next).ok_or_else(|| {
            StepFailure::InvalidInput("the prepared release has no Deployment".to_owned())
        })?;
        if let (Some(route), Some(svc), Some(slot)) =
            (route_of(next), service_of(next), next.slot.as_deref())
        {
            let by = self
                .shift_route(&at, service, (&record, next), (route, svc, slot), weight)
                .await?;
            return Ok(ShiftOutput {
                weight,
                applied_ms: started.elapsed().as_secs_f64() * 1000.0,
                by: Some(by),
            });
        }
        let deadline = deadline_of(deployment);
        let total = next.replicas;
        let new = if weight >= 100 {
            total
        } else {
            (((i64::from(total) * i64::from(weight) + 99) / 100) as i32).clamp(1, total.max(1))
        };
        at.scale(deployment, new, deadline).await?;
        let slot = next.slot.as_deref();
        if let Some(svc) = service_of(next) {
            let selecting = if weight >= 100 { slot } else { None };
            at.apply(&service_to(svc, selecting)).await?;
        }
        if weight < 100 {
            if let Some(old) = deployment_of(&record) {
                at.scale(old, (total - new).max(0), deadline).await?;
            }
        } else {
            let mut promoted = next.clone();
            promoted.prepared = None;
            let record = record.clone().promoted(promoted);
            at.save(service, &record).await?;
        }
        Ok(ShiftOutput {
            weight,
            applied_ms: started.elapsed().as_secs_f64() * 1000.0,
            by: Some(format!(
                "replica ratio: {new} of {total} pods in slot {}{}",
                slot.unwrap_or("?"),
                next.split_note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            )),
        })
    }

    async fn retire(
        &self,
        service: &str,
        root: &str,
        keep: &str,
    ) -> Result<RetireOutput, StepFailure> {
        let at = self.at(root).await?;
        let mut record = at.record(service).await?;
        let mut stopped = Vec::new();
        let mut releases: Vec<Record> = Vec::new();
        if let Some(p) = record.previous.as_deref() {
            releases.push(p.clone());
        }
        if let Some(p) = record.prepared.as_deref() {
            releases.push(p.clone());
        }
        if keep.is_empty() {
            releases.push(record.clone());
        }
        for r in releases {
            // A rolling release shares its Deployment with the next one: only a slot's, or
            // the whole release when nothing is kept, is scaled down.
            if r.version.as_deref() == Some(keep) || (r.slot.is_none() && !keep.is_empty()) {
                continue;
            }
            if let Some(d) = deployment_of(&r) {
                at.scale(d, 0, deadline_of(d)).await?;
                stopped.push(name(d));
            }
        }
        let before = record.clone();
        if keep.is_empty() {
            record = Record::default();
        } else {
            record.prepared = None;
        }
        // A rolling deploy leaves nothing to retire: no write for an unchanged record.
        if record != before {
            at.save(service, &record).await?;
        }
        stopped.sort();
        stopped.dedup();
        Ok(RetireOutput { stopped })
    }

    async fn rolling(
        &self,
        service: &str,
        version: &str,
        spec: &DeploySpec,
    ) -> Result<PrepareOutput, StepFailure> {
        let k = kube_spec(spec)?;
        let at = self.at(&spec.root).await?;
        let record = at.record(service).await?;
        let already_current = record.version.as_deref() == Some(version);
        let r = render(k, spec.strategy, service, version, None)?;
        if !already_current {
            // Recorded before it is applied, so a withdraw after a crash finds it.
            let mut pending = record.clone();
            pending.prepared = Some(Box::new(record_of(version, None, &r)));
            at.save(service, &pending).await?;
        }
        for object in &r.others {
            at.apply(object).await?;
        }
        at.apply(&r.deployment).await?;
        at.rolled_out(&r.deployment, k.progress_deadline).await?;
        if let Some(svc) = &r.service {
            at.apply(svc).await?;
        }
        let previous = if already_current {
            record.previous.as_ref().and_then(|p| p.version.clone())
        } else {
            record.version.clone()
        };
        let next = record.promoted(record_of(version, None, &r));
        at.save(service, &next).await?;
        Ok(PrepareOutput {
            version: version.to_owned(),
            ports: Vec::new(),
            previous,
            already_current,
        })
    }

    async fn rollback(
        &self,
        request: &str,
        service: &str,
        root: &str,
    ) -> Result<RollbackOutput, StepFailure> {
        let at = self.at(root).await?;
        let record = at.record(service).await?;
        if let Some((by, from)) = &record.rolled_back_by
            && by == request
        {
            return Ok(RollbackOutput {
                from: from.clone(),
                to: record.version.clone().unwrap_or_default(),
            });
        }
        // A canary or blue-green release stopped before it took all traffic: rolling it back
        // means the serving release alone again, not the one before it.
        if let Some(p) = record.prepared.as_deref().cloned()
            && p.version != record.version
        {
            undo_prepared(&at, &record, &p).await?;
            let from = p.version.clone().unwrap_or_default();
            let mut back = record.clone();
            back.prepared = None;
            back.rolled_back_by = Some((request.to_owned(), from.clone()));
            at.save(service, &back).await?;
            return Ok(RollbackOutput {
                from,
                to: back.version.unwrap_or_default(),
            });
        }
        let from = record.version.clone().unwrap_or_default();
        let Some(prev) = record.previous.as_deref().cloned() else {
            return Err(StepFailure::DeployFailed(format!(
                "{service} has no previous release on this cluster to roll back to"
            )));
        };
        let deployment = deployment_of(&prev).ok_or_else(|| {
            StepFailure::InvalidInput("the previous release has no Deployment".to_owned())
        })?;
        // The previous pods are available before any traffic returns to them.
        at.scale(deployment, prev.replicas, deadline_of(deployment))
            .await?;
        for object in prev.objects.iter().filter(|o| o["kind"] != "Deployment") {
            at.apply(&match prev.slot.as_deref() {
                Some(slot) if object["kind"] == "Service" => service_to(object, Some(slot)),
                _ => object.clone(),
            })
            .await?;
        }
        if prev.slot.is_some()
            && let Some(current) = deployment_of(&record)
            && name(current) != name(deployment)
        {
            at.scale(current, 0, deadline_of(current)).await?;
        }
        let mut back = prev;
        back.rolled_back_by = Some((request.to_owned(), from.clone()));
        at.save(service, &back).await?;
        Ok(RollbackOutput {
            from,
            to: back.version.unwrap_or_default(),
        })
    }

    async fn withdraw(
        &self,
        service: &str,
        root: &str,
        version: &str,
    ) -> Result<WithdrawOutput, StepFailure> {
        let at = self.at(root).await?;
        let mut record = at.record(service).await?;
        let serving = record.version.clone();
        if serving.as_deref() == Some(version) {
            return Ok(WithdrawOutput {
                undone: Vec::new(),
                serving,
                ports: Vec::new(),
                still_serving: true,
            });
        }
        let mut undone = Vec::new();
        if let Some(p) = record.prepared.take() {
            undone = undo_prepared(&at, &record, &p).await?;
            at.save(service, &record).await?;
        }
        Ok(WithdrawOutput {
            undone,
            serving,
            ports: Vec::new(),
            still_serving: false,
        })
    }
}
