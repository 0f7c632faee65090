//! A canary's script: weights, and gates between them (bakes, pauses, analyses, approvals),
//! run in order for one deploy step, on one machine or a fleet's router.
//!
//! `promote` ends the wait it finds (a bake, a pause, an analysis) and skips ahead to the next
//! gate that is not a bake — shifting traffic to the last weight on the way — or, with none
//! left, to 100%. `promote --full` skips pauses and analyses too. Neither ever skips an
//! approval: a promote is one person, and a script that asks two to approve means it.
//!
//! Plans written before gates existed (weights with bakes only) run the same commands they
//! always ran: a weight's shift, the deploy's `analysis` below 100, its bake; and a promote
//! during them goes to 100%.

use std::time::Duration;

use temporalio_sdk::{ActivityOptions, WorkflowContext};

use super::RolloutWorkflow;
use super::analysis::analyse;
use super::approval::approval;
use super::hold::hold;
use super::step::Interrupted;
use crate::contracts::StepRef;
use crate::plan::{AnalysisSpec, CanaryGate, CanaryStep};
use crate::status::CanaryStatus;

/// A script to run, and how.
pub(super) struct Script<'a> {
    /// The entries.
    pub(super) entries: &'a [CanaryStep],
    /// The deploy's `analysis`, run at every weight below 100 before its bake.
    pub(super) analysis: Option<&'a AnalysisSpec>,
    /// The first entry to run (a retried attempt resumes after those done).
    pub(super) from: usize,
    /// End before the entry that sends 100% (a fleet sends it with its remaining waves).
    pub(super) stop_at_full: bool,
    /// Show the script in the step's status (a canary; not a blue-green's single switch).
    pub(super) shown: bool,
}

/// Runs `script` for step `index`. `shift` moves traffic to a weight; `done` records that the
/// entries before the given one are complete (kept for a retried attempt).
pub(super) async fn script(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    script: Script<'_>,
    step_ref: &StepRef,
    opts: &ActivityOptions,
    mut shift: impl AsyncFnMut(u8) -> Result<(), Interrupted>,
    mut done: impl FnMut(usize),
) -> Result<(), Interrupted> {
    let Script {
        entries,
        analysis,
        from,
        stop_at_full,
        shown,
    } = script;
    let mut entry = from;
    while let Some(c) = entries.get(entry) {
        if stop_at_full && c.gate.is_none() && c.weight >= 100 {
            break;
        }
        if shown {
            show(ctx, index, entries, entry);
        }
        let promoted = match &c.gate {
            None => {
                shift(c.weight).await?;
                // A weight below 100 is judged by the deploy's analysis, then held.
                let judged = match (analysis, c.weight < 100) {
                    (Some(analysis), true) => {
                        analyse(ctx, index, analysis, step_ref, opts, Some(c.weight))
                            .await
                            .promoted()?
                    }
                    _ => false,
                };
                judged || (c.weight < 100 && held(ctx, index, c.bake).await?)
            }
            Some(gate) => run_gate(ctx, index, c, gate, step_ref, opts).await?,
        };
        entry = if promoted {
            let full = ctx.state(|s| s.promote_full);
            let (next, weight) = skip(entries, entry, full, stop_at_full);
            if let Some(weight) = weight {
                shift(weight).await?;
            }
            next
        } else {
            entry + 1
        };
        done(entry);
    }
    ctx.state_mut(|s| {
        if let Some(c) = s.status.steps[index].canary.as_mut() {
            c.position = entry.min(entries.len());
        }
    });
    Ok(())
}

/// One gate at the weight reached. Returns whether someone promoted.
async fn run_gate(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    entry: &CanaryStep,
    gate: &CanaryGate,
    step_ref: &StepRef,
    opts: &ActivityOptions,
) -> Result<bool, Interrupted> {
    match gate {
        CanaryGate::Bake => held(ctx, index, entry.bake).await,
        CanaryGate::Pause => pause(ctx, index).await,
        CanaryGate::Analysis(spec) => {
            let weight = (entry.weight > 0).then_some(entry.weight);
            analyse(ctx, index, spec, step_ref, opts, weight)
                .await
                .promoted()
        }
        CanaryGate::Approval(spec) => {
            ctx.state_mut(|s| {
                let step = &mut s.status.steps[index];
                step.required_approvals = Some(spec.required);
                let from = step.approvals.len();
                if let Some(c) = step.canary.as_mut() {
                    c.approvals_from = from;
                }
            });
            let out = approval(ctx, index, spec, true).await;
            ctx.state_mut(|s| s.status.steps[index].required_approvals = None);
            out.map(|_| false)
        }
    }
}

