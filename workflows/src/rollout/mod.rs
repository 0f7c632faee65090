//! `RolloutWorkflow`: runs a plan's steps in order, each as an activity, and answers `status`.
//!
//! Retries are driven by the workflow rather than by Temporal's server-side retry policy: each
//! attempt is one activity execution with a single attempt, and the backoff between attempts
//! is a durable timer. That costs a few more history events per retry, and buys a `status`
//! that shows every attempt as it happens — attempt number, last error, when the next attempt
//! starts — which a server-side retry would hide until the activity finally closes.

mod analysis;
mod approval;
mod audit;
mod canary;
mod deploy;
mod failure;
mod fleet;
mod freeze;
mod hold;
mod ledger;
mod route;
mod saga;
mod step;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination,
};

use crate::contracts::AbortRequest;
use crate::control::{
    ApproveRequest, ApproveResult, ControlRequest, ControlResult, PauseRequest, PromoteRequest,
    PromoteResult, ResumeRequest, check_name,
};
use crate::guard::{self, Action, Assertion};
use crate::input::Input;
use crate::plan::notify::NotifyEvent;
use crate::plan::{OnFailure, Plan, StepAction};
use crate::status::{
    Approval, HumanAction, Pause, RolloutState, RolloutStatus, RolloutSummary, StepState,
    StepStatus, StepSummary,
};
use step::StepEnd;

/// The failure type name a failed rollout ends with.
pub const ROLLOUT_FAILED: &str = "RolloutFailed";
/// The failure type name of a rollout that was rolled back.
pub const ROLLED_BACK: &str = "RolloutRolledBack";

/// Runs one plan. Its ID is `rollout/<service>/<environment>`.
#[workflow]
pub struct RolloutWorkflow {
    plan: Plan,
    status: RolloutStatus,
    /// The step index of a running bake or canary hold, which `promote` can cut short.
    holding: Option<usize>,
    /// Bumped by each accepted `promote`; holds watch it.
    promotions: u64,
    /// The last accepted `promote` was `--full`: a canary skips its pauses and analyses too.
    promote_full: bool,
    /// Approvals of the waiting approval given before it began (a canary's earlier gates),
    /// which it does not count.
    approval_base: usize,
    /// The step index of an approval step waiting for people.
    awaiting_approval: Option<usize>,
    /// What to undo if the rollout fails or is aborted, oldest first.
    compensations: Vec<saga::Compensation>,
    /// The last completed `point_of_no_return` step, if any.
    point_of_no_return: Option<String>,
    /// Set by `abort`: who and why.
    aborted: Option<(String, String)>,
    /// Set when the input was not a valid plan: why. The rollout fails at once with it.
    invalid: Option<String>,
    /// With `on_failure: pause`, the failed step held for a person.
    held_failure: Option<usize>,
    /// Set by `retry`, cleared when the held step runs again.
    retry_requested: bool,
    /// How far each deploy step got, by step index, so a retried attempt resumes there.
    deploys: BTreeMap<usize, deploy::Progress>,
    /// Set by `refuse` at an approval step: who and why.
    refusal: Option<(String, String)>,
    /// Identity assertions already used: each is good for one action.
    spent_nonces: std::collections::BTreeSet<String>,
    /// Human actions not yet in the ledger's audit trail.
    audit: audit::Outbox,
    /// Messages for the plan's notifiers.
    notices: crate::notify::Outbox,
}

