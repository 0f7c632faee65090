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
pub struct Cli {
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
    /// What the host driver runs on this machine.
    #[command(subcommand)]
    Host(HostCommand),
    /// Receive CI webhooks (GitHub, GitLab, generic) and start the rollouts their rules name.
    ///
    /// Secrets, one per line (several lines: several active secrets, for rotation):
    /// CUTOVER_GITHUB_SECRET, CUTOVER_GITLAB_TOKEN, CUTOVER_GENERIC_SECRET, or the matching
    /// --*-file flags. They are never logged.
    Serve(Box<ServeArgs>),
    /// Check trigger rules files.
    #[command(subcommand)]
    Triggers(TriggersCommand),
    /// DR drills: PostgreSQL failover and switchover plans.
    #[command(subcommand)]
    Drill(DrillCommand),
    /// Releases of several services: a shared migration, then each service's plan in
    /// dependency order; a failure rolls back the services already released.
    #[command(subcommand)]
    Release(ReleaseCommand),
    /// Read the webhook deliveries recorded in the ledger.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// The host agents (`cutover-worker --host NAME`) seen polling in the last few minutes,
    /// with the task queue each polls and when it last did.
    Agents {
        #[command(flatten)]
        output: OutputArg,
    },
    /// The service locks held now: which rollout or drill holds which service and environment.
    Locks {
        #[command(flatten)]
        output: OutputArg,
    },
    /// List releases recorded in the ledger, newest first.
    Releases {
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// Only this environment.
        #[arg(long)]
        environment: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        last: u32,
        #[command(flatten)]
        ledger: LedgerArg,
        #[command(flatten)]
        output: OutputArg,
    },
    /// The audit trail: every human action on a rollout, accepted or refused, with who, how
    /// they were identified, when and why. Kept in the ledger, so it outlives Temporal's
    /// history.
    Audit {
        #[command(subcommand)]
        command: Option<AuditCommand>,
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// Only actions since: a duration ago (`7d`) or an RFC 3339 time.
        #[arg(long, value_parser = parse_since)]
        since: Option<i64>,
        /// At most this many, the newest.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        last: u32,
        #[command(flatten)]
        ledger: LedgerArg,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Keys and tokens for verified identities (`cutover serve --access`).
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Print a shell completion script: `source <(cutover completions bash)`, or save it
    /// where your shell loads completions from.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// `cutover audit verify`.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Recompute the audit trail's hash chain: exit 0 if intact, 1 naming the first row that
    /// was changed, removed or reordered.
    Verify {
        #[command(flatten)]
        ledger: LedgerArg,
    },
}

/// `cutover auth`.
#[derive(Debug, Subcommand)]
pub(crate) enum AuthCommand {
    /// Make the receiver's assertion signing key: writes the private key (PEM, mode 0600) to
    /// PATH and prints the public key for workers' `--assertion-public-key`.
    Keygen {
        /// Where to write the private key; refuses to overwrite.
        path: PathBuf,
    },
    /// Make an API token for a person: prints the token (give it to them) and the line for
    /// the tokens file (only the hash is stored).
    Token,
}

/// An RFC 3339 time or a duration ago, as Unix milliseconds.
fn parse_since(text: &str) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    let d = humantime::parse_duration(text).map_err(|_| {
        format!("`{text}` is neither a duration (`7d`, `12h`) nor an RFC 3339 time")
    })?;
    let ago = chrono::Duration::from_std(d).map_err(|_| format!("`{text}` is too long ago"))?;
    Ok((chrono::Utc::now() - ago).timestamp_millis())
}

/// What `rollout wait` waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum WaitFor {
    /// An approval step is waiting for people.
    Approval,
    /// The rollout is paused.
    Paused,
    /// The rollout ended and succeeded.
    Done,
}

/// `--via` and the token it uses.
#[derive(Debug, Args)]
pub(crate) struct ViaArgs {
    /// Act through a `cutover serve` receiver (URL of the receiver, e.g.
    /// `https://cutover.example.com`) with a verified identity, as plans that say who may act
    /// require. The token comes from CUTOVER_TOKEN or --token-file.
    #[arg(long, value_name = "URL")]
    pub(crate) via: Option<String>,
    /// A file holding the API token or OIDC token for --via.
    #[arg(long, requires = "via")]
    pub(crate) token_file: Option<PathBuf>,
}

