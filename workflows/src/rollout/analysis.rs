//! Running an analysis: wait an interval, measure, judge, repeat — and decide.
//!
//! The waits are [`hold`]s, so a pause stops the analysis' clock and `promote` accepts the
//! release without further measurements. Each measurement is one `analysis.measure` activity;
//! its verdict is counted here, in the workflow, so that `status` shows every measurement and
//! the decision is replayed exactly:
//!
//! - more failed measurements than `failure_limit` → the analysis fails (and the step with it,
//!   which the plan's `on_failure` then handles: by default, a rollback);
//! - more inconclusive measurements than `inconclusive_limit` → the rollout is paused for a
//!   person: `resume` starts the analysis again, `promote` accepts the release, `abort` rolls
//!   back;
//! - `consecutive_successes` in a row, or the whole duration without too many failures → pass.

use temporalio_sdk::{ActivityOptions, WorkflowContext};

use super::hold::{Held, hold};
use super::{RolloutWorkflow, now};
use crate::analysis::{Measurement, MetricResult, Verdict};
use crate::contracts::{AnalysisInput, AnalysisOutput, RolloutActivities, StepRef, error_kind};
use crate::plan::AnalysisSpec;
use crate::status::{AnalysisStatus, Pause, StepError};

/// How an analysis ended.
pub(super) enum Analysed {
    /// It passed (or someone promoted).
    Passed(AnalysisOutput),
    /// Too many measurements failed.
    Failed(StepError),
    /// The workflow was cancelled.
    Cancelled,
    /// Someone aborted the rollout.
    Aborted,
}

impl Analysed {
    /// Whether someone promoted during it; a failure, cancellation or abort as the attempt's
    /// interruption.
    pub(super) fn promoted(self) -> Result<bool, super::step::Interrupted> {
        use super::step::Interrupted;
        match self {
            Analysed::Passed(out) => Ok(out.promoted),
            Analysed::Failed(e) => Err(Interrupted::Failed(e)),
            Analysed::Cancelled => Err(Interrupted::TimerCancelled),
            Analysed::Aborted => Err(Interrupted::Aborted),
        }
    }
}

/// Runs `spec` for step `index`; `weight` names the canary weight it judges, if any.
pub(super) async fn analyse(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    spec: &AnalysisSpec,
    step_ref: &StepRef,
    opts: &ActivityOptions,
    weight: Option<u8>,
) -> Analysed {
    let promotions = ctx.state(|s| s.promotions);
    let planned = spec.measurements();
    let mut number = 0;
    'restart: loop {
        ctx.state_mut(|s| {
            let kept = s.status.steps[index]
                .analysis
                .take()
                .map(|a| a.measurements)
                .unwrap_or_default();
            s.status.steps[index].analysis = Some(AnalysisStatus {
                weight,
                planned,
                failure_limit: spec.failure_limit,
                inconclusive_limit: spec.inconclusive_limit,
                measurements: kept,
                ..AnalysisStatus::default()
            });
        });
        let mut in_a_row = 0;
        for _ in 0..planned {
            match hold(ctx, index, spec.interval).await {
                Held::Elapsed => {}
                Held::Promoted => return passed(ctx, index, true),
                Held::Cancelled => return Analysed::Cancelled,
                Held::Aborted => return Analysed::Aborted,
            }
            // `hold` clears `holding`; an analysis can be promoted throughout.
            ctx.state_mut(|s| s.holding = Some(index));
            number += 1;
            let measurement = measure(ctx, spec, step_ref, opts, number).await;
            let counts = record(ctx, index, measurement.clone());
            if ctx.state(|s| s.aborted.is_some()) {
                return Analysed::Aborted;
            }
            if ctx.state(|s| s.promotions != promotions) {
                return passed(ctx, index, true);
            }
            match measurement.verdict {
                Verdict::Successful => in_a_row += 1,
                _ => in_a_row = 0,
            }
            if counts.failed > spec.failure_limit {
                decide(ctx, index, Verdict::Failed);
                return Analysed::Failed(StepError {
                    kind: error_kind::ErrorKind::AnalysisFailed,
                    message: format!(
                        "{}; {} of {} measurements failed (failure_limit {})",
                        measurement.explain(),
                        counts.failed,
                        counts.taken,
                        spec.failure_limit
                    ),
                    retryable: false,
                });
            }
            if counts.inconclusive > spec.inconclusive_limit {
                match ask_a_person(ctx, index, &measurement, promotions).await {
                    Asked::Resumed => continue 'restart,
                    Asked::Promoted => return passed(ctx, index, true),
                    Asked::Aborted => return Analysed::Aborted,
                    Asked::Cancelled => return Analysed::Cancelled,
                }
            }
            if spec.consecutive_successes > 0 && in_a_row >= spec.consecutive_successes {
                break;
            }
        }
        return passed(ctx, index, false);
    }
}

