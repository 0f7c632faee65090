//! Contracts of the database steps: `postgres.migrate`, `postgres.undo_migrations`,
//! `provision.apply`.

use serde::{Deserialize, Serialize};

use super::StepRef;
use crate::plan::{Driver, MigrateSpec, ProvisionSpec, SecretRef};

/// Input of `postgres.migrate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MigrateInput {
    /// Who runs it.
    pub step: StepRef,
    /// What to apply.
    pub spec: MigrateSpec,
}

/// Output of `postgres.migrate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MigrateOutput {
    /// Applied by this step, in order, with how long each took.
    pub applied: Vec<AppliedMigration>,
    /// On a dry run: what would be applied.
    pub pending: Vec<PendingMigration>,
    /// How many were applied before this step.
    pub already_applied: u32,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// The highest version applied before this step (0: none); what a rollback returns to.
    #[serde(default)]
    pub previous_version: i64,
    /// With `direction: down`: the versions reverted, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reverted: Vec<i64>,
}

/// A migration this step applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppliedMigration {
    /// Its version.
    pub version: i64,
    /// Its description (from the file name).
    pub description: String,
    /// How long it took, as recorded in `_sqlx_migrations`.
    pub duration_ms: f64,
}

/// A migration a dry run would apply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingMigration {
    /// Its version.
    pub version: i64,
    /// Its description.
    pub description: String,
    /// Its file on the worker.
    pub file: String,
}

/// Input of `postgres.undo_migrations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UndoMigrationsInput {
    /// Who runs it.
    pub step: StepRef,
    /// The database.
    pub database_url: SecretRef,
    /// The migrations directory (with `.down.sql` files).
    pub directory: String,
    /// Revert every applied migration newer than this.
    pub target_version: i64,
}

/// Output of `postgres.undo_migrations`: the versions reverted, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UndoMigrationsOutput {
    /// Reverted versions.
    pub reverted: Vec<i64>,
}

/// Input of `provision.apply`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProvisionInput {
    /// Who runs it.
    pub step: StepRef,
    /// The target driver (`host`).
    pub driver: Driver,
    /// The service.
    pub service: String,
    /// The version being released (its release directory is created).
    pub version: String,
    /// What to create.
    pub spec: ProvisionSpec,
}

/// Output of `provision.apply`: what changed; empty when everything was already there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProvisionOutput {
    /// One line per change.
    pub changes: Vec<String>,
}
