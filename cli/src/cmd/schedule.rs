//! `cutover drill schedule …` and `cutover rollout schedule …`: create, list, describe, pause,
//! unpause, trigger, delete. One implementation; [`Kind`] says which workflows a schedule
//! starts and which of them `list` shows.

use std::time::SystemTime;

use anyhow::anyhow;
use cutover_client::schedule::{CRON_MEMO, DRILL_MEMO, ROLLOUT_MEMO, TIMEZONE_MEMO};
use cutover_client::{
    DrillSchedule, ScheduleError, create_drill_schedule, create_rollout_schedule,
};
use futures::StreamExt;
use serde_json::{Value, json};
use temporalio_client::schedules::{
    DeleteScheduleOptions, ListSchedulesOptions, PauseScheduleOptions, ScheduleOverlapPolicy,
    TriggerScheduleOptions, UnpauseScheduleOptions,
};
use temporalio_client::{Client, RpcOptions, tonic};
use temporalio_common::protos::temporal::api::common::v1::Memo;

use super::connect;
use crate::cli::{Global, Output, ScheduleCommand};
use crate::exit::{Failure, Outcome};

/// What a schedule starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `DrillWorkflow`.
    Drill,
    /// A `QueueWorkflow` entry that starts `RolloutWorkflow`.
    Rollout,
}

impl Kind {
    /// `drill` or `rollout`: in messages, and the memo and JSON key naming what it starts.
    fn noun(self) -> &'static str {
        match self {
            Kind::Drill => "drill",
            Kind::Rollout => "rollout",
        }
    }

    fn memo_key(self) -> &'static str {
        match self {
            Kind::Drill => DRILL_MEMO,
            Kind::Rollout => ROLLOUT_MEMO,
        }
    }

    /// The workflow type a schedule of this kind starts.
    fn workflow_type(self) -> &'static str {
        match self {
            Kind::Drill => cutover_workflows::drill::DrillWorkflow::name(),
            Kind::Rollout => cutover_workflows::queue::QueueWorkflow::name(),
        }
    }
}

pub(crate) async fn run(global: &Global, command: ScheduleCommand, kind: Kind) -> Outcome {
    // Plans are read and checked before anything is sent.
    if let ScheduleCommand::Create {
        name,
        cron,
        plan,
        timezone,
        catchup_window,
        paused,
        on_busy,
    } = command
    {
        let schedule = DrillSchedule {
            name,
            cron,
            timezone,
            catchup_window,
            paused,
        };
        let (created, target) = match kind {
            Kind::Drill => {
                if on_busy != cutover_workflows::queue::OnBusy::Reject {
                    return Err(Failure::Input(anyhow!(
                        "--on-busy is for rollout schedules; a drill schedule skips a run while one is running"
                    )));
                }
                let plan = super::drill::load(&plan)?;
                let client = connect(global).await?.client;
                let created =
                    create_drill_schedule(&client, &schedule, &plan, &global.task_queue).await;
                (created.map(|()| client), plan.workflow_id())
            }
            Kind::Rollout => {
                let plan = super::load_plan(&plan)?;
                let client = connect(global).await?.client;
                let created =
                    create_rollout_schedule(&client, &schedule, &plan, on_busy, &global.task_queue)
                        .await;
                (
                    created.map(|()| client),
                    format!("{} at {}", plan.workflow_id(), plan.version),
                )
            }
        };
        return match created {
            Ok(client) => {
                let next = next_runs(&client, &schedule.name).await;
                println!(
                    "created schedule {} ({} {}): {} {target}{}; next run {}",
                    schedule.name,
                    schedule.cron,
                    schedule.timezone,
                    kind.noun(),
                    if schedule.paused { ", paused" } else { "" },
                    next.first().map_or_else(|| "-".to_owned(), |t| when(*t))
                );
                Ok(())
            }
            Err(e @ (ScheduleError::Exists(_) | ScheduleError::Invalid(_))) => {
                Err(Failure::Input(e.into()))
            }
            Err(e) => Err(Failure::Failed(e.into())),
        };
    }
    let client = connect(global).await?.client;
    match command {
        ScheduleCommand::Create { .. } => Ok(()),
        ScheduleCommand::List { output } => list(&client, kind, output.output).await,
        ScheduleCommand::Describe { name, output } => {
            describe(&client, kind, &name, output.output).await
        }
        ScheduleCommand::Pause { name, note } => {
            let handle = client.get_schedule_handle(&name);
            handle
                .pause(Some(note), PauseScheduleOptions::default())
                .await
                .map_err(|e| refused(kind, &name, e))?;
            println!(
                "paused schedule {name}: no {} starts until it is unpaused",
                kind.noun()
            );
            Ok(())
        }
        ScheduleCommand::Unpause { name } => {
            let handle = client.get_schedule_handle(&name);
            handle
                .unpause(None::<String>, UnpauseScheduleOptions::default())
                .await
                .map_err(|e| refused(kind, &name, e))?;
            let next = next_runs(&client, &name).await;
            println!(
                "unpaused schedule {name}; next run {}",
                next.first().map_or_else(|| "-".to_owned(), |t| when(*t))
            );
            Ok(())
        }
        ScheduleCommand::Trigger { name } => {
            client
                .get_schedule_handle(&name)
                .trigger(
                    ScheduleOverlapPolicy::Skip,
                    TriggerScheduleOptions::default(),
                )
                .await
                .map_err(|e| refused(kind, &name, e))?;
            println!(
                "triggered schedule {name}: a {} starts now unless one is running",
                kind.noun()
            );
            Ok(())
        }
        ScheduleCommand::Delete { name } => {
            client
                .get_schedule_handle(&name)
                .delete(DeleteScheduleOptions::default())
                .await
                .map_err(|e| refused(kind, &name, e))?;
            println!("deleted schedule {name}");
            Ok(())
        }
    }
}

