//! Turning statuses into text for people and JSON for programs.

use chrono::{DateTime, Utc};
use cutover_workflows::analysis::Verdict;
use cutover_workflows::status::{
    AnalysisStatus, CanaryStatus, FleetStatus, RolloutStatus, StepState, StepStatus,
};
use serde::Serialize;
use temporalio_client::WorkflowExecution;
use temporalio_common::search_attributes::SearchAttributeKey;

use crate::cli::Output;

/// The lines that describe a rollout. `now` drives elapsed times of running steps; pass
/// `None` for output that must not change while nothing happens (logs, pipes).
pub(crate) fn status_lines(status: &RolloutStatus, now: Option<DateTime<Utc>>) -> Vec<String> {
    let mut lines = vec![format!(
        "{}  {} {} → {}  {}{}",
        status.workflow_id,
        status.service,
        status.version,
        status.environment,
        status.state.as_str(),
        match (status.started_at, status.finished_at.or(now)) {
            (Some(s), Some(e)) => format!("  ({})", duration(e - s)),
            _ => String::new(),
        }
    )];
    if let Some(p) = &status.paused {
        lines.push(format!(
            "  ‖ paused by {}{}: {} — resume with `cutover rollout resume {}`",
            p.by,
            p.since
                .map(|t| format!(" at {}", t.format("%H:%M:%S")))
                .unwrap_or_default(),
            p.reason,
            status.workflow_id
        ));
    }
    let width = status.steps.iter().map(|s| s.name.len()).max().unwrap_or(4);
    for step in &status.steps {
        lines.push(step_line(step, width, now));
        if let Some(f) = &step.fleet {
            lines.extend(fleet_lines(f));
        }
        if let Some(c) = &step.canary {
            lines.push(canary_line(c));
        }
        if let Some(a) = &step.analysis {
            lines.extend(analysis_lines(a, step.state == StepState::Running));
        }
        if let Some(wait) = waiting(step, now) {
            lines.push(format!("      {wait}"));
        }
        if let Some(err) = &step.last_error
            && matches!(step.state, StepState::Failed | StepState::Retrying)
        {
            for (i, line) in err.message.lines().take(25).enumerate() {
                let lead = if i == 0 {
                    format!("{}: ", err.kind)
                } else {
                    String::new()
                };
                lines.push(format!("      {lead}{line}"));
            }
        }
    }
    if let Some(reason) = &status.reason {
        lines.push(format!("reason: {reason}"));
    }
    for a in status.actions.iter().rev().take(5).rev() {
        lines.push(format!(
            "  {} {} by {}{}",
            a.at.map(|t| t.format("%H:%M:%S").to_string())
                .unwrap_or_default(),
            a.action,
            who(a),
            said(a)
        ));
    }
    lines.extend(notice_lines(&status.notifications));
    lines
}

/// The last few notifications: who was told what, and whether it got there.
pub(crate) fn notice_lines(notices: &[cutover_workflows::notify::NoticeStatus]) -> Vec<String> {
    use cutover_workflows::notify::NoticeState;
    notices
        .iter()
        .rev()
        .take(5)
        .rev()
        .map(|n| {
            let state = match n.state {
                NoticeState::Sending => "sending",
                NoticeState::Sent => "sent",
                NoticeState::Retrying => "retrying",
                NoticeState::Failed => "failed",
            };
            let attempts = if n.attempts == 1 {
                String::new()
            } else {
                format!(" after {} attempts", n.attempts)
            };
            let error = n
                .last_error
                .as_deref()
                .filter(|_| n.state != NoticeState::Sent)
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            format!(
                "  notify {} {}: {state}{attempts}{error}",
                n.notifier,
                n.event.as_str()
            )
        })
        .collect()
}

/// A fleet deploy: one line per wave, each host with its state, the wave under way marked.
fn fleet_lines(f: &FleetStatus) -> Vec<String> {
    f.waves
        .iter()
        .enumerate()
        .map(|(i, wave)| {
            let hosts: Vec<String> = wave
                .iter()
                .map(|h| {
                    let state = f.hosts.get(h).copied().unwrap_or_default();
                    format!("{h} {}", state.as_str())
                })
                .collect();
            let mark = if i == f.wave { "▶" } else { " " };
            let region = f
                .regions
                .get(i)
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            format!(
                "    {mark} wave {}/{}{region}: {}",
                i + 1,
                f.waves.len(),
                hosts.join(", ")
            )
        })
        .collect()
}