#[workflow_methods]
impl RolloutWorkflow {
    #[init]
    fn new(ctx: &WorkflowContextView, input: Input<Plan>) -> Self {
        let (plan, invalid) = match input.into_result() {
            Ok(plan) => {
                let problems = plan.problems();
                let invalid = (!problems.is_empty()).then(|| problems.join("; "));
                (plan, invalid)
            }
            Err(why) => (Plan::default(), Some(why)),
        };
        let steps = plan
            .steps
            .iter()
            .map(|s| StepStatus {
                name: s.name.clone(),
                kind: s.action.kind(),
                state: StepState::Pending,
                attempts: 0,
                max_attempts: s.retry.maximum_attempts,
                started_at: None,
                finished_at: None,
                next_attempt_at: None,
                last_error: None,
                output: None,
                approvals: Vec::new(),
                required_approvals: match &s.action {
                    StepAction::Approval(a) => Some(a.required),
                    _ => None,
                },
                ends_at: None,
                hold_ms: None,
                remaining_ms: None,
                analysis: None,
                host: s.host(&plan.target).map(str::to_owned),
                fleet: None,
                canary: None,
                errors: Vec::new(),
            })
            .collect();
        let status = RolloutStatus {
            workflow_id: ctx.workflow_id().to_owned(),
            service: plan.service.clone(),
            environment: plan.environment.clone(),
            version: plan.version.clone(),
            state: RolloutState::Running,
            current_step: None,
            started_at: None,
            finished_at: None,
            reason: None,
            steps,
            paused: None,
            actions: Vec::new(),
            notifications: Vec::new(),
        };
        Self {
            plan,
            status,
            holding: None,
            promotions: 0,
            promote_full: false,
            approval_base: 0,
            awaiting_approval: None,
            compensations: Vec::new(),
            point_of_no_return: None,
            aborted: None,
            invalid,
            held_failure: None,
            retry_requested: false,
            deploys: BTreeMap::new(),
            refusal: None,
            spent_nonces: std::collections::BTreeSet::new(),
            audit: audit::Outbox::default(),
            notices: crate::notify::Outbox::default(),
        }
    }

    /// Runs every step in order. Fails with `RolloutFailed` naming the step and its error.
    /// The release record is written to the ledger before the first step and after the end.
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<RolloutSummary> {
        // An input that is not a valid plan ends the rollout before anything is touched (no
        // command is issued, so valid rollouts' histories are unchanged).
        if let Some(why) = ctx.state(|s| s.invalid.clone()) {
            let reason = format!("invalid input, nothing was started: {why}");
            finish(ctx, RolloutState::Failed, Some(reason.clone()));
            return Err(ApplicationFailure::builder(reason)
                .type_name(crate::contracts::error_kind::INVALID_INPUT.to_owned())
                .non_retryable(true)
                .build()
                .into());
        }
        // Human actions reach the audit trail beside the steps (no command unless there are
        // any); the pump drains once the work below closes the outbox.
        let pump = audit::pump(ctx.clone());
        // Messages for people go out beside the steps, never in their way.
        let notifications = crate::notify::pump(ctx.clone());
        let work = async {
            // Rollouts started before the ledger existed replay without its two activities.
            ctx.state(|s| {
                crate::observe::emit(
                    ctx.is_replaying(),
                    crate::observe::Event::RolloutStarted {
                        service: &s.plan.service,
                        environment: &s.plan.environment,
                    },
                )
            });
            let at = now(ctx);
            ctx.state_mut(|s| s.notice(NotifyEvent::Started, None, None, None, at));
            let ledger = ctx.patched(ledger::PATCH);
            if ledger {
                let started = now(ctx);
                ctx.state_mut(|s| s.status.started_at = started);
                ledger::record(ctx).await;
            }
            // One change at a time per service and environment (rollouts started before the lock
            // existed replay without it).
            let frozen = freeze::check(ctx).await;
            let result = if let freeze::Frozen::Refused(why) | freeze::Frozen::Aborted(why) = frozen
            {
                fail(ctx, why)
            } else if let freeze::Frozen::Cancelled = frozen {
                let reason = ctx.cancellation_token().reason();
                cancelled(ctx, reason)
            } else if ctx.patched(crate::lock::PATCH) {
                let (service, environment) =
                    ctx.state(|s| (s.plan.service.clone(), s.plan.environment.clone()));
                match crate::lock::holding(ctx, "rollout", &service, &environment, steps).await {
                    Ok(result) => result,
                    Err(crate::lock::NotTaken::Cancelled) => {
                        let reason = ctx.cancellation_token().reason();
                        cancelled(ctx, reason)
                    }
                    Err(crate::lock::NotTaken::Refused(why)) => {
                        fail(ctx, format!("not started: {why}"))
                    }
                }
            } else {
                steps(ctx).await
            };
            if ledger {
                ledger::record(ctx).await;
            }
            ctx.state_mut(|s| {
                s.audit.closing = true;
                s.notices.close();
            });
            result
        };
        futures::future::join3(work, pump, notifications).await.0
    }

    /// The rollout's state, current step and every step's attempts, times and last error.
    #[query]
    pub fn status(&self, _ctx: &WorkflowContextView) -> RolloutStatus {
        self.status.clone()
    }

