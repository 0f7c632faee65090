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