/// A canary's script on one line, the entry under way marked.
fn canary_line(c: &CanaryStatus) -> String {
    let entries: Vec<String> = c
        .script
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if i == c.position {
                format!("▶ {e}")
            } else {
                e.clone()
            }
        })
        .collect();
    let done = if c.position >= c.script.len() {
        " ✓"
    } else {
        ""
    };
    format!(
        "      canary at {}%: {}{done}",
        c.weight,
        entries.join(" → ")
    )
}

/// What a running approval or bake is waiting for, in words.
fn waiting(step: &StepStatus, now: Option<DateTime<Utc>>) -> Option<String> {
    if step.state != StepState::Running {
        return None;
    }
    if let Some(required) = step.required_approvals {
        // A canary's gate counts only its own approvals.
        let from = step.canary.as_ref().map_or(0, |c| c.approvals_from);
        let who: Vec<&str> = step
            .approvals
            .iter()
            .skip(from)
            .map(|a| a.approver.as_str())
            .collect();
        return Some(format!(
            "waiting for approval: {} of {required}{}",
            who.len(),
            if who.is_empty() {
                String::new()
            } else {
                format!(" ({})", who.join(", "))
            }
        ));
    }
    if step.ends_at.is_none()
        && step
            .canary
            .as_ref()
            .is_some_and(|c| c.script.get(c.position).is_some_and(|e| e == "pause"))
    {
        return Some("held by the canary's pause: `cutover rollout promote` goes on".to_owned());
    }
    if let Some(ms) = step.remaining_ms {
        return Some(format!(
            "clock stopped by the pause: {} left",
            duration(chrono::Duration::milliseconds(ms))
        ));
    }
    match (step.ends_at, now) {
        (Some(end), Some(now)) => {
            let left = (end - now).max(chrono::Duration::zero());
            let progress = step
                .hold_ms
                .filter(|total| *total > 0)
                .map(|total| {
                    let done = 1.0 - left.num_milliseconds() as f64 / total as f64;
                    format!("{} ", bar(done))
                })
                .unwrap_or_default();
            Some(format!(
                "{progress}{} left (until {})",
                duration(left),
                end.format("%H:%M:%S")
            ))
        }
        (Some(end), None) => Some(format!("waiting until {}", end.format("%H:%M:%S"))),
        _ => None,
    }
}

/// An analysis: progress, counts against the limits, verdict, and the latest measurements
/// with each metric's value and verdict.
fn analysis_lines(a: &AnalysisStatus, running: bool) -> Vec<String> {
    let at = a.weight.map(|w| format!(" at {w}%")).unwrap_or_default();
    let verdict = match a.verdict {
        Some(v) => format!(" — {}", v.as_str()),
        None => String::new(),
    };
    let progress = if running && a.planned > 0 {
        format!("{} ", bar(f64::from(a.taken) / f64::from(a.planned)))
    } else {
        String::new()
    };
    let mut lines = vec![format!(
        "      analysis{at}: {progress}{}/{} measurements: {} successful, {} failed (limit {}), {} inconclusive (limit {}){verdict}",
        a.taken,
        a.planned,
        a.successful,
        a.failed,
        a.failure_limit,
        a.inconclusive,
        a.inconclusive_limit,
    )];
    for m in a.measurements.iter().rev().take(3).rev() {
        let metrics: Vec<String> = m
            .metrics
            .iter()
            .map(|r| format!("{} {} {}", verdict_mark(r.verdict), r.name, r.value))
            .collect();
        lines.push(format!(
            "        #{} {}{}: {}",
            m.number,
            m.verdict.as_str(),
            m.at.map(|t| format!(" at {}", t.format("%H:%M:%S")))
                .unwrap_or_default(),
            metrics.join("; ")
        ));
    }
    lines
}

fn verdict_mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Successful => "✓",
        Verdict::Failed => "✗",
        Verdict::Inconclusive => "?",
    }
}

/// A 20-cell progress bar with its percentage, for bakes and analyses.
fn bar(done: f64) -> String {
    const CELLS: usize = 20;
    let done = done.clamp(0.0, 1.0);
    let full = (done * CELLS as f64).round() as usize;
    format!(
        "[{}{}] {:>3.0}%",
        "█".repeat(full),
        "░".repeat(CELLS - full),
        done * 100.0
    )
}