    /// Stops the rollout before its next step, and stops a running bake's clock. A running
    /// activity is not interrupted.
    #[signal]
    pub fn pause(&mut self, ctx: &mut SyncWorkflowContext<Self>, req: PauseRequest) {
        if self.status.state.is_final() || self.status.paused.is_some() {
            return;
        }
        let at = ctx.workflow_time().map(DateTime::<Utc>::from);
        let reason = clip(&req.reason);
        let Ok(by) = self.admit(
            at,
            Action::Pause,
            &req.by,
            Some(reason.clone()),
            req.assertion.as_ref(),
        ) else {
            return;
        };
        let why = if reason.is_empty() {
            format!("by {by}")
        } else {
            format!("by {by}: {reason}")
        };
        let command = Some(format!(
            "cutover rollout resume {}",
            self.status.workflow_id
        ));
        let step = self.status.current_step.clone();
        self.notice(NotifyEvent::Paused, step, Some(why), command, at);
        self.status.paused = Some(Pause {
            by,
            reason,
            since: at,
        });
    }

    /// Lets a paused rollout carry on where it stopped.
    #[signal]
    pub fn resume(&mut self, ctx: &mut SyncWorkflowContext<Self>, req: ResumeRequest) {
        if self.status.paused.is_none() {
            return;
        }
        let at = ctx.workflow_time().map(DateTime::<Utc>::from);
        if self
            .admit(at, Action::Resume, &req.by, None, req.assertion.as_ref())
            .is_ok()
        {
            self.status.paused = None;
        }
    }

    /// Stops the rollout at its next checkpoint (between steps, or in a bake, canary hold or
    /// approval) and undoes what it did. A running activity is not interrupted.
    #[signal]
    pub fn abort(&mut self, ctx: &mut SyncWorkflowContext<Self>, req: AbortRequest) {
        if self.status.state.is_final() || self.aborted.is_some() {
            return;
        }
        let at = ctx.workflow_time().map(DateTime::<Utc>::from);
        let reason = clip(&req.reason);
        if let Ok(by) = self.admit(
            at,
            Action::Abort,
            &req.by,
            Some(reason.clone()),
            req.assertion.as_ref(),
        ) {
            self.aborted = Some((by, reason));
        }
    }

    #[update_validator(retry)]
    fn validate_retry(
        &self,
        _ctx: &WorkflowContextView,
        req: &ResumeRequest,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        check_name("by", &req.by)?;
        Ok(self.check(Action::Retry)?)
    }

