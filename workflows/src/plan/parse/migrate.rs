//! Parsing `migrate` steps.

use super::{Cx, Fields, join};
use crate::plan::types::MigrateSpec;

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
        Some(MigrateSpec {
            database_url: database_url?,
            directory: directory?,
            dry_run: dry_run?,
            target_version: target_version?,
        })
    }
}