/// One measurement. An activity that fails (a worker problem, a timeout) gives an
/// inconclusive measurement: the release is not judged on a failure of the judge.
async fn measure(
    ctx: &WorkflowContext<RolloutWorkflow>,
    spec: &AnalysisSpec,
    step_ref: &StepRef,
    opts: &ActivityOptions,
    number: u32,
) -> Measurement {
    let mut opts = opts.clone();
    opts.activity_id = Some(format!(
        "{}#{}/measurement-{number}",
        step_ref.step, step_ref.attempt
    ));
    opts.summary = Some(format!("{}: measurement {number}", step_ref.step));
    let result = ctx
        .execute_activity(
            RolloutActivities::measure,
            AnalysisInput {
                step: step_ref.clone(),
                number,
                metrics: spec.metrics.clone(),
            },
            opts,
        )
        .await;
    let mut m = match result {
        Ok(m) => m,
        Err(e) => Measurement {
            number,
            at: None,
            verdict: Verdict::Inconclusive,
            metrics: vec![MetricResult {
                name: "(all)".to_owned(),
                verdict: Verdict::Inconclusive,
                value: "not measured".to_owned(),
                detail: e.to_string(),
            }],
        },
    };
    m.number = number;
    m.at = now(ctx);
    m
}

/// Adds a measurement to the status and returns the counts.
fn record(ctx: &WorkflowContext<RolloutWorkflow>, index: usize, m: Measurement) -> AnalysisStatus {
    ctx.state_mut(|s| {
        let a = s.status.steps[index]
            .analysis
            .get_or_insert_with(AnalysisStatus::default);
        a.taken += 1;
        match m.verdict {
            Verdict::Successful => a.successful += 1,
            Verdict::Failed => a.failed += 1,
            Verdict::Inconclusive => a.inconclusive += 1,
        }
        a.measurements.push(m);
        let excess = a.measurements.len().saturating_sub(AnalysisStatus::KEPT);
        a.measurements.drain(..excess);
        let mut counts = a.clone();
        counts.measurements.clear();
        counts
    })
}

fn decide(ctx: &WorkflowContext<RolloutWorkflow>, index: usize, verdict: Verdict) {
    ctx.state_mut(|s| {
        if let Some(a) = s.status.steps[index].analysis.as_mut() {
            a.verdict = Some(verdict);
        }
    });
    ctx.state(|s| {
        crate::observe::emit(
            ctx.is_replaying(),
            crate::observe::Event::AnalysisVerdict {
                service: &s.plan.service,
                environment: &s.plan.environment,
                verdict: verdict.as_str(),
            },
        )
    });
}

fn passed(ctx: &WorkflowContext<RolloutWorkflow>, index: usize, promoted: bool) -> Analysed {
    decide(ctx, index, Verdict::Successful);
    ctx.state_mut(|s| s.holding = None);
    let a = ctx.state(|s| s.status.steps[index].analysis.clone().unwrap_or_default());
    Analysed::Passed(AnalysisOutput {
        measurements: a.taken,
        failed: a.failed,
        inconclusive: a.inconclusive,
        promoted,
    })
}

enum Asked {
    Resumed,
    Promoted,
    Aborted,
    Cancelled,
}

/// Too much is unknown to decide: pause the rollout and wait for a person.
async fn ask_a_person(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    m: &Measurement,
    promotions: u64,
) -> Asked {
    let at = now(ctx);
    decide(ctx, index, Verdict::Inconclusive);
    ctx.state_mut(|s| {
        s.holding = Some(index);
        s.status.paused = Some(Pause {
            by: "cutover".to_owned(),
            reason: format!(
                "analysis inconclusive: {} — `resume` measures again, `promote` accepts the release, `abort` rolls back",
                m.explain()
            ),
            since: at,
        });
    });
    let waited = ctx
        .wait_condition(|s| {
            s.status.paused.is_none() || s.promotions != promotions || s.aborted.is_some()
        })
        .await;
    ctx.state_mut(|s| {
        s.status.paused = None;
        if let Some(a) = s.status.steps[index].analysis.as_mut() {
            a.verdict = None;
        }
    });
    if waited.is_err() {
        return Asked::Cancelled;
    }
    if ctx.state(|s| s.aborted.is_some()) {
        Asked::Aborted
    } else if ctx.state(|s| s.promotions != promotions) {
        Asked::Promoted
    } else {
        Asked::Resumed
    }
}
