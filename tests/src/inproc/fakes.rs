//! Scripted stand-ins for every activity that touches the world. Each records its call
//! (activity name, step, attempt) and then does what the script says for that activity and
//! step: succeed with a plausible output, fail (retryable or not, with an error kind), or
//! block until the test releases it or the activity is cancelled.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cutover_workflows::analysis::Measurement;
use cutover_workflows::contracts::{
    self, AnalysisInput, BuildInput, BuildOutput, CommandInput, CommandOutput, DeployInput,
    MigrateInput, MigrateOutput, PrepareOutput, ProvisionInput, ProvisionOutput, ReleaseInput,
    RetireInput, RetireOutput, RollbackInput, RollbackOutput, ShiftInput, ShiftOutput,
    UndoMigrationsInput, UndoMigrationsOutput, VerifyInput, VerifyOutput, WithdrawInput,
    WithdrawOutput,
};
use cutover_workflows::drill::contracts as drill;
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tokio::sync::watch;

/// What a fake does when called.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Returns a plausible output.
    Succeed,
    /// Fails with this error kind; retryable or not.
    Fail {
        /// The error kind (the failure's type name), e.g. `CommandFailed`.
        kind: &'static str,
        /// Whether the workflow may try again.
        retryable: bool,
    },
    /// Waits, heartbeating, until [`Script::release`] or the activity is cancelled.
    Block,
}

/// One call a fake received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The activity name, e.g. `deploy.prepare`.
    pub activity: String,
    /// The step it ran for (empty for drill and ledger activities).
    pub step: String,
    /// The workflow's attempt number (0 where the input has none).
    pub attempt: u32,
    /// A detail of the input worth asserting (a shift's weight).
    pub detail: String,
}

struct Rule {
    activity: String,
    step: Option<String>,
    /// Only calls whose detail is this (e.g. a shift's `version@weight`).
    detail: Option<String>,
    behaviour: Behaviour,
    /// How many more calls this rule applies to; `None`: all of them.
    times: Option<u32>,
}

#[derive(Default)]
struct Inner {
    rules: Vec<Rule>,
}

/// The shared script: rules the fakes follow and the calls they received. Cheap to clone.
#[derive(Clone)]
pub struct Script {
    inner: Arc<Mutex<Inner>>,
    calls: Arc<watch::Sender<Vec<Call>>>,
    /// Per activity: how many times its blocked calls were released.
    released: Arc<watch::Sender<BTreeMap<String, u64>>>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            calls: Arc::new(watch::Sender::new(Vec::new())),
            released: Arc::new(watch::Sender::new(BTreeMap::new())),
        }
    }
}

impl Script {
    /// From now on, calls of `activity` (for `step`, if given) behave as `behaviour`, for the
    /// next `times` calls (`None`: every call). Later rules take precedence.
    pub fn on(&self, activity: &str, step: Option<&str>, behaviour: Behaviour, times: Option<u32>) {
        self.lock().rules.push(Rule {
            activity: activity.to_owned(),
            step: step.map(str::to_owned),
            detail: None,
            behaviour,
            times,
        });
    }

    /// Like [`Script::on`], for the calls of `activity` whose detail is `detail` (a shift's
    /// `version@weight`, a retire's kept version).
    pub fn on_detail(
        &self,
        activity: &str,
        detail: &str,
        behaviour: Behaviour,
        times: Option<u32>,
    ) {
        self.lock().rules.push(Rule {
            activity: activity.to_owned(),
            step: None,
            detail: Some(detail.to_owned()),
            behaviour,
            times,
        });
    }

    /// Every call of `activity` fails with `kind`.
    pub fn fail(&self, activity: &str, kind: &'static str, retryable: bool) {
        self.on(activity, None, Behaviour::Fail { kind, retryable }, None);
    }

    /// Every call of `activity` blocks until released.
    pub fn block(&self, activity: &str) {
        self.on(activity, None, Behaviour::Block, None);
    }

    /// Lets the blocked calls of `activity` (now and later) finish successfully, and drops
    /// its block rules.
    pub fn release(&self, activity: &str) {
        self.lock()
            .rules
            .retain(|r| !(r.activity == activity && matches!(r.behaviour, Behaviour::Block)));
        self.released
            .send_modify(|m| *m.entry(activity.to_owned()).or_default() += 1);
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// The activity names called so far, in order.
    pub fn activities(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.activity).collect()
    }