    /// Re-runs the failed step that `on_failure: pause` is holding, after a manual fix.
    #[update]
    pub fn retry(
        &mut self,
        ctx: &mut SyncWorkflowContext<Self>,
        req: ResumeRequest,
    ) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
        let at = ctx.workflow_time().map(DateTime::<Utc>::from);
        self.admit(at, Action::Retry, &req.by, None, req.assertion.as_ref())?;
        Ok(self.apply_retry())
    }

    #[update_validator(approve)]
    fn validate_approve(
        &self,
        _ctx: &WorkflowContextView,
        req: &ApproveRequest,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        check_name("approver", &req.approver)?;
        Ok(self.check(Action::Approve)?)
    }

    /// Approves the approval step that is waiting. Distinct approvers count; a second approval
    /// by the same person is recorded as an action but not counted again.
    #[update]
    pub fn approve(
        &mut self,
        ctx: &mut SyncWorkflowContext<Self>,
        req: ApproveRequest,
    ) -> Result<ApproveResult, Box<dyn std::error::Error + Send + Sync>> {
        let at = ctx.workflow_time().map(DateTime::<Utc>::from);
        let comment = req.comment.as_deref().map(clip);
        let by = self.admit(
            at,
            Action::Approve,
            &req.approver,
            comment.clone(),
            req.assertion.as_ref(),
        )?;
        Ok(self.apply_approve(by, comment, at))
    }

    #[update_validator(promote)]
    fn validate_promote(
        &self,
        _ctx: &WorkflowContextView,
        req: &PromoteRequest,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        check_name("by", &req.by)?;
        Ok(self.check(Action::Promote)?)
    }

    /// Ends the running bake or canary hold now; the rollout goes on.
    #[update]
    pub fn promote(
        &mut self,
        ctx: &mut SyncWorkflowContext<Self>,
        req: PromoteRequest,
    ) -> Result<PromoteResult, Box<dyn std::error::Error + Send + Sync>> {
        let at = ctx.workflow_time().map(DateTime::<Utc>::from);
        self.admit(at, Action::Promote, &req.by, None, req.assertion.as_ref())?;
        Ok(self.apply_promote(req.full))
    }

    #[update_validator(control)]
    fn validate_control(
        &self,
        _ctx: &WorkflowContextView,
        req: &ControlRequest,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        check_name("by", &req.by)?;
        Ok(self.check(req.action)?)
    }

    /// Any human action, answered: accepted, or refused with the reason (the plan's rules,
    /// or an identity that does not verify). `cutover serve` sends its actions this way.
    #[update]
    pub fn control(
        &mut self,
        ctx: &mut SyncWorkflowContext<Self>,
        req: ControlRequest,
    ) -> ControlResult {
        let at = ctx.workflow_time().map(DateTime::<Utc>::from);
        let text = req.reason.as_deref().map(clip);
        let step = self
            .acted_step(req.action)
            .map(|i| self.status.steps[i].name.clone());
        let answer = |accepted: bool, by: String, message: String| ControlResult {
            accepted,
            action: req.action,
            by,
            step: step.clone(),
            message,
        };
        let by = match self.admit(
            at,
            req.action,
            &req.by,
            text.clone(),
            req.assertion.as_ref(),
        ) {
            Ok(by) => by,
            Err(why) => return answer(false, clip(&req.by), why),
        };
        let message = match req.action {
            Action::Approve => {
                let r = self.apply_approve(by.clone(), text, at);
                format!(
                    "{} step `{}` ({} of {} approvals)",
                    if r.counted {
                        "approved"
                    } else {
                        "had already approved"
                    },
                    r.step,
                    r.approvals,
                    r.required
                )
            }
            Action::Refuse => {
                self.refusal = Some((by.clone(), text.unwrap_or_default()));
                "refused: the rollout stops at this approval and rolls back".to_owned()
            }
            Action::Promote => {
                let full = req.full;
                let step = self.apply_promote(full).step;
                if full {
                    format!(
                        "promoted: step `{step}` skips to the end of its canary (approvals still wait)"
                    )
                } else {
                    format!("promoted: step `{step}` goes on to its next gate")
                }
            }
            Action::Retry => format!("retrying step `{}`", self.apply_retry()),
            Action::Pause => {
                self.status.paused = Some(Pause {
                    by: by.clone(),
                    reason: text.unwrap_or_default(),
                    since: at,
                });
                "paused: it stops before its next step".to_owned()
            }
            Action::Resume => {
                self.status.paused = None;
                "resumed".to_owned()
            }
            Action::Abort => {
                self.aborted = Some((by.clone(), text.unwrap_or_default()));
                "aborted: it stops at its next checkpoint and rolls back".to_owned()
            }
        };
        answer(true, by, message)
    }
}

