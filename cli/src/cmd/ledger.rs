//! `cutover triggers validate`, `cutover webhooks deliveries`, `cutover releases`: the ledger
//! and the rules, read from the command line.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use cutover_ledger::Ledger;

use crate::cli::Output;
use crate::exit::{Failure, Outcome};

/// Checks a rules file and every plan it names.
pub(crate) fn validate_triggers(path: &Path) -> Outcome {
    let (rules, plans) = crate::serve::load_rules(path)?;
    println!(
        "{}: ok — {} rule{}, {} plan{}",
        path.display(),
        rules.rules.len(),
        if rules.rules.len() == 1 { "" } else { "s" },
        plans.len(),
        if plans.len() == 1 { "" } else { "s" }
    );
    for rule in &rules.rules {
        let pattern = rule
            .branch
            .as_deref()
            .map(|b| format!(" branch {b}"))
            .or_else(|| rule.tag.as_deref().map(|t| format!(" tag {t}")))
            .unwrap_or_default();
        println!(
            "  {}: {} {} of {}{pattern} → {} to {}",
            rule.name,
            rule.provider.as_str(),
            rule.event.as_str(),
            rule.repository,
            plans.get(&rule.name).map_or("?", |p| p.service.as_str()),
            rule.environment
        );
    }
    Ok(())
}

/// Opens the ledger at `url`, or the default one under the working directory.
pub(crate) async fn open(url: Option<&str>) -> Result<Ledger, Failure> {
    let cwd = std::env::current_dir().context("reading the working directory")?;
    Ledger::open(&Ledger::resolve_url(url, &cwd))
        .await
        .map_err(|e| Failure::Failed(e.into()))
}

/// A ledger time (Unix ms) for people.
pub(crate) fn when(ms: Option<i64>) -> String {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

/// The latest deliveries (or the stuck ones).
pub(crate) async fn deliveries(
    url: Option<&str>,
    last: u32,
    stuck: bool,
    output: Output,
) -> Outcome {
    let ledger = open(url).await?;
    let rows = if stuck {
        let before = cutover_ledger::now_ms() - crate::serve::STUCK_AFTER.as_millis() as i64;
        ledger.stuck_deliveries(before).await.map(|mut rows| {
            rows.truncate(last as usize);
            rows
        })
    } else {
        ledger.deliveries(last).await
    }
    .map_err(|e| Failure::Failed(e.into()))?;
    let empty = if stuck {
        format!("no stuck deliveries in {}", ledger.url())
    } else {
        format!("no deliveries recorded in {}", ledger.url())
    };
    if super::json_or_empty(&rows, output, &empty) {
        return Ok(());
    }
    println!(
        "{:<19}  {:<8} {:<38} {:<6} {:<10} {:<22} REASON",
        "RECEIVED", "PROVIDER", "DELIVERY", "STATUS", "OUTCOME", "SOURCE"
    );
    for r in rows {
        println!(
            "{:<19}  {:<8} {:<38} {:<6} {:<10} {:<22} {}{}",
            when(Some(r.received_at)),
            r.provider,
            r.delivery_id.as_deref().unwrap_or("-"),
            r.status,
            r.outcome,
            r.source,
            r.reason,
            r.workflow_id
                .map(|w| format!(" [{w} {}]", r.run_id.unwrap_or_default()))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// Releases, newest first.
pub(crate) async fn releases(
    url: Option<&str>,
    service: Option<&str>,
    environment: Option<&str>,
    last: u32,
    output: Output,
) -> Outcome {
    let ledger = open(url).await?;
    let rows = ledger
        .releases(service, environment, last)
        .await
        .map_err(|e| Failure::Failed(e.into()))?;
    if super::json_or_empty(
        &rows,
        output,
        &format!("no releases recorded in {}", ledger.url()),
    ) {
        return Ok(());
    }
    println!(
        "{:<19}  {:<19}  {:<16} {:<12} {:<14} {:<12} TRIGGER",
        "STARTED", "FINISHED", "SERVICE", "ENVIRONMENT", "VERSION", "OUTCOME"
    );
    for r in rows {
        println!(
            "{:<19}  {:<19}  {:<16} {:<12} {:<14} {:<12} {}{}",
            when(r.started_at),
            when(r.finished_at),
            r.service,
            r.environment,
            r.version,
            r.outcome,
            r.trigger,
            r.trigger_detail
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