    /// How many times `activity` was called.
    pub fn count(&self, activity: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.activity == activity)
            .count()
    }

    /// Waits until the calls satisfy `done` (woken by each call, no polling), or fails after
    /// `limit` listing the calls seen.
    pub async fn wait_until(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[Call]) -> bool,
    ) -> anyhow::Result<()> {
        let mut rx = self.calls.subscribe();
        match tokio::time::timeout(limit, rx.wait_for(|calls| done(calls))).await {
            Ok(Ok(_)) => Ok(()),
            _ => anyhow::bail!(
                "timed out after {limit:?} waiting for {what}; calls: {:?}",
                self.activities()
            ),
        }
    }

    /// Waits until `activity` has been called `n` times.
    pub async fn wait_for_calls(&self, activity: &str, n: usize) -> anyhow::Result<()> {
        self.wait_until(
            Duration::from_secs(30),
            &format!("{n} call(s) of {activity}"),
            |c| c.iter().filter(|c| c.activity == activity).count() >= n,
        )
        .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the call and decides what it does.
    fn behaviour(&self, call: Call) -> Behaviour {
        let behaviour = {
            let mut inner = self.lock();
            let rule = inner.rules.iter_mut().rev().find(|r| {
                r.activity == call.activity
                    && r.step.as_deref().is_none_or(|s| s == call.step)
                    && r.detail.as_deref().is_none_or(|d| d == call.detail)
                    && r.times != Some(0)
            });
            match rule {
                Some(rule) => {
                    if let Some(t) = rule.times.as_mut() {
                        *t -= 1;
                    }
                    rule.behaviour.clone()
                }
                None => Behaviour::Succeed,
            }
        };
        self.calls.send_modify(|calls| calls.push(call));
        behaviour
    }

    /// Runs the call's behaviour; `Ok(())` means "return the success output".
    async fn act(
        &self,
        ctx: &ActivityContext,
        activity: &str,
        step: &str,
        attempt: u32,
        detail: String,
    ) -> Result<(), ActivityError> {
        let call = Call {
            activity: activity.to_owned(),
            step: step.to_owned(),
            attempt,
            detail,
        };
        match self.behaviour(call) {
            Behaviour::Succeed => Ok(()),
            Behaviour::Fail { kind, retryable } => Err(ActivityError::application(
                ApplicationFailure::builder(format!("{activity} failed (scripted)"))
                    .type_name(kind.to_owned())
                    .non_retryable(!retryable)
                    .build(),
            )),
            Behaviour::Block => {
                let mut released = self.released.subscribe();
                let generation = |m: &BTreeMap<String, u64>| m.get(activity).copied().unwrap_or(0);
                let start = generation(&released.borrow_and_update());
                loop {
                    let _ = ctx.record_heartbeat(()).await;
                    if ctx.is_cancelled() {
                        return Err(ActivityError::cancelled());
                    }
                    tokio::select! {
                        _ = released.wait_for(|m| generation(m) != start) => return Ok(()),
                        () = ctx.cancelled() => return Err(ActivityError::cancelled()),
                        () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
        }
    }
}

/// The fake activities, registered in place of `cutover-activities`' real ones.
pub struct Fakes {
    script: Script,
}

impl Fakes {
    /// Fakes following `script`.
    pub fn new(script: Script) -> Self {
        Self { script }
    }
}

fn at() -> drill::At {
    drill::At {
        at_ms: chrono::Utc::now().timestamp_millis(),
        note: "fake".to_owned(),
    }
}

#[activities]
impl Fakes {
    #[activity(definition = contracts::RunCommand)]
    pub async fn run_command(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: CommandInput,
    ) -> Result<CommandOutput, ActivityError> {
        let s = &input.step;
        self.script
            .act(&ctx, "process.run", &s.step, s.attempt, String::new())
            .await?;
        Ok(CommandOutput {
            exit_code: 0,
            lines: 0,
        })
    }

    #[activity(definition = contracts::Build)]
    pub async fn build(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: BuildInput,
    ) -> Result<BuildOutput, ActivityError> {
        let s = &input.step;
        self.script
            .act(&ctx, "build.run", &s.step, s.attempt, String::new())
            .await?;
        Ok(BuildOutput {
            command: CommandOutput {
                exit_code: 0,
                lines: 0,
            },
            artifact: None,
        })
    }

    #[activity(definition = contracts::Verify)]
    pub async fn verify(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: VerifyInput,
    ) -> Result<VerifyOutput, ActivityError> {
        let s = &input.step;
        self.script
            .act(&ctx, "http.verify", &s.step, s.attempt, String::new())
            .await?;
        Ok(VerifyOutput {
            checks: 1,
            consecutive_passes: 1,
            last_status: 200,
        })
    }

    #[activity(definition = contracts::Measure)]
    pub async fn measure(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: AnalysisInput,
    ) -> Result<Measurement, ActivityError> {
        let s = &input.step;
        self.script
            .act(
                &ctx,
                "analysis.measure",
                &s.step,
                s.attempt,
                input.number.to_string(),
            )
            .await?;
        Ok(Measurement {
            number: input.number,
            at: None,
            verdict: cutover_workflows::analysis::Verdict::Successful,
            metrics: Vec::new(),
        })
    }

    #[activity(definition = contracts::RecordRelease)]
    pub async fn record_release(
        self: Arc<Self>,
        ctx: ActivityContext,
        _input: ReleaseInput,
    ) -> Result<(), ActivityError> {
        self.script
            .act(&ctx, "ledger.record_release", "", 0, String::new())
            .await
    }

    /// Records `<notifier>:<event>` as the call's detail; scripted failures fail the send.
    #[activity(definition = cutover_workflows::notify::contracts::Send)]
    pub async fn notify_send(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: cutover_workflows::notify::contracts::NotifyInput,
    ) -> Result<cutover_workflows::notify::contracts::NotifyOutput, ActivityError> {
        let detail = format!("{}:{}", input.notifier.name, input.message.event.as_str());
        self.script.act(&ctx, "notify.send", "", 0, detail).await?;
        Ok(cutover_workflows::notify::contracts::NotifyOutput { status: 200 })
    }

    /// Records `action:person:outcome` of each entry, comma-separated, as the call's detail.
    #[activity(definition = contracts::RecordAudit)]
    pub async fn record_audit(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: cutover_workflows::contracts::AuditInput,
    ) -> Result<(), ActivityError> {
        let detail = input
            .entries
            .iter()
            .map(|e| format!("{}:{}:{}", e.action, e.person, e.outcome))
            .collect::<Vec<_>>()
            .join(",");
        self.script
            .act(&ctx, "ledger.record_audit", "", 0, detail)
            .await
    }

    #[activity(definition = contracts::Migrate)]
    pub async fn migrate(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: MigrateInput,
    ) -> Result<MigrateOutput, ActivityError> {
        let s = &input.step;
        self.script
            .act(&ctx, "postgres.migrate", &s.step, s.attempt, String::new())
            .await?;
        Ok(MigrateOutput {
            applied: Vec::new(),
            pending: Vec::new(),
            already_applied: 0,
            dry_run: false,
            previous_version: 0,
            reverted: Vec::new(),
        })
    }

    #[activity(definition = contracts::UndoMigrations)]
    pub async fn undo_migrations(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: UndoMigrationsInput,
    ) -> Result<UndoMigrationsOutput, ActivityError> {
        let s = &input.step;
        self.script
            .act(
                &ctx,
                "postgres.undo_migrations",
                &s.step,
                s.attempt,
                String::new(),
            )
            .await?;
        Ok(UndoMigrationsOutput {
            reverted: Vec::new(),
        })
    }

    #[activity(definition = contracts::Provision)]
    pub async fn provision(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ProvisionInput,
    ) -> Result<ProvisionOutput, ActivityError> {
        let s = &input.step;
        self.script
            .act(&ctx, "provision.apply", &s.step, s.attempt, String::new())
            .await?;
        Ok(ProvisionOutput {
            changes: Vec::new(),
        })
    }

    #[activity(definition = contracts::Prepare)]
    pub async fn prepare(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DeployInput,
    ) -> Result<PrepareOutput, ActivityError> {
        let s = &input.step;
        self.script
            .act(&ctx, "deploy.prepare", &s.step, s.attempt, String::new())
            .await?;
        Ok(PrepareOutput {
            version: input.version,
            ports: vec![18100],
            previous: Some("previous".to_owned()),
            already_current: false,
        })
    }

    #[activity(definition = contracts::Rolling)]
    pub async fn rolling(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DeployInput,
    ) -> Result<PrepareOutput, ActivityError> {
        let s = &input.step;
        self.script
            .act(&ctx, "deploy.rolling", &s.step, s.attempt, String::new())
            .await?;
        Ok(PrepareOutput {
            version: input.version,
            ports: vec![18100],
            previous: Some("previous".to_owned()),
            already_current: false,
        })
    }

    #[activity(definition = contracts::Shift)]
    pub async fn shift(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: ShiftInput,
    ) -> Result<ShiftOutput, ActivityError> {
        let s = &input.step;
        self.script
            .act(
                &ctx,
                "traffic.shift",
                &s.step,
                s.attempt,
                format!("{}@{}", input.version, input.weight),
            )
            .await?;
        Ok(ShiftOutput {
            weight: input.weight,
            applied_ms: 0.0,
            by: None,
        })
    }

    #[activity(definition = contracts::Retire)]
    pub async fn retire(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RetireInput,
    ) -> Result<RetireOutput, ActivityError> {
        let s = &input.step;
        self.script
            .act(&ctx, "deploy.retire", &s.step, s.attempt, input.keep)
            .await?;
        Ok(RetireOutput {
            stopped: vec!["previous".to_owned()],
        })
    }

    #[activity(definition = contracts::Rollback)]
    pub async fn rollback(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: RollbackInput,
    ) -> Result<RollbackOutput, ActivityError> {
        let s = &input.step;
        self.script
            .act(&ctx, "deploy.rollback", &s.step, s.attempt, String::new())
            .await?;
        Ok(RollbackOutput {
            from: "new".to_owned(),
            to: "previous".to_owned(),
        })
    }

    #[activity(definition = contracts::Withdraw)]
    pub async fn withdraw(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: WithdrawInput,
    ) -> Result<WithdrawOutput, ActivityError> {
        let s = &input.step;
        self.script
            .act(&ctx, "deploy.withdraw", &s.step, s.attempt, input.version)
            .await?;
        Ok(WithdrawOutput {
            undone: vec!["stopped new instance on port 18100".to_owned()],
            serving: Some("previous".to_owned()),
            ports: vec![18101],
            still_serving: false,
        })
    }

    #[activity(definition = drill::Preflight)]
    pub async fn preflight(
        self: Arc<Self>,
        ctx: ActivityContext,
        _input: drill::PreflightInput,
    ) -> Result<drill::PreflightOutput, ActivityError> {
        self.script
            .act(&ctx, "drill.preflight", "", 0, String::new())
            .await?;
        Ok(drill::PreflightOutput {
            lag_bytes: 0,
            sync_state: "sync".to_owned(),
        })
    }

    #[activity(definition = drill::Mark)]
    pub async fn mark(
        self: Arc<Self>,
        ctx: ActivityContext,
        _input: drill::MarkInput,
    ) -> Result<drill::MarkOutput, ActivityError> {
        self.script
            .act(&ctx, "drill.mark", "", 0, String::new())
            .await?;
        Ok(drill::MarkOutput::default())
    }

    #[activity(definition = drill::Fault)]
    pub async fn fault(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill::NodeInput,
    ) -> Result<drill::At, ActivityError> {
        self.node(&ctx, "drill.fault", &input).await
    }

    #[activity(definition = drill::Restart)]
    pub async fn restart(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill::NodeInput,
    ) -> Result<drill::At, ActivityError> {
        self.node(&ctx, "drill.restart", &input).await
    }

    #[activity(definition = drill::Fence)]
    pub async fn fence(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill::NodeInput,
    ) -> Result<drill::At, ActivityError> {
        self.node(&ctx, "drill.fence", &input).await
    }

    #[activity(definition = drill::Rebuild)]
    pub async fn rebuild(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill::RebuildInput,
    ) -> Result<drill::At, ActivityError> {
        self.script
            .act(&ctx, "drill.rebuild", "", 0, input.node.data_dir)
            .await?;
        Ok(at())
    }

    #[activity(definition = drill::Promote)]
    pub async fn promote(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: drill::NodeInput,
    ) -> Result<drill::At, ActivityError> {
        self.node(&ctx, "drill.promote", &input).await
    }

    #[activity(definition = drill::Switch)]
    pub async fn switch(
        self: Arc<Self>,
        ctx: ActivityContext,
        _input: drill::SwitchInput,
    ) -> Result<drill::At, ActivityError> {
        self.script
            .act(&ctx, "drill.switch", "", 0, String::new())
            .await?;
        Ok(at())
    }

    #[activity(definition = drill::Verify)]
    pub async fn drill_verify(
        self: Arc<Self>,
        ctx: ActivityContext,
        _input: drill::AppVerifyInput,
    ) -> Result<drill::At, ActivityError> {
        self.script
            .act(&ctx, "drill.verify", "", 0, String::new())
            .await?;
        Ok(at())
    }

    #[activity(definition = drill::Record)]
    pub async fn record(
        self: Arc<Self>,
        ctx: ActivityContext,
        _input: drill::RecordInput,
    ) -> Result<(), ActivityError> {
        self.script
            .act(&ctx, "drill.record", "", 0, String::new())
            .await
    }

    #[activity(definition = drill::Survey)]
    pub async fn survey(
        self: Arc<Self>,
        ctx: ActivityContext,
        _input: drill::SurveyInput,
    ) -> Result<drill::SurveyOutput, ActivityError> {
        self.script
            .act(&ctx, "drill.survey", "", 0, String::new())
            .await?;
        Ok(drill::SurveyOutput {
            lost: 0,
            lost_markers: Vec::new(),
            lost_bytes: 0,
        })
    }
}

impl Fakes {
    async fn node(
        &self,
        ctx: &ActivityContext,
        activity: &str,
        input: &drill::NodeInput,
    ) -> Result<drill::At, ActivityError> {
        self.script
            .act(ctx, activity, "", 0, input.node.data_dir.clone())
            .await?;
        Ok(at())
    }
}