/// The steps in order, then the outcome.
async fn steps(ctx: &mut WorkflowContext<RolloutWorkflow>) -> WorkflowResult<RolloutSummary> {
    if ctx.state(|s| s.status.started_at.is_none()) {
        let started = now(ctx);
        ctx.state_mut(|s| s.status.started_at = started);
    }
    let (count, on_failure) = ctx.state(|s| (s.plan.steps.len(), s.plan.on_failure));
    let mut index = 0;
    while index < count {
        // A pause takes effect between steps (and stops the clock of a running bake).
        if ctx
            .wait_condition(|s| s.status.paused.is_none() || s.aborted.is_some())
            .await
            .is_err()
        {
            return cancelled(ctx, None);
        }
        if let Some(reason) = abort_reason(ctx) {
            return roll_back(ctx, reason).await;
        }
        match step::run(ctx, index).await {
            StepEnd::Succeeded => {
                saga::record(ctx, index);
                index += 1;
            }
            StepEnd::Aborted => {
                let reason = abort_reason(ctx).unwrap_or_else(|| "aborted".to_owned());
                return roll_back(ctx, reason).await;
            }
            StepEnd::Failed(reason) => match on_failure {
                OnFailure::Fail => return fail(ctx, reason),
                OnFailure::Rollback => return roll_back(ctx, reason).await,
                OnFailure::Pause => {
                    // Hold for a person: `retry` re-runs this step, `abort` rolls back.
                    let at = now(ctx);
                    ctx.state_mut(|s| {
                        s.held_failure = Some(index);
                        let why =
                            format!("{reason} — `retry` re-runs the step, `abort` rolls back");
                        let step = Some(s.plan.steps[index].name.clone());
                        let command =
                            Some(format!("cutover rollout retry {}", s.status.workflow_id));
                        s.notice(NotifyEvent::Paused, step, Some(why.clone()), command, at);
                        s.status.paused = Some(Pause {
                            by: "cutover".to_owned(),
                            reason: why,
                            since: at,
                        });
                    });
                    if ctx
                        .wait_condition(|s| s.retry_requested || s.aborted.is_some())
                        .await
                        .is_err()
                    {
                        return cancelled(ctx, None);
                    }
                    ctx.state_mut(|s| {
                        s.held_failure = None;
                        s.retry_requested = false;
                        s.status.paused = None;
                    });
                    if let Some(abort) = abort_reason(ctx) {
                        return roll_back(ctx, format!("{reason}; then {abort}")).await;
                    }
                }
            },
            StepEnd::Cancelled => {
                let reason = ctx.cancellation_token().reason();
                return cancelled(ctx, reason);
            }
        }
    }
    finish(ctx, RolloutState::Succeeded, None);
    Ok(ctx.state(|s| s.summary()))
}

/// Ends the rollout `cancelled`, with the reason given at cancellation if there was one.
fn cancelled<T>(
    ctx: &WorkflowContext<RolloutWorkflow>,
    reason: Option<String>,
) -> WorkflowResult<T> {
    let reason = reason
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "cancelled on request".to_owned());
    finish(ctx, RolloutState::Cancelled, Some(reason));
    Err(WorkflowTermination::cancelled())
}

/// Ends the rollout `failed` with `reason`.
fn fail<T>(ctx: &WorkflowContext<RolloutWorkflow>, reason: String) -> WorkflowResult<T> {
    finish(ctx, RolloutState::Failed, Some(reason.clone()));
    Err(ApplicationFailure::builder(reason)
        .type_name(ROLLOUT_FAILED.to_owned())
        .non_retryable(true)
        .build()
        .into())
}

/// Undoes the completed steps; ends `rolled_back` if everything was undone, else `failed`
/// saying what was left as it is and why.
async fn roll_back<T>(ctx: &WorkflowContext<RolloutWorkflow>, reason: String) -> WorkflowResult<T> {
    let (done, problems) = saga::compensate(ctx).await;
    if done.is_empty() && problems.is_empty() {
        // Nothing had changed anything that can be undone: the rollout simply failed.
        return fail(ctx, reason);
    }
    let undone = if done.is_empty() {
        "nothing".to_owned()
    } else {
        done.join("; ")
    };
    if problems.is_empty() {
        let text = format!("{reason}; rolled back: {undone}");
        finish(ctx, RolloutState::RolledBack, Some(text.clone()));
        Err(ApplicationFailure::builder(text)
            .type_name(ROLLED_BACK.to_owned())
            .non_retryable(true)
            .build()
            .into())
    } else {
        fail(
            ctx,
            format!("{reason}; {}; undone: {undone}", problems.join("; ")),
        )
    }
}

fn abort_reason(ctx: &WorkflowContext<RolloutWorkflow>) -> Option<String> {
    ctx.state(|s| s.aborted.clone())
        .map(|(by, reason)| format!("aborted by {by}: {reason}"))
}

