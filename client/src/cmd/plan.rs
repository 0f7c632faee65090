//! `cutover plan validate|show`.

use std::path::Path;

use anyhow::Context;

use super::load_plan;
use crate::exit::Outcome;

/// Reports every problem, or a one-line summary of a good plan.
pub(crate) fn validate(path: &Path) -> Outcome {
    let plan = load_plan(path)?;
    println!(
        "{}: ok — {} {} → {}, {} step{}",
        path.display(),
        plan.service,
        plan.version,
        plan.environment,
        plan.steps.len(),
        if plan.steps.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

/// Prints the normalized plan as JSON — which is also YAML, so the output is a valid plan.
pub(crate) fn show(path: &Path) -> Outcome {
    let plan = load_plan(path)?;
    let text = serde_json::to_string_pretty(&plan).context("printing the plan")?;
    println!("{text}");
    Ok(())
}

/// Reports every problem in a drill plan, or a one-line summary of a good one.
pub(crate) fn validate_drill(path: &Path) -> Outcome {
    let shown = path.display().to_string();
    let text = super::read_text(path, "drill plan", 64 * 1024)?;
    let plan = cutover_workflows::drill::parse_drill(&text).map_err(|problems| {
        eprintln!("{}", problems.render(&shown));
        eprintln!(
            "{shown}: {} problem{} found",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        crate::exit::Failure::InputReported
    })?;
    println!(
        "{shown}: ok — {} of {} in {}, objectives RTO {} and RPO {} marker{}",
        match plan.mode {
            cutover_workflows::drill::DrillMode::Failover => "failover",
            cutover_workflows::drill::DrillMode::Switchover => "switchover",
        },
        plan.service,
        plan.environment,
        humantime::format_duration(plan.objectives.rto),
        plan.objectives.rpo_markers,
        if plan.objectives.rpo_markers == 1 {
            ""
        } else {
            "s"
        }
    );
    Ok(())
}
