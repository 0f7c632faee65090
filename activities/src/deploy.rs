//! The activities that act on a deploy target (`deploy.*`, `traffic.shift`) through its
//! driver ([`DeployDriver`]); the plan's `target.driver` picks which.

use std::sync::Arc;

use cutover_workflows::contracts::{
    self, DeployInput, JobInput, JobOutput, PrepareOutput, RetireInput, RetireOutput,
    RollbackInput, RollbackOutput, RouteInput, RouteOutput, ShiftInput, ShiftOutput, WithdrawInput,
    WithdrawOutput,
};
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::drivers::DeployDriver;
use crate::host::HostDriver;
use crate::kube::KubeDriver;
use crate::{on_target, verify};
use cutover_workflows::plan::Driver;

/// The activities that act on a deploy target through its driver.
pub struct TargetActivityImpls {
    host: HostDriver,
    kube: KubeDriver,
}

impl Default for TargetActivityImpls {
    fn default() -> Self {
        Self {
            host: HostDriver::new(verify::client()),
            kube: KubeDriver::default(),
        }
    }
}

#[activities]
impl TargetActivityImpls {
    /// `deploy.prepare`: starts the new version beside the old; reuses healthy instances.
    #[activity(definition = contracts::Prepare)]
    pub async fn prepare(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DeployInput,
    ) -> Result<PrepareOutput, ActivityError> {
        if input.driver == Driver::Kubernetes {
            return on_target(
                &ctx,
                input.driver,
                self.kube
                    .prepare(&input.service, &input.version, &input.spec),
            )
            .await;
        }
        let op = self
            .host
            .prepare(&input.service, &input.version, &input.spec);
        on_target(
            &ctx,
            input.driver,
            self.host
                .bound(&input.spec.root, &input.service, &input.step, op),
        )
        .await
    }

    /// `traffic.shift`: rewrites the upstream and waits until nginx applies it.
    #[activity(definition = contracts::Shift)]
    pub async fn shift(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ShiftInput,
    ) -> Result<ShiftOutput, ActivityError> {
        if input.driver == Driver::Kubernetes {
            return on_target(
                &ctx,
                input.driver,
                self.kube
                    .shift(&input.service, &input.root, &input.version, input.weight),
            )
            .await;
        }
        let op = self
            .host
            .shift(&input.service, &input.root, &input.version, input.weight);
        on_target(
            &ctx,
            input.driver,
            self.host
                .bound(&input.root, &input.service, &input.step, op),
        )
        .await
    }

    /// `deploy.retire`: stops the other versions' instances.
    #[activity(definition = contracts::Retire)]
    pub async fn retire(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RetireInput,
    ) -> Result<RetireOutput, ActivityError> {
        if input.driver == Driver::Kubernetes {
            return on_target(
                &ctx,
                input.driver,
                self.kube.retire(&input.service, &input.root, &input.keep),
            )
            .await;
        }
        let op = self.host.retire(&input.service, &input.root, &input.keep);
        on_target(
            &ctx,
            input.driver,
            self.host
                .bound(&input.root, &input.service, &input.step, op),
        )
        .await
    }

    /// `deploy.rolling`: one instance at a time.
    #[activity(definition = contracts::Rolling)]
    pub async fn rolling(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DeployInput,
    ) -> Result<PrepareOutput, ActivityError> {
        if input.driver == Driver::Kubernetes {
            return on_target(
                &ctx,
                input.driver,
                self.kube
                    .rolling(&input.service, &input.version, &input.spec),
            )
            .await;
        }
        let op = self
            .host
            .rolling(&input.service, &input.version, &input.spec);
        on_target(
            &ctx,
            input.driver,
            self.host
                .bound(&input.spec.root, &input.service, &input.step, op),
        )
        .await
    }

    /// `deploy.rollback`: keyed by workflow run and step, so a retry does not flip back.
    #[activity(definition = contracts::Rollback)]
    pub async fn rollback(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RollbackInput,
    ) -> Result<RollbackOutput, ActivityError> {
        let request = format!(
            "{}/{}/{}",
            input.step.rollout,
            ctx.info().workflow_run_id.clone().unwrap_or_default(),
            input.step.step
        );
        if input.driver == Driver::Kubernetes {
            let op = self
                .kube
                .rollback(&request, &input.service, &input.spec.root);
            return on_target(&ctx, input.driver, op).await;
        }
        let op = self
            .host
            .rollback(&request, &input.service, &input.spec.root);
        on_target(
            &ctx,
            input.driver,
            self.host
                .bound(&input.spec.root, &input.service, &input.step, op),
        )
        .await
    }

    /// `kube.job`: a migration as a Kubernetes Job; its exit code is the verdict.
    #[activity(definition = contracts::Job)]
    pub async fn job(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: JobInput,
    ) -> Result<JobOutput, ActivityError> {
        let run_id = ctx.info().workflow_run_id.clone().unwrap_or_default();
        let attempt = input.step.attempt;
        crate::acting(&ctx, self.kube.job(&input, &run_id, attempt)).await
    }

    /// `traffic.route`: the fleet's router sends traffic to every host but the drained ones.
    #[activity(definition = contracts::Route)]
    pub async fn route(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RouteInput,
    ) -> Result<RouteOutput, ActivityError> {
        let op = self.host.route(
            &input.service,
            &input.router,
            &input.drained,
            &input.weights,
        );
        on_target(&ctx, input.driver, op).await
    }

    /// `deploy.withdraw`: undoes an unfinished deploy and reports what serves, checked.
    #[activity(definition = contracts::Withdraw)]
    pub async fn withdraw(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: WithdrawInput,
    ) -> Result<WithdrawOutput, ActivityError> {
        if input.driver == Driver::Kubernetes {
            return on_target(
                &ctx,
                input.driver,
                self.kube
                    .withdraw(&input.service, &input.root, &input.version),
            )
            .await;
        }
        let op = self
            .host
            .withdraw(&input.service, &input.root, &input.version);
        on_target(
            &ctx,
            input.driver,
            self.host
                .bound(&input.root, &input.service, &input.step, op),
        )
        .await
    }
}
