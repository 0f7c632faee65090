//! The command line, as clap sees it. Validation beyond clap's happens in each command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Cutover runs releases as durable Temporal workflows.
///
/// Connection settings come from Temporal's standard environment configuration
/// (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS variables, temporal.toml
/// profiles). With nothing set, Cutover talks to 127.0.0.1:7233, where `cutover dev up`
/// starts the embedded default.
///
/// Exit codes: 0 success, 1 the operation failed (e.g. the rollout failed), 2 bad usage or
/// input (e.g. an invalid plan).
#[derive(Debug, Parser)]
#[command(name = "cutover", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command understands.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Temporal address (host:port), overriding the environment configuration.
    #[arg(long, global = true, env = "CUTOVER_TEMPORAL_ADDRESS")]
    pub(crate) address: Option<String>,
    /// Temporal namespace, overriding the environment configuration.
    #[arg(long, global = true)]
    pub(crate) namespace: Option<String>,
    /// temporal.toml profile.
    #[arg(long, global = true, env = "TEMPORAL_PROFILE")]
    pub(crate) profile: Option<String>,
    /// Task queue workers poll.
    #[arg(long, global = true, env = "CUTOVER_TASK_QUEUE", default_value = cutover_workflows::DEFAULT_TASK_QUEUE)]
    pub(crate) task_queue: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check and print plans. Nothing is started.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Start, follow and control rollouts.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// The embedded default: a Temporal dev server and a worker on this machine.
    #[command(subcommand)]
    Dev(DevCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum PlanCommand {
    /// Report every problem in a plan, each with file:line:column and a hint. Exit 2 if any.
    Validate {
        /// The plan file.
        file: PathBuf,
    },
    /// Print the plan with every default filled in (JSON, itself a valid plan).
    Show {
        /// The plan file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RolloutCommand {
    /// Start a rollout of a plan. Refused while one of the same service/environment runs.
    Start {
        /// The plan file.
        plan: PathBuf,
        /// Follow the rollout until it ends; exit 0 if it succeeded, 1 if not.
        #[arg(long)]
        wait: bool,
    },
    /// Print a rollout's state and every step's attempts, times and last error.
    Status {
        /// `rollout/<service>/<environment>` (the `rollout/` prefix may be left out).
        id: String,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Print the timeline of a rollout: steps, attempts and every human action, in order.
    History {
        /// `rollout/<service>/<environment>`.
        id: String,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Follow a rollout live until it ends; exit 0 if it succeeded, 1 if not.
    Watch {
        /// `rollout/<service>/<environment>`.
        id: String,
    },
    /// List rollouts, newest first.
    List {
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// Only this environment.
        #[arg(long)]
        environment: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        limit: u32,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Approve the approval step that is waiting (update: refused with the reason if none is).
    Approve {
        /// `rollout/<service>/<environment>`.
        id: String,
        /// Who approves (default: $USER).
        #[arg(long, env = "USER")]
        approver: String,
        /// A comment, recorded with the approval.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Pause: the rollout stops before its next step and a running bake's clock stops.
    Pause {
        /// `rollout/<service>/<environment>`.
        id: String,
        /// Why, recorded in the status.
        #[arg(long, default_value = "paused from the CLI")]
        reason: String,
        /// Who (default: $USER).
        #[arg(long, env = "USER")]
        by: String,
    },
    /// Resume a paused rollout where it stopped.
    Resume {
        /// `rollout/<service>/<environment>`.
        id: String,
        /// Who (default: $USER).
        #[arg(long, env = "USER")]
        by: String,
    },
    /// End the running bake or canary hold now and go on (update: refused if none runs).
    Promote {
        /// `rollout/<service>/<environment>`.
        id: String,
        /// Who (default: $USER).
        #[arg(long, env = "USER")]
        by: String,
    },
    /// Abort: stop at the next checkpoint and undo what the rollout did (traffic back,
    /// reversible migrations reverted unless past a point of no return).
    Abort {
        /// `rollout/<service>/<environment>`.
        id: String,
        /// Why, recorded in the status.
        #[arg(long, default_value = "aborted from the CLI")]
        reason: String,
        /// Who (default: $USER).
        #[arg(long, env = "USER")]
        by: String,
    },
    /// Re-run the failed step that `on_failure: pause` is holding, after a manual fix.
    Retry {
        /// `rollout/<service>/<environment>`.
        id: String,
        /// Who (default: $USER).
        #[arg(long, env = "USER")]
        by: String,
    },
    /// Cancel a running rollout: the running step is stopped (its processes killed).
    Cancel {
        /// `rollout/<service>/<environment>`.
        id: String,
        /// Why, recorded in the rollout's status.
        #[arg(long, default_value = "cancelled from the CLI")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DevCommand {
    /// Start the dev server (state in .cutover/temporal.db, UI on :8233) and a worker.
    Up {
        /// Where state and logs live.
        #[arg(long, env = "CUTOVER_HOME", default_value = ".cutover")]
        home: PathBuf,
        /// Start the server without its web UI.
        #[arg(long)]
        headless: bool,
    },
    /// Stop the worker and the dev server. State is kept for the next `up`.
    Down {
        /// Where state and logs live.
        #[arg(long, env = "CUTOVER_HOME", default_value = ".cutover")]
        home: PathBuf,
    },
}

/// `--output`.
#[derive(Debug, Args)]
pub(crate) struct OutputArg {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Human)]
    pub(crate) output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// For people.
    Human,
    /// For programs.
    Json,
}
