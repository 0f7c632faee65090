//! `cutover plan validate|show`.

use std::path::Path;

use anyhow::Context;

use super::load_plan;
use cutover_workflows::plan::{PlanLimits, StepAction, parse_plan};

use crate::cli::Output;
use crate::exit::{Failure, Outcome};

/// Reports every problem, or a one-line summary of a good plan; with `--output json`, either
/// as one JSON object on standard output (`valid`, and `problems` with line, column, path,
/// message and hint).
pub(crate) fn validate(path: &Path, output: Output) -> Outcome {
    if output == Output::Json {
        let limits = PlanLimits::default();
        let text = super::read_text(path, "plan", limits.max_bytes)?;
        let parsed = parse_plan(&text, limits);
        let answer = match &parsed {
            Ok(plan) => serde_json::json!({
                "file": path.display().to_string(),
                "valid": true,
                "service": plan.service,
                "environment": plan.environment,
                "version": plan.version,
                "steps": plan.steps.len(),
            }),
            Err(problems) => serde_json::json!({
                "file": path.display().to_string(),
                "valid": false,
                "problems": problems.0,
            }),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        );
        return match parsed {
            Ok(_) => Ok(()),
            Err(_) => Err(Failure::InputReported),
        };
    }
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

/// Prints the normalized plan as JSON — which is also YAML, so the output is a valid plan —
/// or, with `objects`, what its Kubernetes deploy steps would apply.
pub(crate) async fn show(path: &Path, objects: bool) -> Outcome {
    let plan = load_plan(path)?;
    if !objects {
        let text = serde_json::to_string_pretty(&plan).context("printing the plan")?;
        println!("{text}");
        return Ok(());
    }
    if plan.target.kubernetes.is_none() {
        return Err(Failure::Input(anyhow::anyhow!(
            "{}: --objects shows what a Kubernetes deploy applies, and this plan's target is not `driver: kubernetes`",
            path.display()
        )));
    }
    let mut steps = Vec::new();
    let mut refused = 0;
    for step in &plan.steps {
        let StepAction::Deploy(spec) = &step.action else {
            continue;
        };
        let run = cutover_activities::kube_dry_run(&plan.service, &plan.version, spec)
            .await
            .map_err(|e| Failure::Input(anyhow::anyhow!("step `{}`: {e}", step.name)))?;
        if let Some(why) = &run.unchecked {
            eprintln!(
                "step `{}`: the API server did not check these objects ({why}); they are shown as rendered",
                step.name
            );
        }
        for o in run.objects.iter().filter(|o| o.refused.is_some()) {
            refused += 1;
            eprintln!(
                "step `{}`: the API server refuses {}: {}",
                step.name,
                o.object,
                o.refused.as_deref().unwrap_or_default()
            );
        }
        steps.push(serde_json::json!({ "step": step.name, "dry_run": run }));
    }
    let text = serde_json::to_string_pretty(&steps).context("printing the objects")?;
    println!("{text}");
    if refused > 0 {
        return Err(Failure::Failed(anyhow::anyhow!(
            "{refused} object{} refused by the API server; nothing was applied",
            if refused == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}