fn step_line(step: &StepStatus, width: usize, now: Option<DateTime<Utc>>) -> String {
    let mark = match step.state {
        StepState::Pending => "·",
        StepState::Running => "▶",
        StepState::Retrying => "↻",
        StepState::Succeeded => "✓",
        StepState::Failed => "✗",
        StepState::Cancelled => "⊘",
        StepState::RolledBack => "↶",
    };
    let attempts = if step.attempts == 0 || step.kind.is_wait() {
        String::new()
    } else if step.max_attempts == 0 {
        format!("attempt {}", step.attempts)
    } else {
        format!("attempt {}/{}", step.attempts, step.max_attempts)
    };
    let elapsed = match (step.started_at, step.finished_at.or(now)) {
        (Some(s), Some(e)) => duration(e - s),
        _ => String::new(),
    };
    let next = match (step.state, step.next_attempt_at) {
        (StepState::Retrying, Some(at)) => format!("  next attempt at {}", at.format("%H:%M:%S")),
        _ => String::new(),
    };
    format!(
        "  {mark} {:<width$}  {:<8} {:<10} {:<13} {elapsed}{next}",
        step.name,
        step.kind,
        step.state.as_str(),
        attempts
    )
}

fn duration(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// One rollout in `rollout list`.
#[derive(Debug, Serialize)]
pub(crate) struct ListRow {
    pub(crate) workflow_id: String,
    pub(crate) run_id: String,
    pub(crate) status: String,
    pub(crate) service: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) started_at: Option<DateTime<Utc>>,
    pub(crate) closed_at: Option<DateTime<Utc>>,
}

impl ListRow {
    pub(crate) fn from_execution(e: &WorkflowExecution) -> Self {
        let attrs = e.search_attributes();
        let get = |name: &'static str| attrs.get(&SearchAttributeKey::<String>::keyword(name));
        Self {
            workflow_id: e.id().to_owned(),
            run_id: e.run_id().to_owned(),
            status: format!("{:?}", e.status()).to_lowercase(),
            service: get(cutover_workflows::search_attributes::SERVICE),
            environment: get(cutover_workflows::search_attributes::ENVIRONMENT),
            version: get(cutover_workflows::search_attributes::VERSION),
            started_at: e.start_time().map(DateTime::<Utc>::from),
            closed_at: e.close_time().map(DateTime::<Utc>::from),
        }
    }
}

pub(crate) fn list(rows: &[ListRow], output: Output) {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(rows).unwrap_or_default());
        return;
    }
    if rows.is_empty() {
        println!("no rollouts found");
        return;
    }
    println!(
        "{:<40} {:<10} {:<14} {:<20}",
        "ID", "STATUS", "VERSION", "STARTED"
    );
    for r in rows {
        println!(
            "{:<40} {:<10} {:<14} {:<20}",
            r.workflow_id,
            r.status,
            r.version.as_deref().unwrap_or("-"),
            r.started_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_default()
        );
    }
}

/// One line of `rollout history`.
#[derive(Debug, Serialize)]
pub(crate) struct Event {
    pub(crate) at: Option<DateTime<Utc>>,
    pub(crate) what: String,
    /// Orders events of the same instant: the rollout's start, then people's actions, then a
    /// step's end, then the next step's start, then the rollout's end.
    #[serde(skip)]
    rank: u8,
}

