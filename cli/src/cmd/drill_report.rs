//! `cutover drill report`: drill evidence from the ledger, as a table, JSON, or an HTML page
//! an auditor can read without a terminal — each drill's phase timeline and the RTO/RPO trend
//! against the objectives, drawn as inline SVG (no scripts, no external assets).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use chrono::Utc;
use cutover_ledger::DrillRecord;
use cutover_workflows::drill::Phase;

use super::ledger::when;
use crate::cli::Output;
use crate::exit::{Failure, Outcome};

/// Prints (or writes as HTML) the latest `last` drills.
pub(crate) async fn report(
    ledger: Option<&str>,
    last: u32,
    output: Output,
    html: Option<&Path>,
) -> Outcome {
    let ledger = super::ledger::open(ledger).await?;
    let drills = ledger
        .drills(last)
        .await
        .map_err(|e| Failure::Failed(e.into()))?;
    if let Some(path) = html {
        std::fs::write(path, page(&drills))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {} ({} drills)", path.display(), drills.len());
        return Ok(());
    }
    if output == Output::Json {
        // Phases are stored as JSON text; a reader wants them as the array they are.
        let rows: Vec<serde_json::Value> = drills
            .iter()
            .map(|d| {
                let mut row = serde_json::to_value(d).unwrap_or_default();
                row["phases"] = serde_json::from_str(&d.phases)
                    .unwrap_or_else(|_| serde_json::Value::Array(Vec::new()));
                row
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
        return Ok(());
    }
    if drills.is_empty() {
        println!("no drills recorded in {}", ledger.url());
        return Ok(());
    }
    println!(
        "{:<19}  {:<36} {:<10} {:<7} {:>16} {:>16}",
        "STARTED", "DRILL", "MODE", "STATE", "RTO (objective)", "RPO (objective)"
    );
    for d in &drills {
        println!(
            "{:<19}  {:<36} {:<10} {:<7} {:>16} {:>16}{}",
            when(d.started_at),
            d.workflow_id,
            d.mode,
            d.state,
            format!(
                "{} ({} ms)",
                d.rto_ms.map_or("-".to_owned(), |v| format!("{v} ms")),
                d.rto_objective_ms
            ),
            format!(
                "{} ({})",
                d.rpo_markers.map_or("-".to_owned(), |v| v.to_string()),
                d.rpo_objective
            ),
            d.reason
                .as_deref()
                .map(|r| format!("  {r}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole HTML page.
pub(crate) fn page(drills: &[DrillRecord]) -> String {
    let mut h = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Cutover DR drills</title>\n<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}h2{margin-top:2rem}table{border-collapse:collapse}td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left}.passed{color:#1a7f37}.missed{color:#9a6700}.failed{color:#cf222e}svg text{font-size:11px}</style></head><body>\n<h1>DR drills</h1>\n",
    );
    let _ = writeln!(
        h,
        "<p>{} drill(s), newest first. Generated {}.</p>",
        drills.len(),
        Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    );
    h.push_str("<h2>RTO and RPO across drills</h2>\n");
    let oldest_first: Vec<&DrillRecord> = drills.iter().rev().collect();
    h.push_str(&trend(
        &oldest_first,
        "RTO (ms)",
        |d| d.rto_ms,
        |d| d.rto_objective_ms,
    ));
    h.push_str(&trend(
        &oldest_first,
        "RPO (markers lost)",
        |d| d.rpo_markers,
        |d| d.rpo_objective,
    ));
    for d in drills {
        let _ = writeln!(
            h,
            "<h2>{}</h2>\n<table><tr><th>run</th><td>{}</td></tr><tr><th>mode</th><td>{}</td></tr><tr><th>result</th><td class=\"{}\">{}</td></tr><tr><th>started</th><td>{}</td></tr><tr><th>RTO</th><td>{} (objective {} ms)</td></tr><tr><th>RPO</th><td>{} markers, {} bytes of {} markers written (objective {})</td></tr>{}{}</table>",
            esc(&d.workflow_id),
            esc(&d.run_id),
            esc(&d.mode),
            esc(&d.state),
            esc(&d.state),
            when(d.started_at),
            d.rto_ms.map_or("-".to_owned(), |v| format!("{v} ms")),
            d.rto_objective_ms,
            d.rpo_markers.map_or("-".to_owned(), |v| v.to_string()),
            d.rpo_bytes.unwrap_or_default(),
            d.markers,
            d.rpo_objective,
            d.reason
                .as_deref()
                .map(|r| format!("<tr><th>reason</th><td>{}</td></tr>", esc(r)))
                .unwrap_or_default(),
            d.restoration
                .as_deref()
                .map(|r| format!("<tr><th>restored</th><td>{}</td></tr>", esc(r)))
                .unwrap_or_default(),
        );
        let phases: Vec<Phase> = serde_json::from_str(&d.phases).unwrap_or_default();
        h.push_str(&timeline(&phases));
    }
    h.push_str("</body></html>\n");
    h
}

/// One bar per phase, placed by its start and end relative to the first phase's start.
fn timeline(phases: &[Phase]) -> String {
    let start = phases.iter().filter_map(|p| p.started_at).min();
    let end = phases
        .iter()
        .filter_map(|p| p.finished_at.or(p.started_at))
        .max();
    let (Some(start), Some(end)) = (start, end) else {
        return "<p>no phases recorded</p>\n".to_owned();
    };
    let total = ((end - start).num_milliseconds()).max(1) as f64;
    let (left, width, row) = (110.0, 560.0, 18.0);
    let height = row * phases.len() as f64 + 24.0;
    let mut s = format!(
        "<svg role=\"img\" aria-label=\"phase timeline\" width=\"700\" height=\"{height}\" viewBox=\"0 0 700 {height}\">\n"
    );
    for (i, p) in phases.iter().enumerate() {
        let (Some(a), b) = (p.started_at, p.finished_at) else {
            continue;
        };
        let b = b.unwrap_or(a);
        let x = left + width * ((a - start).num_milliseconds() as f64 / total);
        let w = (width * ((b - a).num_milliseconds() as f64 / total)).max(2.0);
        let y = row * i as f64 + 4.0;
        let colour = match p.state.as_str() {
            "succeeded" => "#2da44e",
            "failed" => "#cf222e",
            _ => "#9a6700",
        };
        let _ = writeln!(
            s,
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{colour}\"><title>{}: {} ms — {}</title></rect><text x=\"{:.1}\" y=\"{}\">{} ms</text>",
            y + 11.0,
            esc(&p.name),
            row - 5.0,
            esc(&p.name),
            (b - a).num_milliseconds(),
            esc(p.note.as_deref().unwrap_or_default()),
            (x + w + 4.0).min(660.0),
            y + 11.0,
            (b - a).num_milliseconds()
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{left}\" y=\"{}\">0</text><text x=\"{}\" y=\"{}\">{} ms</text></svg>",
        height - 4.0,
        left + width - 40.0,
        height - 4.0,
        total as i64
    );
    s
}

/// A line of `value` per drill, oldest to newest, with the objective as a dashed line: both
/// axes drawn and labelled (the value's unit and its scale from 0; the drills' dates), and
/// each point labelled with its value (and its date on hover).
fn trend(
    drills: &[&DrillRecord],
    label: &str,
    value: impl Fn(&DrillRecord) -> Option<i64>,
    objective: impl Fn(&DrillRecord) -> i64,
) -> String {
    let (w, h) = (640.0, 200.0);
    let (left, right, top, bottom) = (64.0, 24.0, 28.0, 44.0);
    let max = drills
        .iter()
        .flat_map(|d| [value(d).unwrap_or(0), objective(d)])
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let n = drills.len().max(2) as f64 - 1.0;
    let x = |i: usize| left + (w - left - right) * i as f64 / n;
    let y = |v: i64| h - bottom - (h - top - bottom) * v as f64 / max;
    let mut s = format!(
        "<svg role=\"img\" aria-label=\"{}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n<text x=\"{left}\" y=\"16\">{}</text>\n",
        esc(label),
        esc(label)
    );
    // Axes: y from 0 to the largest value or objective, x across the drills.
    let (x0, x1, y0, y1) = (left, w - right, h - bottom, top);
    let _ = writeln!(
        s,
        "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#57606a\"/><line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{y1}\" stroke=\"#57606a\"/>"
    );
    for tick in [0, max as i64 / 2, max as i64] {
        let _ = writeln!(
            s,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{x0}\" y2=\"{:.1}\" stroke=\"#57606a\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>",
            x0 - 4.0,
            y(tick),
            y(tick),
            x0 - 6.0,
            y(tick) + 4.0
        );
    }
    if let (Some(first), Some(last)) = (drills.first(), drills.last()) {
        let _ = writeln!(
            s,
            "<text x=\"{x0}\" y=\"{:.1}\">{}</text><text x=\"{x1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">drills, oldest to newest</text>",
            y0 + 16.0,
            esc(&when(first.started_at)),
            y0 + 16.0,
            esc(&when(last.started_at)),
            (x0 + x1) / 2.0,
            y0 + 34.0
        );
    }
    let points: Vec<String> = drills
        .iter()
        .enumerate()
        .filter_map(|(i, d)| value(d).map(|v| format!("{:.1},{:.1}", x(i), y(v))))
        .collect();
    if let Some(first) = drills.first() {
        let o = y(objective(first));
        let _ = writeln!(
            s,
            "<line x1=\"{x0}\" y1=\"{o:.1}\" x2=\"{x1}\" y2=\"{o:.1}\" stroke=\"#cf222e\" stroke-dasharray=\"4 3\"/><text x=\"{x1}\" y=\"{:.1}\" text-anchor=\"end\">objective {}</text>",
            o - 3.0,
            objective(first)
        );
    }
    let _ = writeln!(
        s,
        "<polyline fill=\"none\" stroke=\"#0969da\" stroke-width=\"2\" points=\"{}\"/>",
        points.join(" ")
    );
    // Every point says its value; past 30 drills the labels would overlap, and hover says it.
    let labelled = drills.len() <= 30;
    for (i, d) in drills.iter().enumerate() {
        if let Some(v) = value(d) {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#0969da\"><title>{}: {v}</title></circle>",
                x(i),
                y(v),
                esc(&when(d.started_at))
            );
            if labelled {
                let _ = write!(
                    s,
                    "<text class=\"point\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{v}</text>",
                    x(i),
                    y(v) - 7.0
                );
            }
            s.push('\n');
        }
    }
    s.push_str("</svg>\n");
    s
}