/// `--ledger`.
#[derive(Debug, Args)]
pub(crate) struct LedgerArg {
    /// The ledger: `sqlite://PATH` or a PostgreSQL URL. Default: a PostgreSQL DATABASE_URL if
    /// set, else sqlite://.cutover/ledger.db.
    #[arg(long, env = "CUTOVER_LEDGER_URL", hide_env_values = true)]
    pub(crate) ledger: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CUTOVER_LISTEN", default_value = "127.0.0.1:8088")]
    pub(crate) listen: std::net::SocketAddr,
    /// The trigger rules file.
    #[arg(long, env = "CUTOVER_TRIGGERS")]
    pub(crate) rules: PathBuf,
    /// The ledger: `sqlite://PATH` or a PostgreSQL URL. Default: a PostgreSQL DATABASE_URL if
    /// set, else sqlite://.cutover/ledger.db.
    #[arg(long, env = "CUTOVER_LEDGER_URL", hide_env_values = true)]
    pub(crate) ledger: Option<String>,
    /// Largest body accepted (e.g. 1MiB, 512KiB, 65536); larger ones get 413 unread.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub(crate) max_body: ByteSize,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// File of GitHub webhook secrets, one per line (adds to CUTOVER_GITHUB_SECRET).
    #[arg(long)]
    pub(crate) github_secret_file: Option<PathBuf>,
    /// File of GitLab secret tokens, one per line (adds to CUTOVER_GITLAB_TOKEN).
    #[arg(long)]
    pub(crate) gitlab_token_file: Option<PathBuf>,
    /// File of generic HMAC secrets, one per line (adds to CUTOVER_GENERIC_SECRET).
    #[arg(long)]
    pub(crate) generic_secret_file: Option<PathBuf>,
    /// Generic provider: header with `sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>").
    #[arg(long, default_value = "X-Cutover-Signature")]
    pub(crate) generic_signature_header: String,
    /// Generic provider: header with the Unix time (seconds) the sender signed at.
    #[arg(long, default_value = "X-Cutover-Timestamp")]
    pub(crate) generic_timestamp_header: String,
    /// Generic provider: header with the delivery ID.
    #[arg(long, default_value = "X-Cutover-Delivery")]
    pub(crate) generic_delivery_header: String,
    /// Generic provider: how far the timestamp may be from now (replays outside are refused).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub(crate) generic_tolerance: std::time::Duration,
    /// Webhook deliveries and drill rows older than this are deleted from the ledger, at
    /// startup and daily (release records are kept). At least 1h.
    /// People acting on rollouts through `POST /rollouts/SERVICE/ENVIRONMENT/ACTION`: the
    /// signing key, API tokens and/or OIDC issuer (see the README's "Approvals and audit").
    /// Without it those endpoints answer 503.
    #[arg(long, env = "CUTOVER_ACCESS")]
    pub access: Option<PathBuf>,
    #[arg(long, env = "CUTOVER_RETENTION", default_value = "90days", value_parser = parse_retention)]
    pub(crate) retention: std::time::Duration,
}

fn parse_retention(text: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(text)?;
    if d < std::time::Duration::from_secs(3600) {
        return Err(format!(
            "`{text}` is under 1h; keep deliveries at least an hour"
        ));
    }
    Ok(d)
}

/// A size in bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ByteSize(pub(crate) usize);

fn parse_size(text: &str) -> Result<ByteSize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size: write e.g. 1MiB, 512KiB or 65536"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1024,
        "MiB" | "M" => 1024 * 1024,
        other => return Err(format!("unknown unit `{other}`: use B, KiB or MiB")),
    };
    let bytes = n.saturating_mul(factor);
    if !(1..=64 * 1024 * 1024).contains(&bytes) {
        return Err(format!("{text} is out of range: use 1 byte to 64MiB"));
    }
    Ok(ByteSize(bytes))
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration: {e}"))
}

