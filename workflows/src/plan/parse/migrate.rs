//! Parsing `migrate` steps.

use super::{Cx, Fields, join};
use crate::plan::types::{Direction, MigrateSpec};

impl Cx {
    pub(super) fn migrate(&mut self, fields: &Fields<'_>, path: &str) -> Option<MigrateSpec> {
        let database_url = self
            .required(
                fields,
                "database_url",
                "reference the connection string, e.g. `database_url: { env: DATABASE_URL }`",
            )
            .and_then(|n| self.secret_ref(n, &join(path, "database_url")));
        let directory = self.path_value(
            fields,
            "directory",
            path,
            "give the migrations directory, e.g. `directory: migrations`",
        );
        let dry_run = match fields.get("dry_run") {
            Some(n) => self.boolean(n, &join(path, "dry_run")),
            None => Some(false),
        };
        let target_version = match fields.get("target_version") {
            Some(n) => self
                .integer(n, &join(path, "target_version"), 0, i64::MAX as u64)
                .map(|v| Some(v as i64)),
            None => Some(None),
        };
        let direction = match fields.get("direction") {
            Some(n) => match self.string(n, &join(path, "direction")).as_deref() {
                Some("up") => Some(Direction::Up),
                Some("down") => Some(Direction::Down),
                Some(other) => {
                    self.report(
                        n,
                        &join(path, "direction"),
                        format!("unknown direction `{}`", super::truncate(other)),
                        "use `up` (apply) or `down` (revert to `target_version`)",
                    );
                    None
                }
                None => None,
            },
            None => Some(Direction::Up),
        };
        if direction == Some(Direction::Down)
            && target_version == Some(None)
            && let Some(n) = fields.get("direction")
        {
            self.report(
                n,
                &join(path, "direction"),
                "`direction: down` without `target_version`".to_owned(),
                "say which version to revert to, e.g. `target_version: 1` (0 reverts everything)",
            );
            return None;
        }
        if direction == Some(Direction::Down)
            && dry_run == Some(true)
            && let Some(n) = fields.get("dry_run")
        {
            self.report(
                n,
                &join(path, "dry_run"),
                "`dry_run` with `direction: down`".to_owned(),
                "a dry run lists what `up` would apply; remove one of them",
            );
            return None;
        }
        Some(MigrateSpec {
            direction: direction?,
            database_url: database_url?,
            directory: directory?,
            dry_run: dry_run?,
            target_version: target_version?,
        })
    }
}