/// Steps and human actions in time order.
pub(crate) fn timeline(status: &RolloutStatus) -> Vec<Event> {
    let mut events = vec![Event {
        at: status.started_at,
        what: "rollout started".to_owned(),
        rank: 0,
    }];
    for step in &status.steps {
        if let Some(at) = step.started_at {
            events.push(Event {
                at: Some(at),
                what: format!("step `{}` ({}) started", step.name, step.kind),
                rank: 3,
            });
        }
        // Each failed attempt; the one that failed the step is told with its end below.
        let last = (step.state == StepState::Failed).then(|| step.errors.len().saturating_sub(1));
        for (i, e) in step.errors.iter().enumerate() {
            if Some(i) == last {
                continue;
            }
            events.push(Event {
                at: e.at,
                what: format!(
                    "step `{}` attempt {} failed: {}: {}",
                    step.name,
                    e.attempt,
                    e.error.kind,
                    e.error.message.lines().next().unwrap_or_default()
                ),
                rank: 2,
            });
        }
        if let Some(at) = step.finished_at {
            let error = step
                .last_error
                .as_ref()
                .filter(|_| step.state == StepState::Failed)
                .map(|e| {
                    format!(
                        ": {}: {}",
                        e.kind,
                        e.message.lines().next().unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            events.push(Event {
                at: Some(at),
                what: if step.kind.is_wait() {
                    format!("step `{}` {}{error}", step.name, step.state.as_str())
                } else {
                    format!(
                        "step `{}` {} after {} attempt{}{error}",
                        step.name,
                        step.state.as_str(),
                        step.attempts,
                        if step.attempts == 1 { "" } else { "s" }
                    )
                },
                rank: 2,
            });
        }
    }
    for a in &status.actions {
        events.push(Event {
            at: a.at,
            what: format!(
                "{} by {}{}{}",
                a.action,
                who(a),
                a.step
                    .as_deref()
                    .map(|s| format!(" at step `{s}`"))
                    .unwrap_or_default(),
                said(a)
            ),
            rank: 1,
        });
    }
    if let Some(at) = status.finished_at {
        events.push(Event {
            at: Some(at),
            what: format!(
                "rollout {}{}",
                status.state.as_str(),
                status
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            rank: 4,
        });
    }
    events.sort_by_key(|e| (e.at, e.rank));
    events
}

/// The person, and how they were identified when it was verified: `ana (oidc)`.
fn who(a: &cutover_workflows::status::HumanAction) -> String {
    match a.verified.as_deref() {
        Some(method @ ("token" | "oidc")) => format!("{} ({method})", a.by),
        _ => a.by.clone(),
    }
}

/// `: their reason`, or ` — REFUSED: why` for an action the rollout refused.
fn said(a: &cutover_workflows::status::HumanAction) -> String {
    match &a.refused {
        Some(why) => format!(" — REFUSED: {why}"),
        None => a
            .reason
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(|r| format!(": {r}"))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutover_workflows::analysis::{Measurement, MetricResult};

    #[test]
    fn a_fleet_shows_its_waves_and_each_hosts_state() {
        use cutover_workflows::status::HostState;
        let f = FleetStatus {
            waves: vec![vec!["web-1".into()], vec!["web-2".into(), "web-3".into()]],
            regions: Vec::new(),
            wave: 1,
            hosts: [
                ("web-1".to_owned(), HostState::Deployed),
                ("web-2".to_owned(), HostState::Deploying),
                ("web-3".to_owned(), HostState::Failed),
            ]
            .into(),
        };
        assert_eq!(
            fleet_lines(&f),
            [
                "      wave 1/2: web-1 deployed",
                "    ▶ wave 2/2: web-2 deploying, web-3 failed",
            ]
        );
    }

    #[test]
    fn notifications_say_where_they_got() {
        use cutover_workflows::notify::{NoticeState, NoticeStatus};
        use cutover_workflows::plan::notify::NotifyEvent;
        let notice = |notifier: &str, event, state, attempts, error: Option<&str>| NoticeStatus {
            notifier: notifier.into(),
            event,
            state,
            attempts,
            last_error: error.map(Into::into),
        };
        assert_eq!(
            notice_lines(&[
                notice("team", NotifyEvent::Approval, NoticeState::Sent, 1, None),
                notice(
                    "bot",
                    NotifyEvent::Failed,
                    NoticeState::Failed,
                    3,
                    Some("notifier `bot` answered 500 Internal Server Error: ")
                ),
            ]),
            [
                "  notify team approval: sent",
                "  notify bot failed: failed after 3 attempts: notifier `bot` answered 500 Internal Server Error: ",
            ]
        );
    }

    #[test]
    fn bars_fill_with_progress() {
        assert_eq!(bar(0.0), format!("[{}]   0%", "░".repeat(20)));
        assert_eq!(
            bar(0.5),
            format!("[{}{}]  50%", "█".repeat(10), "░".repeat(10))
        );
        assert_eq!(bar(7.0), format!("[{}] 100%", "█".repeat(20)));
    }

    #[test]
    fn an_analysis_shows_counts_and_its_latest_measurements() {
        let m = |number, verdict, value: &str| Measurement {
            number,
            at: None,
            verdict,
            metrics: vec![MetricResult {
                name: "errors".into(),
                verdict,
                value: value.into(),
                detail: String::new(),
            }],
        };
        let a = AnalysisStatus {
            weight: Some(10),
            planned: 4,
            taken: 2,
            successful: 1,
            failed: 1,
            failure_limit: 1,
            measurements: vec![
                m(1, Verdict::Successful, "result[0]=0"),
                m(2, Verdict::Failed, "result[0]=0.5"),
            ],
            ..AnalysisStatus::default()
        };
        let lines = analysis_lines(&a, true);
        assert_eq!(
            lines[0],
            format!(
                "      analysis at 10%: [{}{}]  50% 2/4 measurements: 1 successful, 1 failed (limit 1), 0 inconclusive (limit 0)",
                "█".repeat(10),
                "░".repeat(10)
            )
        );
        assert_eq!(lines[2], "        #2 failed: ✗ errors result[0]=0.5");
    }
}
