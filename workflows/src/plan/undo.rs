//! `cutover rollout undo`: the plan that takes a service back to an earlier successful
//! release — its instances and traffic (the release's own deploy steps, run again), then its
//! schema (each migrate step turned into `direction: down` to the version that release left),
//! then its verify steps. Builds, provisioning, commands, approvals, bakes and analyses are left
//! out: an undo is the way back, not a release.
//!
//! Deploys come before migrations go down: with expand-and-contract migrations (the only kind a
//! rollback can rely on), the earlier version runs against the newer schema, while the newer
//! version may not run against the older one.

use std::collections::BTreeMap;

use super::{Direction, Plan, StepAction};

/// The undo of a service to `target`, the plan of the release to return to. `schema` gives,
/// by migrate step name, the version that release left its database at (steps it did not
/// report are refused, saying so in the error).
///
/// # Errors
/// The target plan has nothing an undo can run again, or a migrate step's version is unknown.
pub fn undo_plan(target: &Plan, schema: &BTreeMap<String, i64>) -> Result<Plan, String> {
    let mut deploys = Vec::new();
    let mut migrations = Vec::new();
    let mut checks = Vec::new();
    for step in &target.steps {
        match &step.action {
            StepAction::Deploy(_) | StepAction::Rollback(_) => deploys.push(step.clone()),
            StepAction::Migrate(m) if !m.dry_run => {
                let Some(version) = schema.get(&step.name) else {
                    return Err(format!(
                        "the schema version release {} left through step `{}` is unknown (its status did not report it); revert it by hand with a `direction: down` migrate step",
                        target.version, step.name
                    ));
                };
                let mut down = step.clone();
                let mut spec = m.clone();
                spec.direction = Direction::Down;
                spec.target_version = Some(*version);
                down.action = StepAction::Migrate(spec);
                down.name = format!("{}-down", step.name);
                down.undo = None;
                migrations.push(down);
            }
            StepAction::Verify(_) => checks.push(step.clone()),
            _ => {}
        }
    }
    if deploys.is_empty() && migrations.is_empty() {
        return Err(format!(
            "release {} of {} in {} has no deploy or migrate step to run again",
            target.version, target.service, target.environment
        ));
    }
    let mut plan = target.clone();
    plan.steps = deploys
        .into_iter()
        .chain(migrations)
        .chain(checks)
        .collect();
    plan.trigger = None;
    plan.freeze_override = None;
    // The way back is not held by the release's own freeze windows: they exist to stop
    // changes, and an undo restores what ran before the change.
    plan.freeze.clear();
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanLimits, parse_plan};

    const PLAN: &str = r#"
service: shop
environment: prod
version: "1.0.0"
steps:
  - { name: build, kind: build, command: make, artifact: app }
  - { name: migrate, kind: migrate, database_url: { env: DB }, directory: migrations }
  - { name: deploy, kind: deploy, root: /srv, strategy: blue-green, start: { command: ./app }, base_port: 18100, listen: 18080 }
  - { name: hold, kind: approval }
  - { name: smoke, kind: verify, url: "http://127.0.0.1:18080/health" }
"#;

    #[test]
    fn an_undo_redeploys_then_migrates_down_then_checks() {
        let target = parse_plan(PLAN, PlanLimits::default()).expect("valid");
        let schema = BTreeMap::from([("migrate".to_owned(), 1)]);
        let undo = undo_plan(&target, &schema).expect("an undo");
        let names: Vec<&str> = undo.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["deploy", "migrate-down", "smoke"]);
        let StepAction::Migrate(m) = &undo.steps[1].action else {
            panic!("a migrate step")
        };
        assert_eq!((m.direction, m.target_version), (Direction::Down, Some(1)));
        assert_eq!(undo.version, "1.0.0");
        assert!(undo.problems().is_empty(), "{:?}", undo.problems());
    }

    #[test]
    fn an_unknown_schema_version_is_refused_not_guessed() {
        let target = parse_plan(PLAN, PlanLimits::default()).expect("valid");
        let err = undo_plan(&target, &BTreeMap::new()).expect_err("refused");
        assert!(err.contains("step `migrate`"), "{err}");
    }
}