/// A bake of `duration` (nothing when zero); whether someone promoted.
async fn held(
    ctx: &WorkflowContext<RolloutWorkflow>,
    index: usize,
    duration: Duration,
) -> Result<bool, Interrupted> {
    if duration.is_zero() {
        return Ok(false);
    }
    hold(ctx, index, duration).await.promoted()
}

/// Waits for a promote (or an abort, or the workflow's cancellation).
async fn pause(ctx: &WorkflowContext<RolloutWorkflow>, index: usize) -> Result<bool, Interrupted> {
    let promotions = ctx.state_mut(|s| {
        s.holding = Some(index);
        s.promotions
    });
    let waited = ctx
        .wait_condition(|s| s.promotions != promotions || s.aborted.is_some())
        .await;
    ctx.state_mut(|s| s.holding = None);
    if waited.is_err() {
        return Err(Interrupted::TimerCancelled);
    }
    if ctx.state(|s| s.aborted.is_some()) {
        return Err(Interrupted::Aborted);
    }
    Ok(true)
}

/// Where a promote at entry `at` goes: the next entry to run, and the weight to shift to on
/// the way (the last weight skipped), if any. Bakes are always skipped, pauses and analyses
/// with `full`, approvals never. Past the last gate, the weight is 100 (or, with
/// `stop_at_full`, the script ends there and the caller sends 100).
pub(super) fn skip(
    entries: &[CanaryStep],
    at: usize,
    full: bool,
    stop_at_full: bool,
) -> (usize, Option<u8>) {
    let mut weight = None;
    for (i, e) in entries.iter().enumerate().skip(at + 1) {
        match &e.gate {
            // The fleet's waves send 100% next; a weight between would be a needless move.
            None if stop_at_full && e.weight >= 100 => return (i, None),
            None => weight = Some(e.weight),
            Some(CanaryGate::Bake) => {}
            Some(CanaryGate::Pause | CanaryGate::Analysis(_)) if full => {}
            Some(_) => return (i, weight),
        }
    }
    (entries.len(), weight)
}

/// Shows the script and the entry under way in the step's status.
fn show(ctx: &WorkflowContext<RolloutWorkflow>, index: usize, entries: &[CanaryStep], at: usize) {
    let weight = entries[..at]
        .iter()
        .rev()
        .find(|e| e.gate.is_none())
        .map_or(0, |e| e.weight);
    let weight = match &entries[at].gate {
        None => entries[at].weight,
        Some(_) => weight,
    };
    ctx.state_mut(|s| {
        s.status.steps[index].canary = Some(CanaryStatus {
            script: entries.iter().map(CanaryStep::describe).collect(),
            position: at,
            weight,
            approvals_from: 0,
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ApprovalSpec;

    fn w(weight: u8) -> CanaryStep {
        CanaryStep {
            weight,
            bake: Duration::ZERO,
            gate: None,
        }
    }

    fn g(weight: u8, gate: CanaryGate) -> CanaryStep {
        CanaryStep {
            weight,
            bake: Duration::from_secs(60),
            gate: Some(gate),
        }
    }

    fn approval() -> CanaryGate {
        CanaryGate::Approval(Box::new(ApprovalSpec {
            required: 2,
            timeout: None,
            on_timeout: crate::plan::OnTimeout::Abort,
            approvers: Vec::new(),
        }))
    }

    #[test]
    fn a_promote_in_a_weights_only_canary_goes_to_100() {
        let script = [w(10), w(50), w(100)];
        assert_eq!(skip(&script, 0, false, false), (3, Some(100)));
    }

    #[test]
    fn a_promote_stops_at_the_next_pause_with_the_weight_before_it() {
        let script = [
            w(10),
            g(10, CanaryGate::Bake),
            w(25),
            g(25, CanaryGate::Bake),
            g(25, CanaryGate::Pause),
            w(100),
        ];
        assert_eq!(skip(&script, 1, false, false), (4, Some(25)));
        // --full goes past the pause.
        assert_eq!(skip(&script, 1, true, false), (6, Some(100)));
    }

    #[test]
    fn no_promote_skips_an_approval() {
        let script = [
            w(10),
            g(10, CanaryGate::Pause),
            approval_at(10),
            w(50),
            w(100),
        ];
        assert_eq!(skip(&script, 1, true, false), (2, None));
        assert_eq!(skip(&script, 0, true, false), (2, None));
    }

    fn approval_at(weight: u8) -> CanaryStep {
        g(weight, approval())
    }

    #[test]
    fn a_fleet_canary_stops_before_100() {
        let script = [w(10), g(10, CanaryGate::Bake), w(100)];
        assert_eq!(skip(&script, 1, false, true), (2, None));
        let script = [w(10), w(50), w(100)];
        assert_eq!(skip(&script, 0, false, true), (2, None));
    }
}