impl RolloutWorkflow {
    /// Identifies and authorises a human action (see [`guard`]) and records it — accepted or
    /// refused — for `status` and the audit trail. Returns who acted, or why not.
    fn admit(
        &mut self,
        at: Option<DateTime<Utc>>,
        action: Action,
        by: &str,
        text: Option<String>,
        assertion: Option<&Assertion>,
    ) -> Result<String, String> {
        let step_index = self.acted_step(action);
        let approvers = step_index
            .and_then(|i| match &self.plan.steps.get(i)?.action {
                StepAction::Approval(a) => Some(a.approvers.clone()),
                // A canary's approval gate: the entry under way.
                StepAction::Deploy(d) if action == Action::Approve || action == Action::Refuse => {
                    let at = self.status.steps[i].canary.as_ref()?.position;
                    match &d.canary.get(at)?.gate {
                        Some(crate::plan::CanaryGate::Approval(a)) => Some(a.approvers.clone()),
                        _ => None,
                    }
                }
                _ => None,
            })
            .unwrap_or_default();
        let step_name = step_index.map(|i| self.status.steps[i].name.clone());
        let claimed = clip(by);
        let request = guard::Request {
            plan: &self.plan,
            workflow_id: &self.status.workflow_id,
            action,
            step: step_name.as_deref(),
            by: &claimed,
            assertion,
            now: at,
            spent: &self.spent_nonces,
        };
        let (who, verdict) = match guard::identify(&request) {
            Ok(who) => {
                let verdict = guard::authorize(&request, &who, &approvers);
                (Some(who), verdict)
            }
            Err(why) => (None, Err(why)),
        };
        let (person, method) = who.as_ref().map_or((claimed, "claimed".to_owned()), |w| {
            (w.person.clone(), w.method.clone())
        });
        if verdict.is_ok()
            && let Some(nonce) = who.and_then(|w| w.nonce)
        {
            self.spent_nonces.insert(nonce);
        }
        self.status.actions.push(HumanAction {
            action: action.as_str().to_owned(),
            by: person.clone(),
            at,
            reason: text,
            step: step_name.or_else(|| self.status.current_step.clone()),
            verified: Some(method),
            refused: verdict.as_ref().err().cloned(),
        });
        verdict.map(|()| person)
    }

    /// The step an action concerns: the waiting approval, the running hold, the held failure.
    fn acted_step(&self, action: Action) -> Option<usize> {
        match action {
            Action::Approve | Action::Refuse => self.awaiting_approval,
            Action::Promote => self.holding,
            Action::Retry => self.held_failure,
            Action::Pause | Action::Resume | Action::Abort => None,
        }
    }

    /// Whether there is anything for the action to act on now; the update validators' check
    /// (a refusal here is not recorded: nothing was attempted on the rollout).
    fn check(&self, action: Action) -> Result<(), String> {
        if self.status.state.is_final() {
            return Err(format!(
                "the rollout has ended ({}); there is nothing to {}",
                self.status.state.as_str(),
                action.as_str()
            ));
        }
        let ok = match action {
            Action::Approve | Action::Refuse => self.awaiting_approval.is_some(),
            Action::Promote => self.holding.is_some(),
            Action::Retry => self.held_failure.is_some(),
            Action::Pause => self.status.paused.is_none(),
            Action::Resume => self.status.paused.is_some(),
            Action::Abort => self.aborted.is_none(),
        };
        if ok {
            return Ok(());
        }
        Err(match action {
            Action::Approve | Action::Refuse => format!(
                "nothing is waiting for approval: the rollout is at {}",
                self.position()
            ),
            Action::Promote => format!(
                "nothing to promote: no bake or canary step is waiting (the rollout is at {})",
                self.position()
            ),
            Action::Retry => format!(
                "nothing to retry: no failed step is held (the rollout is at {}, {})",
                self.position(),
                self.status.state.as_str()
            ),
            Action::Pause => "the rollout is already paused".to_owned(),
            Action::Resume => "the rollout is not paused".to_owned(),
            Action::Abort => "the rollout is already being aborted".to_owned(),
        })
    }

    fn apply_approve(
        &mut self,
        approver: String,
        comment: Option<String>,
        at: Option<DateTime<Utc>>,
    ) -> ApproveResult {
        let index = self.awaiting_approval.unwrap_or_default();
        let base = self.approval_base;
        let step = &mut self.status.steps[index];
        let counted = !step.approvals[base..]
            .iter()
            .any(|a| a.approver == approver);
        if counted {
            step.approvals.push(Approval {
                approver,
                comment,
                at,
            });
        }
        ApproveResult {
            step: step.name.clone(),
            counted,
            approvals: (step.approvals.len() - base) as u32,
            required: step.required_approvals.unwrap_or(1),
        }
    }

