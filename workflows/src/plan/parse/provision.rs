//! Parsing `provision` steps: the release layout, the database and role, the env file.

use std::collections::BTreeMap;

use super::{Cx, Fields, join, truncate};
use crate::plan::types::{DatabaseProvision, ProvisionSpec};
use crate::plan::yaml::Node;

impl Cx {
    pub(super) fn provision(&mut self, fields: &Fields<'_>, path: &str) -> Option<ProvisionSpec> {
        let root = self.path_value(
            fields,
            "root",
            path,
            "give the release root, e.g. `root: /srv/releases`",
        );
        let database = match fields.get("database") {
            Some(n) => self.database(n, &join(path, "database")).map(Some),
            None => Some(None),
        };
        let env_file = match fields.get("env_file") {
            Some(n) => self.secret_env(n, &join(path, "env_file")),
            None => Some(BTreeMap::new()),
        };
        Some(ProvisionSpec {
            root: root?,
            database: database?,
            env_file: env_file?,
            kubernetes: None,
        })
    }

    pub(super) fn database(&mut self, node: &Node, path: &str) -> Option<DatabaseProvision> {
        let fields = self.fields(node, path)?;
        self.unknown_keys(&fields, &["admin_url", "name", "owner", "owner_password"]);
        let admin_url = self
            .required(
                &fields,
                "admin_url",
                "reference a superuser connection string, e.g. `admin_url: { env: PG_ADMIN_URL }`",
            )
            .and_then(|n| self.secret_ref(n, &join(path, "admin_url")));
        let name = self
            .required(&fields, "name", "name the database")
            .and_then(|n| self.sql_identifier(n, &join(path, "name")));
        let owner = self
            .required(&fields, "owner", "name the owning role")
            .and_then(|n| self.sql_identifier(n, &join(path, "owner")));
        let owner_password = match fields.get("owner_password") {
            Some(n) => self.secret_ref(n, &join(path, "owner_password")).map(Some),
            None => Some(None),
        };
        Some(DatabaseProvision {
            admin_url: admin_url?,
            name: name?,
            owner: owner?,
            owner_password: owner_password?,
        })
    }

    /// Database and role names: plain lowercase identifiers, so no quoting surprises.
    pub(super) fn sql_identifier(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.string(node, path)?;
        let ok = !text.is_empty()
            && text.len() <= 63
            && text.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            self.report(
                node,
                path,
                format!("`{}` is not a plain SQL identifier", truncate(&text)),
                "use 1 to 63 lowercase letters, digits and `_`, starting with a letter or `_`",
            );
            return None;
        }
        Some(text)
    }
}
