//! The worker's settings: flags, each with an environment variable, validated before use.

use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Runs Cutover's rollout workflows and their activities.
///
/// Connection settings come from Temporal's standard environment configuration
/// (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS variables, temporal.toml
/// profiles); with nothing set the worker connects to 127.0.0.1:7233.
#[derive(Debug, Parser)]
#[command(name = "cutover-worker", version)]
pub(crate) struct Config {
    /// Task queue to poll.
    #[arg(long, env = "CUTOVER_TASK_QUEUE", default_value = cutover_workflows::DEFAULT_TASK_QUEUE)]
    pub(crate) task_queue: String,

    /// Run as the agent of host NAME, on that machine: poll task queue `cutover-host-NAME` and
    /// run only the activities that act on this machine (processes, nginx, data directories,
    /// steps marked `on: host`) for plans whose `target.host` is NAME. No workflows run here;
    /// orchestrating workers (without --host) run them anywhere.
    #[arg(long, env = "CUTOVER_HOST", value_parser = parse_host, conflicts_with = "task_queue")]
    pub(crate) host: Option<String>,

    /// Besides running workflows and activities on --task-queue, also be the agent of host
    /// NAME (this machine): one process for a single machine that plans may name as their
    /// `target.host`. `cutover dev up` starts its worker so, named after the machine.
    #[arg(long, env = "CUTOVER_ALSO_HOST", value_parser = parse_host, conflicts_with = "host")]
    pub(crate) also_host: Option<String>,

    /// Temporal address (host:port), overriding the environment configuration.
    #[arg(long, env = "CUTOVER_TEMPORAL_ADDRESS")]
    pub(crate) address: Option<String>,

    /// Temporal namespace, overriding the environment configuration.
    #[arg(long)]
    pub(crate) namespace: Option<String>,

    /// temporal.toml profile to use.
    #[arg(long, env = "TEMPORAL_PROFILE")]
    pub(crate) profile: Option<String>,

    /// Most activities (build, command, verify steps) run at once by this worker.
    #[arg(long, env = "CUTOVER_MAX_CONCURRENT_ACTIVITIES", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) max_concurrent_activities: u32,

    /// Most workflow tasks processed at once by this worker.
    #[arg(long, env = "CUTOVER_MAX_CONCURRENT_WORKFLOW_TASKS", default_value_t = 50, value_parser = clap::value_parser!(u32).range(2..=10_000))]
    pub(crate) max_concurrent_workflow_tasks: u32,

    /// On SIGTERM/SIGINT, how long running activities may take to finish before they are
    /// cancelled (their process groups killed).
    #[arg(long, env = "CUTOVER_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub(crate) shutdown_grace: Duration,

    /// How long a workflow task waits on this worker's own (sticky) queue before any worker
    /// may take it. After a crash, the dead worker's rollouts are stuck this long (on top of
    /// their heartbeat timeout), and so are `status` queries; on a busy worker, a shorter wait
    /// sends more tasks elsewhere, to be replayed from history. Temporal's default is 10s.
    #[arg(long, env = "CUTOVER_STICKY_TIMEOUT", default_value = "1s", value_parser = parse_sticky)]
    pub(crate) sticky_timeout: Duration,

    /// Log format.
    #[arg(long, env = "CUTOVER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub(crate) log_format: LogFormat,

    /// The ledger that release records are written to: `sqlite://PATH` or a PostgreSQL URL.
    /// Default: a PostgreSQL `DATABASE_URL` if set, else `sqlite://.cutover/ledger.db`.
    #[arg(long, env = "CUTOVER_LEDGER_URL", hide_env_values = true)]
    pub(crate) ledger: Option<String>,

    /// Worker identity shown in Temporal (default: pid@hostname).
    #[arg(long, env = "CUTOVER_WORKER_IDENTITY")]
    pub(crate) identity: Option<String>,

    /// Serve health probes on this address: `GET /healthz` (alive) and `GET /readyz`
    /// (connected to Temporal and polling; 503 while starting or draining). Off by default.
    #[arg(long, env = "CUTOVER_HEALTH_LISTEN", value_name = "ADDR:PORT")]
    pub(crate) health_listen: Option<std::net::SocketAddr>,

    /// Serve Prometheus metrics on this address (`GET /metrics`, text format): the Temporal
    /// SDK's worker metrics (`temporal_*`) and Cutover's own (`cutover_*`: rollouts, steps,
    /// approvals, analyses, drills' RTO/RPO, lock waits, ledger writes). Off by default.
    #[arg(long, env = "CUTOVER_METRICS_LISTEN", value_name = "ADDR:PORT")]
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,

    /// Public keys of the `cutover serve` receivers whose identity assertions this worker's
    /// rollouts accept: 64 hex digits, or a file holding a PEM `PUBLIC KEY` (`cutover auth
    /// keygen` prints both). Repeat, or separate with commas, to rotate keys. Plans that say
    /// who may act (`approvers:`, `controls:`, `separation:`) refuse every action without one.
    #[arg(long = "assertion-public-key", env = "CUTOVER_ASSERTION_PUBLIC_KEYS", value_delimiter = ',', value_parser = parse_public_key, value_name = "HEX|FILE")]
    pub(crate) assertion_public_keys: Vec<ed25519_dalek::VerifyingKey>,
}

fn parse_public_key(text: &str) -> Result<ed25519_dalek::VerifyingKey, String> {
    let text = text.trim();
    if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        return cutover_workflows::guard::parse_verifying_key(text);
    }
    let pem = std::fs::read_to_string(text)
        .map_err(|e| format!("neither 64 hex digits nor a readable key file ({text}: {e})"))?;
    cutover_workflows::guard::parse_verifying_key(&pem).map_err(|e| format!("{text}: {e}"))
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line, for log shippers.
    Json,
}

impl From<LogFormat> for cutover_client::telemetry::LogFormat {
    fn from(format: LogFormat) -> Self {
        match format {
            LogFormat::Human => Self::Human,
            LogFormat::Json => Self::Json,
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration such as 30s or 2m: {e}"))
}

/// A host name follows the rules of every other name (it ends up in a task queue).
fn parse_host(text: &str) -> Result<String, String> {
    cutover_workflows::name::Name::parse(text)
        .map(|n| n.as_str().to_owned())
        .map_err(|e| format!("bad host name: {e}"))
}

/// A sticky timeout: 200ms to 1h (Temporal refuses zero).
fn parse_sticky(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(200) || d > Duration::from_secs(3600) {
        return Err(format!("{text} is out of range: give 200ms to 1h"));
    }
    Ok(d)
}