#[derive(Debug, Subcommand)]
pub(crate) enum TriggersCommand {
    /// Report every problem in a rules file (and in the plans it names), each with
    /// file:line:column and a hint. Exit 2 if any.
    Validate {
        /// The rules file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReleaseCommand {
    /// Report every problem in a release file and the plans it names, each with
    /// file:line:column and a hint. Exit 2 if any.
    Validate {
        /// The release file.
        file: PathBuf,
    },
    /// Start a release: `release/<name>/<environment>`, each service as its own rollout.
    Start {
        /// The release file; the plan files it names are read relative to it.
        file: PathBuf,
        /// Wait for the end and print the release; exit 0 if every service was released.
        #[arg(long)]
        wait: bool,
    },
    /// Follow the release's tree until it ends (redrawn in place on a terminal); exit 0 if
    /// every service was released, 1 if not.
    Watch {
        /// The release's name.
        name: String,
        /// Its environment.
        #[arg(long, short = 'e')]
        environment: String,
    },
    /// The release as a tree: the migration, each service, and each service's steps.
    Status {
        /// The release's name.
        name: String,
        /// Its environment.
        #[arg(long, short = 'e')]
        environment: String,
        #[command(flatten)]
        output: OutputArg,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DrillCommand {
    /// Report every problem in a drill plan, each with file:line:column and a hint. Exit 2 if
    /// any.
    Validate {
        /// The drill plan.
        file: PathBuf,
    },
    /// Run a drill now: lock, preflight, mark, fault, promote, switch, verify, measure,
    /// failback (and switch back if the plan asks).
    Run {
        /// The drill plan.
        plan: PathBuf,
        /// Wait for the end and print each phase, RTO and RPO; exit 0 if the objectives were
        /// met, 1 if not or if the drill failed.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Drills on a calendar (Temporal Schedules): create, list, describe, pause, unpause,
    /// trigger, delete.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Drill evidence from the ledger: phases, RTO/RPO against the objectives, restorations.
    Report {
        /// At most this many drills, newest first.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        last: u32,
        /// Write an HTML page (phase timelines and the RTO/RPO trend as SVG) to this file.
        #[arg(long)]
        html: Option<PathBuf>,
        #[command(flatten)]
        ledger: LedgerArg,
        #[command(flatten)]
        output: OutputArg,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Create a schedule that runs the plan (validated first). A run still going when the
    /// next is due makes that one skipped; a run missed by more than the catch-up window (the
    /// server was down) is not started late.
    Create {
        /// The schedule's name (its Temporal schedule ID).
        #[arg(value_parser = parse_schedule_name)]
        name: String,
        /// When, as a cron expression in the time zone: `0 3 * * 1` (Mondays 03:00), or
        /// `@every 168h`.
        #[arg(long, value_parser = parse_cron)]
        cron: String,
        /// The drill plan (`drill schedule`) or rollout plan (`rollout schedule`).
        plan: PathBuf,
        /// IANA time zone of the cron expression.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// How late a missed run may still start (at least 10s).
        #[arg(long, default_value = "1h", value_parser = parse_catchup_window)]
        catchup_window: std::time::Duration,
        /// Create it paused.
        #[arg(long)]
        paused: bool,
        /// Rollout schedules: when a rollout of the service and environment is running at the
        /// scheduled time, `reject` (the run does not start, and says so), `queue_latest` or
        /// `supersede` (see `rollout start --on-busy`). Drills always skip.
        #[arg(long, value_name = "reject|queue_latest|supersede", default_value = "reject", value_parser = on_busy)]
        on_busy: cutover_workflows::queue::OnBusy,
    },
    /// The schedules: name, paused or not, next run, last run.
    List {
        #[command(flatten)]
        output: OutputArg,
    },
    /// One schedule: what it starts, specification, state, next runs and recent runs.
    Describe {
        /// The schedule's name.
        #[arg(value_parser = parse_schedule_name)]
        name: String,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Stop starting runs until unpaused (a running drill or rollout goes on).
    Pause {
        /// The schedule's name.
        #[arg(value_parser = parse_schedule_name)]
        name: String,
        /// Why, kept on the schedule.
        #[arg(long, default_value = "paused with cutover")]
        note: String,
    },
    /// Start runs again at the next scheduled time.
    Unpause {
        /// The schedule's name.
        #[arg(value_parser = parse_schedule_name)]
        name: String,
    },
    /// Start a run now (skipped if one is running).
    Trigger {
        /// The schedule's name.
        #[arg(value_parser = parse_schedule_name)]
        name: String,
    },
    /// Delete the schedule (a running drill or rollout goes on).
    Delete {
        /// The schedule's name.
        #[arg(value_parser = parse_schedule_name)]
        name: String,
    },
}

/// Schedule names end up in IDs and URLs: the rules of plan names.
fn parse_schedule_name(text: &str) -> Result<String, String> {
    cutover_workflows::name::Name::parse(text)
        .map(String::from)
        .map_err(|e| {
            format!(
                "`{}` is not a schedule name ({e})",
                text.chars().take(40).collect::<String>()
            )
        })
}

/// The shape only; the server checks the fields (and says which one is wrong).
fn parse_cron(text: &str) -> Result<String, String> {
    let fields = text.split_whitespace().count();
    if text.len() > 200 || text.chars().any(char::is_control) {
        return Err("a cron expression is one line of at most 200 characters".to_owned());
    }
    if text.starts_with('@') || (5..=7).contains(&fields) {
        Ok(text.trim().to_owned())
    } else {
        Err(format!(
            "`{text}` has {fields} fields: write 5 (`0 3 * * 1` = Mondays 03:00), or `@every 168h`"
        ))
    }
}

fn parse_catchup_window(text: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(text)?;
    if d < std::time::Duration::from_secs(10) {
        return Err(format!(
            "`{text}` is under 10s, the shortest catch-up window Temporal takes"
        ));
    }
    Ok(d)
}

#[derive(Debug, Subcommand)]
pub(crate) enum WebhooksCommand {
    /// The latest deliveries, newest first: accepted, duplicate, ignored and refused.
    Deliveries {
        /// At most this many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        last: u32,
        /// Only deliveries claimed over a minute ago and still `starting`: their receiver
        /// stopped before recording whether it started the rollout. `cutover serve` resolves
        /// them when it starts.
        #[arg(long)]
        stuck: bool,
        #[command(flatten)]
        ledger: LedgerArg,
        #[command(flatten)]
        output: OutputArg,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PlanCommand {
    /// Report every problem in a plan, each with file:line:column and a hint. Exit 2 if any.
    Validate {
        /// The plan file.
        file: PathBuf,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Print the plan with every default filled in (JSON, itself a valid plan).
    Show {
        /// The plan file.
        file: PathBuf,
        /// Kubernetes plans: print instead the objects each deploy step would apply for the
        /// plan's version, passed through the API server as a server-side apply dry run
        /// (`dryRun=All`: defaults, admission and RBAC checked, nothing changed) when the
        /// target's cluster answers. Exit 1 if the API server refuses an object.
        #[arg(long)]
        objects: bool,
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
        /// Set a variable the plan declares under `vars:` (repeat for several). Values enter
        /// the rollout's history: never pass a secret this way.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// While a rollout of the service and environment runs: `reject` this start,
        /// `queue_latest` (start when it ends; a newer queued release replaces this one), or
        /// `supersede` (abort it — it rolls back — then start).
        #[arg(long, value_name = "reject|queue_latest|supersede", default_value = "reject", value_parser = on_busy)]
        on_busy: cutover_workflows::queue::OnBusy,
        /// Start even inside one of the plan's freeze windows; the reason is recorded with
        /// your name in the rollout's actions and the audit trail.
        #[arg(long, value_name = "REASON")]
        override_freeze: Option<String>,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Rollouts on a calendar (Temporal Schedules): each run starts `rollout/SERVICE/ENV`
    /// through a queue entry, doing what `--on-busy` says if one is running.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Go back to the previous (or `--to`) successful release, from the ledger: its deploy
    /// steps run again (instances and traffic), then each migrate step goes down to the
    /// schema version it left, then its verify steps; a rollout with its own history.
    Undo {
        /// The service.
        service: String,
        /// The environment.
        environment: String,
        /// The version to return to (a successful release in the ledger); default: the one
        /// before the latest successful release.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Follow the undo until it ends; exit 0 if it succeeded.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        ledger: LedgerArg,
        #[command(flatten)]
        output: OutputArg,
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
    /// Wait until a rollout reaches a point, for scripts: exit 0 when it does, 1 if the
    /// rollout ended otherwise (or the timeout passed), 2 on bad usage.
    Wait {
        /// `rollout/<service>/<environment>`.
        id: String,
        /// `approval`: an approval step waits for people; `paused`: the rollout is paused
        /// (by a person, or holding a failed step); `done`: it ended and succeeded.
        #[arg(long = "for", value_enum)]
        until: WaitFor,
        /// Give up after this long (default: wait as long as it takes).
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
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
        #[arg(long, env = "USER", default_value = "")]
        approver: String,
        /// A comment, recorded with the approval.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        via: ViaArgs,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Refuse the release at the approval step that is waiting: the rollout stops there and
    /// rolls back.
    Refuse {
        /// `rollout/<service>/<environment>`.
        id: String,
        /// Why, recorded in the status and the audit trail.
        #[arg(long)]
        reason: String,
        /// Who (default: $USER).
        #[arg(long, env = "USER", default_value = "")]
        by: String,
        #[command(flatten)]
        via: ViaArgs,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Pause: the rollout stops before its next step and a running bake's clock stops.
    Pause {
        /// `rollout/<service>/<environment>`.
        id: String,
        /// Why, recorded in the status.
        #[arg(long, default_value = "paused from the CLI")]
        reason: String,
        /// Who (default: $USER).
        #[arg(long, env = "USER", default_value = "")]
        by: String,
        #[command(flatten)]
        via: ViaArgs,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Resume a paused rollout where it stopped.
    Resume {
        /// `rollout/<service>/<environment>`.
        id: String,
        /// Who (default: $USER).
        #[arg(long, env = "USER", default_value = "")]
        by: String,
        #[command(flatten)]
        via: ViaArgs,
        #[command(flatten)]
        output: OutputArg,
    },
    /// End the running bake, pause or analysis now and go on: a canary skips to its next gate
    /// (or to 100%). Refused if nothing is waiting.
    Promote {
        /// `rollout/<service>/<environment>`.
        id: String,
        /// Who (default: $USER).
        #[arg(long, env = "USER", default_value = "")]
        by: String,
        /// A canary skips its remaining weights, bakes, pauses and analyses, to 100%; an
        /// approval gate still waits for its people.
        #[arg(long)]
        full: bool,
        #[command(flatten)]
        via: ViaArgs,
        #[command(flatten)]
        output: OutputArg,
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
        #[arg(long, env = "USER", default_value = "")]
        by: String,
        #[command(flatten)]
        via: ViaArgs,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Re-run the failed step that `on_failure: pause` is holding, after a manual fix.
    Retry {
        /// `rollout/<service>/<environment>`.
        id: String,
        /// Who (default: $USER).
        #[arg(long, env = "USER", default_value = "")]
        by: String,
        #[command(flatten)]
        via: ViaArgs,
        #[command(flatten)]
        output: OutputArg,
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
pub(crate) enum HostCommand {
    /// Stop a service's instances and its nginx on this machine (under the deploy lock), and
    /// record that nothing serves it: the next deploy starts from scratch. Run it where the
    /// worker (or the host's agent) runs, from the same directory when the root is relative.
    Stop {
        /// The service.
        service: String,
        /// Its environment: refused if the service's directory belongs to another one.
        environment: Option<String>,
        /// The release root the plans' deploy steps name (`root:`).
        #[arg(long, default_value = ".cutover/releases")]
        root: PathBuf,
        /// How long an instance has to exit after SIGTERM before SIGKILL.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DevCommand {
    /// Start the dev server (state in .cutover/temporal.db, UI on :8233) and a worker.
    ///
    /// The server gets history.transferProcessorMaxPollRPS=200 and
    /// history.timerProcessorMaxPollRPS=200: with the default 20, steps run back to back wait
    /// ~50 ms each for the server's next queue read.
    Up {
        /// Where state and logs live.
        #[arg(long, env = "CUTOVER_HOME", default_value = ".cutover")]
        home: PathBuf,
        /// Start the server without its web UI.
        #[arg(long)]
        headless: bool,
        /// The web UI's port (when 8233 is taken, or several dev servers run side by side).
        #[arg(long, env = "CUTOVER_UI_PORT", default_value_t = 8233, value_parser = clap::value_parser!(u16).range(1..), conflicts_with = "headless")]
        ui_port: u16,
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

/// `--on-busy`.
fn on_busy(text: &str) -> Result<cutover_workflows::queue::OnBusy, String> {
    cutover_workflows::queue::OnBusy::parse(text)
}

#[cfg(test)]
mod tests {
    use super::{parse_catchup_window, parse_cron, parse_schedule_name};

    #[test]
    fn schedule_names_are_plain() {
        assert!(parse_schedule_name("weekly-db.1").is_ok());
        for bad in [
            "",
            "Weekly",
            "../x",
            "a b",
            "-x",
            &"a".repeat(64),
            "a\nb",
            "ä",
        ] {
            let err = parse_schedule_name(bad).expect_err(bad);
            assert!(err.contains("is not a schedule name"), "{err}");
        }
    }

    #[test]
    fn cron_expressions_have_a_shape() {
        assert_eq!(parse_cron(" 0 3 * * 1 ").as_deref(), Ok("0 3 * * 1"));
        assert!(parse_cron("@every 168h").is_ok());
        assert!(
            parse_cron("0 3 * *")
                .expect_err("4")
                .contains("has 4 fields")
        );
        assert!(
            parse_cron("0 3 * * 1\n0 4 * * 1")
                .expect_err("newline")
                .contains("one line")
        );
        assert!(
            parse_cron(&"1 ".repeat(150))
                .expect_err("long")
                .contains("200 characters")
        );
    }

    #[test]
    fn a_catchup_window_is_at_least_10s() {
        assert!(parse_catchup_window("1h").is_ok());
        assert!(
            parse_catchup_window("9s")
                .expect_err("short")
                .contains("under 10s")
        );
        assert!(
            parse_catchup_window("soon")
                .expect_err("bad")
                .contains("is not a duration")
        );
    }
}
