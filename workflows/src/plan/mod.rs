//! Rollout plans: the YAML a person writes, and the normalized form a workflow runs.
//!
//! A plan is parsed in two steps, as ripgrep parses its flags: [`yaml`] turns text into a tree
//! of nodes that remember their line and column, then [`parse`] walks that tree, fills in
//! defaults and collects *every* problem it finds as a [`Diagnostic`]. Only a plan with no
//! problems becomes a [`Plan`], and only a [`Plan`] can be started.
//!
//! The normalized [`Plan`] is the workflow's input, so it is serialized into Temporal history.
//! That is why it holds no secret values: environment variables that carry secrets are
//! [`SecretRef`]s that activities resolve on the worker.

mod diagnostic;
mod fleet;
pub mod freeze;
pub(crate) mod kind;
mod kube;
pub(crate) mod manifests;
pub mod notify;
mod parse;
mod types;
pub mod undo;
pub mod vars;
mod yaml;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use fleet::{Between, Region, Router, WaveSize, Waves};
pub use kind::StepKind;
pub use kube::{
    KINDS, KubeDeploy, KubeJob, KubeProvision, KubeTarget, dns_label, valid_image_version,
};
pub use manifests::{MAX_OBJECTS_BYTES, ManifestError, Source as ManifestSource, attach_manifests};
pub use parse::{PlanLimits, parse_drill, parse_plan, parse_release};

/// The toolkit plans, drill plans and other YAML documents Cutover reads are parsed with:
/// YAML with positions, a size limit, typed readers that report every problem with its line,
/// column, path and a hint, and "did you mean". The CI receiver's trigger rules use it too,
/// so a rules file fails the same way a plan does.
pub mod syntax {
    pub use super::parse::cx::{
        Cx, Document, Fields, closest, join, parse_document, to_json, truncate,
    };
    pub use super::yaml::{Node, Value};
}
pub use types::{
    AnalysisSpec, ApprovalSpec, BakeSpec, BuildSpec, CanaryGate, CanaryStep, CommandSpec, Controls,
    DEFAULT_HOST_WAIT, DatabaseProvision, DeploySpec, Direction, Driver, HealthCheck, HttpProbe,
    JsonExpectation, MetricSource, MetricSpec, MigrateSpec, OnFailure, OnTimeout, Placement, Plan,
    PrometheusQuery, ProvisionSpec, RetryPolicy, RollbackSpec, SecretRef, Separation, SqlQuery,
    Step, StepAction, Strategy, Target, Trigger, TriggerKind, UndoSpec, VerifySpec,
};
