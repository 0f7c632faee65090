//! Parsing release files: several services' plans (files next to the release file, or
//! inline), their `after:` dependencies, and a shared migration.

use super::{Cx, Document, PlanLimits, join, parse_document, parse_plan, truncate};
use crate::plan::Diagnostics;
use crate::plan::yaml::{Node, Value};
use crate::release::{MAX_SERVICES, ReleasePlan, ReleaseService};

/// Parses and validates a release. `load` reads a service's plan file named in the release
/// (a path as written, which the caller resolves against the release file's directory).
///
/// # Errors
///
/// [`Diagnostics`] listing each problem with its line, column, path, message and hint; a
/// problem inside a plan file is reported at the `plan:` naming it, with the file's position.
pub fn parse_release(
    text: &str,
    limits: PlanLimits,
    load: &dyn Fn(&str) -> Result<String, String>,
) -> Result<ReleasePlan, Diagnostics> {
    parse_document(
        text,
        Document {
            what: "release",
            max_bytes: limits.max_bytes,
            hint: "move inline plans into files of their own",
        },
        |cx, root| cx.release(root, limits, load),
    )
}

impl Cx {
    fn release(
        &mut self,
        root: &Node,
        limits: PlanLimits,
        load: &dyn Fn(&str) -> Result<String, String>,
    ) -> Option<ReleasePlan> {
        let fields = self.fields(root, "")?;
        self.unknown_keys(
            &fields,
            &["release", "environment", "version", "migrate", "services"],
        );
        let name = self
            .required(&fields, "release", "name the release, e.g. `release: shop`")
            .and_then(|n| self.name(n, "release", "release name"));
        let environment = self
            .required(
                &fields,
                "environment",
                "say where it is released, e.g. `environment: production`",
            )
            .and_then(|n| self.name(n, "environment", "environment name"));
        let version = match fields.get("version") {
            Some(n) => self.version(n).map(Some),
            None => Some(None),
        };
        let migrate = match fields.get("migrate") {
            Some(n) => self.fields(n, "migrate").and_then(|f| {
                self.unknown_keys(
                    &f,
                    &["database_url", "directory", "dry_run", "target_version"],
                );
                self.migrate(&f, "migrate").map(Some)
            }),
            None => Some(None),
        };
        let services = self
            .required(
                &fields,
                "services",
                "list the services, e.g. `services: [{ plan: api.yaml }, { plan: worker.yaml, after: [api] }]`",
            )
            .and_then(|n| self.services(n, limits, load));
        let (environment, version) = (environment?, version?);
        let mut services = services?;
        // The release says where (and, when it gives one, which version): its plans follow.
        for s in &mut services {
            s.plan.environment = environment.clone();
            if let Some(v) = &version {
                s.plan.version = v.clone();
            }
        }
        let release = ReleasePlan {
            name: name?,
            environment,
            migrate: migrate?,
            services,
        };
        for problem in release.problems() {
            let hint = "each `after` names another service of this release, with no cycle";
            self.report(
                fields.get("services").unwrap_or(root),
                "services",
                problem,
                hint,
            );
        }
        Some(release)
    }

    fn services(
        &mut self,
        node: &Node,
        limits: PlanLimits,
        load: &dyn Fn(&str) -> Result<String, String>,
    ) -> Option<Vec<ReleaseService>> {
        let Value::Sequence(items) = &node.value else {
            self.report(
                node,
                "services",
                format!("expected a list of services, found {}", node.shape()),
                "write one `- plan: FILE` per service",
            );
            return None;
        };
        if items.is_empty() || items.len() > MAX_SERVICES {
            self.report(
                node,
                "services",
                format!("a release of {} services", items.len()),
                &format!("list 1 to {MAX_SERVICES} services"),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("services[{i}]");
            let Some(fields) = self.fields(item, &path) else {
                ok = false;
                continue;
            };
            self.unknown_keys(&fields, &["plan", "after"]);
            let after = match fields.get("after") {
                Some(n) => self.string_list(n, &join(&path, "after")),
                None => Some(Vec::new()),
            };
            let plan = self
                .required(
                    &fields,
                    "plan",
                    "give the service's plan file (`plan: api.yaml`) or the plan itself",
                )
                .and_then(|n| match &n.value {
                    Value::Mapping(_) => self.plan(n, limits),
                    _ => {
                        let file = self.string(n, &join(&path, "plan"))?;
                        self.plan_file(n, &join(&path, "plan"), &file, limits, load)
                    }
                });
            match (after, plan) {
                (Some(after), Some(plan)) => out.push(ReleaseService { after, plan }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The plan in `file`, its problems reported at `node` with their place in that file.
    fn plan_file(
        &mut self,
        node: &Node,
        path: &str,
        file: &str,
        limits: PlanLimits,
        load: &dyn Fn(&str) -> Result<String, String>,
    ) -> Option<crate::plan::Plan> {
        let text = match load(file) {
            Ok(text) => text,
            Err(why) => {
                self.report(
                    node,
                    path,
                    format!("cannot read plan `{}`: {why}", truncate(file)),
                    "give a plan file's path relative to the release file",
                );
                return None;
            }
        };
        match parse_plan(&text, limits) {
            Ok(plan) => Some(plan),
            Err(diagnostics) => {
                for d in diagnostics.0 {
                    self.report(
                        node,
                        path,
                        format!(
                            "{}:{}:{}: {}: {}",
                            truncate(file),
                            d.line,
                            d.column,
                            d.path,
                            d.message
                        ),
                        d.hint.as_deref().unwrap_or(""),
                    );
                }
                None
            }
        }
    }
}