/// A missing schedule is the user's mistake (exit 2); anything else is the server's.
fn refused(kind: Kind, name: &str, e: temporalio_client::schedules::ScheduleError) -> Failure {
    match &e {
        temporalio_client::schedules::ScheduleError::Rpc(status)
            if status.code() == tonic::Code::NotFound =>
        {
            Failure::Input(anyhow!(
                "no schedule named `{name}`: `cutover {} schedule list` shows them",
                kind.noun()
            ))
        }
        _ => Failure::Failed(anyhow!("schedule {name}: {e}")),
    }
}

async fn next_runs(client: &Client, name: &str) -> Vec<SystemTime> {
    client
        .get_schedule_handle(name)
        .describe(RpcOptions::default())
        .await
        .map(|d| d.future_action_times())
        .unwrap_or_default()
}

fn when(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

fn memo_text(memo: Option<&Memo>, key: &str) -> String {
    memo.and_then(|m| m.fields.get(key))
        .and_then(|p| serde_json::from_slice::<Value>(&p.data).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn list(client: &Client, kind: Kind, output: Output) -> Outcome {
    let mut stream = client.list_schedules(ListSchedulesOptions::default());
    let mut rows = Vec::new();
    while let Some(item) = stream.next().await {
        let summary = item.map_err(|e| anyhow!("listing schedules: {e}"))?;
        if summary.workflow_type() != Some(kind.workflow_type()) {
            continue;
        }
        let fields = summary.raw().memo.as_ref();
        rows.push(json!({
            "name": summary.schedule_id(),
            kind.noun(): memo_text(fields, kind.memo_key()),
            "cron": memo_text(fields, CRON_MEMO),
            "timezone": memo_text(fields, TIMEZONE_MEMO),
            "paused": summary.paused(),
            "next_run": summary.future_action_times().first().map(|t| when(*t)),
            "last_run": summary.recent_actions().last().map(|a| a.workflow_id.clone()),
        }));
    }
    rows.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    if super::json_or_empty(&rows, output, &format!("no {} schedules", kind.noun())) {
        return Ok(());
    }
    println!(
        "{:<24} {:<8} {:<18} {:<25} LAST RUN",
        "NAME", "STATE", "CRON", "NEXT RUN"
    );
    for r in rows {
        println!(
            "{:<24} {:<8} {:<18} {:<25} {}",
            r["name"].as_str().unwrap_or_default(),
            if r["paused"] == true {
                "paused"
            } else {
                "active"
            },
            r["cron"].as_str().unwrap_or_default(),
            r["next_run"].as_str().unwrap_or("-"),
            r["last_run"].as_str().unwrap_or("-"),
        );
    }
    Ok(())
}

async fn describe(client: &Client, kind: Kind, name: &str, output: Output) -> Outcome {
    let d = client
        .get_schedule_handle(name)
        .describe(RpcOptions::default())
        .await
        .map_err(|e| refused(kind, name, e))?;
    let fields = d.raw().memo.as_ref();
    let catchup = d
        .raw()
        .schedule
        .as_ref()
        .and_then(|s| s.policies.as_ref())
        .and_then(|p| p.catchup_window)
        .map(|w| w.seconds)
        .unwrap_or_default();
    let value = json!({
        "name": name,
        kind.noun(): memo_text(fields, kind.memo_key()),
        "cron": memo_text(fields, CRON_MEMO),
        "timezone": memo_text(fields, TIMEZONE_MEMO),
        "paused": d.paused(),
        "note": d.note(),
        "overlap": "skip",
        "catchup_window_s": catchup,
        "runs": d.action_count(),
        "skipped_overlapping": d.overlap_skipped(),
        "missed_catchup_window": d.missed_catchup_window(),
        "next_runs": d.future_action_times().into_iter().take(5).map(when).collect::<Vec<_>>(),
        "recent_runs": d.recent_actions().iter().map(|a| json!({
            "workflow_id": a.workflow_id,
            "run_id": a.run_id,
            "at": a.actual_time.map(when),
        })).collect::<Vec<_>>(),
        "running": d.running_actions().iter().map(|a| a.workflow_id.clone()).collect::<Vec<_>>(),
    });
    if output == Output::Json {
        println!("{value}");
        return Ok(());
    }
    println!("schedule   {name}");
    println!(
        "{:<10} {}",
        kind.noun(),
        value[kind.noun()].as_str().unwrap_or_default()
    );
    println!(
        "when       {} ({}), overlap skip, catch-up window {catchup} s",
        value["cron"].as_str().unwrap_or_default(),
        value["timezone"].as_str().unwrap_or_default()
    );
    println!(
        "state      {}{}",
        if d.paused() { "paused" } else { "active" },
        d.note().map(|n| format!(" — {n}")).unwrap_or_default()
    );
    println!(
        "runs       {} started, {} skipped (overlap), {} missed (catch-up window)",
        d.action_count(),
        d.overlap_skipped(),
        d.missed_catchup_window()
    );
    for t in d.future_action_times().into_iter().take(3) {
        println!("next       {}", when(t));
    }
    for a in d.recent_actions() {
        println!(
            "recent     {} at {}",
            a.workflow_id,
            a.actual_time.map(when).unwrap_or_default()
        );
    }
    Ok(())
}