    fn apply_promote(&mut self, full: bool) -> PromoteResult {
        self.promotions += 1;
        self.promote_full = full;
        PromoteResult {
            step: self
                .holding
                .map(|i| self.status.steps[i].name.clone())
                .unwrap_or_default(),
        }
    }

    fn apply_retry(&mut self) -> String {
        self.retry_requested = true;
        self.held_failure
            .map(|i| self.status.steps[i].name.clone())
            .unwrap_or_default()
    }

    /// Where the rollout is, in words, for refusals.
    fn position(&self) -> String {
        match &self.status.current_step {
            Some(step) => format!("step `{step}`"),
            None => "no step".to_owned(),
        }
    }

    fn summary(&self) -> RolloutSummary {
        RolloutSummary {
            outcome: self.status.state,
            service: self.status.service.clone(),
            environment: self.status.environment.clone(),
            version: self.status.version.clone(),
            steps: self
                .status
                .steps
                .iter()
                .map(|s| StepSummary {
                    name: s.name.clone(),
                    state: s.state,
                    attempts: s.attempts,
                    duration_ms: s.duration_ms(),
                })
                .collect(),
        }
    }
}

fn finish(ctx: &WorkflowContext<RolloutWorkflow>, state: RolloutState, reason: Option<String>) {
    let at = now(ctx);
    ctx.state_mut(|s| {
        s.status.state = state;
        s.status.reason = reason;
        s.status.current_step = None;
        s.status.finished_at = at;
        let event = match state {
            RolloutState::Succeeded => Some(NotifyEvent::Succeeded),
            RolloutState::Failed => Some(NotifyEvent::Failed),
            RolloutState::RolledBack => Some(NotifyEvent::RolledBack),
            RolloutState::Cancelled | RolloutState::Running => None,
        };
        if let Some(event) = event {
            let step = (event != NotifyEvent::Succeeded)
                .then(|| s.failed_step())
                .flatten();
            let reason = s.status.reason.clone();
            s.notice(event, step, reason, None, at);
        }
    });
    ctx.state(|s| {
        let replaying = ctx.is_replaying();
        crate::observe::emit(
            replaying,
            crate::observe::Event::ApprovalDone {
                workflow_id: &s.status.workflow_id,
            },
        );
        crate::observe::emit(
            replaying,
            crate::observe::Event::StepIdle {
                workflow_id: &s.status.workflow_id,
            },
        );
        crate::observe::emit(
            ctx.is_replaying(),
            crate::observe::Event::RolloutFinished {
                service: &s.plan.service,
                environment: &s.plan.environment,
                outcome: state.as_str(),
            },
        )
    });
}

/// The workflow's own clock: deterministic on replay.
fn now(ctx: &WorkflowContext<RolloutWorkflow>) -> Option<DateTime<Utc>> {
    ctx.workflow_time().map(DateTime::<Utc>::from)
}

/// Keeps names and reasons from people short and printable.
fn clip(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(crate::control::MAX_TEXT)
        .collect()
}

impl RolloutWorkflow {
    /// Queues a message about `event` for the plan's notifiers (none: nothing happens).
    fn notice(
        &mut self,
        event: NotifyEvent,
        step: Option<String>,
        reason: Option<String>,
        command: Option<String>,
        at: Option<DateTime<Utc>>,
    ) {
        let message = crate::notify::Message {
            seq: 0,
            event,
            service: self.plan.service.clone(),
            environment: self.plan.environment.clone(),
            version: Some(self.plan.version.clone()),
            drill: None,
            workflow_id: self.status.workflow_id.clone(),
            step,
            reason,
            command,
            at,
        };
        self.notices.queue(&self.plan.notify, message);
    }

    /// The first step that failed, if any.
    fn failed_step(&self) -> Option<String> {
        self.status
            .steps
            .iter()
            .find(|st| st.state == StepState::Failed)
            .map(|st| st.name.clone())
    }
}

impl crate::notify::Notifying for RolloutWorkflow {
    fn notifiers(&self) -> &[crate::plan::notify::Notifier] {
        &self.plan.notify
    }
    fn outbox(&self) -> &crate::notify::Outbox {
        &self.notices
    }
    fn outbox_mut(&mut self) -> &mut crate::notify::Outbox {
        &mut self.notices
    }
    fn notices_mut(&mut self) -> &mut Vec<crate::notify::NoticeStatus> {
        &mut self.status.notifications
    }
}
