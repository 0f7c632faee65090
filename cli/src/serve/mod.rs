//! `cutover serve`: the HTTP face of Cutover. CI providers post deliveries here; matching
//! ones start rollouts through the same code path as `cutover rollout start`.
//!
//! - `POST /webhooks/github|gitlab|generic` — authenticated, size-limited, deduplicated by
//!   delivery ID ([`deliver`]);
//! - `POST /rollouts/{service}/{environment}/{action}` — people approving, refusing,
//!   promoting, pausing, resuming, aborting, retrying, with a verified identity ([`control`]);
//! - `GET /healthz` — the process is up;
//! - `GET /readyz` — Temporal and the ledger answer;
//! - `GET /metrics` — Prometheus text.
//!
//! The receiver answers as soon as the workflow has started; it never waits for a rollout.

pub(crate) mod access;
pub(crate) mod auth;
mod control;
mod deliver;
#[doc(hidden)]
pub mod fuzzing;
mod housekeeping;
pub(crate) use housekeeping::STUCK_AFTER;
pub(crate) mod events;
mod metrics;
mod recorder;
pub mod rules;
mod rules_parse;
mod secrets;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use cutover_client::ConnectOptions;
use cutover_ledger::Ledger;
use cutover_workflows::plan::Plan;
use rules::{Provider, TriggerRules};
use temporalio_client::Client;
use tokio::sync::Mutex;

use crate::cli::{Global, ServeArgs};
use crate::exit::{Failure, Outcome};

/// Everything a request handler needs.
pub(crate) struct App {
    rules: TriggerRules,
    /// Each rule's plan, loaded and validated at start, by rule name.
    plans: std::collections::BTreeMap<String, Plan>,
    secrets: secrets::ProviderSecrets,
    ledger: Ledger,
    /// Rows of requests that start nothing, written in batches ([`recorder`]).
    recorder: recorder::Recorder,
    temporal: Mutex<Option<Client>>,
    connect: ConnectOptions,
    task_queue: String,
    max_body: usize,
    generic: GenericHeaders,
    metrics: metrics::Metrics,
    /// Ledger rows older than this are deleted (deliveries, drills).
    retention: Duration,
    /// Who may use the control endpoints, and the key that vouches for them.
    access: Option<access::Access>,
}

/// Where the generic provider's signature, timestamp and delivery ID are.
#[derive(Clone, Debug)]
pub(crate) struct GenericHeaders {
    pub(crate) signature: String,
    pub(crate) timestamp: String,
    pub(crate) delivery: String,
    pub(crate) tolerance: Duration,
}

impl App {
    /// The Temporal client, connecting if there is none yet. `None` when Temporal cannot be
    /// reached now (the caller answers 503 with `Retry-After`).
    async fn temporal(&self) -> Option<Client> {
        let mut slot = self.temporal.lock().await;
        if slot.is_none() {
            let connected = tokio::time::timeout(
                Duration::from_secs(3),
                cutover_client::connect(&self.connect),
            )
            .await;
            match connected {
                Ok(Ok(c)) => *slot = Some(c.client),
                Ok(Err(e)) => tracing::warn!(error = %e, "Temporal is unreachable"),
                Err(_) => tracing::warn!("connecting to Temporal timed out"),
            }
        }
        slot.clone()
    }
}

/// A configured receiver: rules and plans validated, secrets loaded, ledger open. Build it
/// with [`Receiver::from_args`] (the flags of `cutover serve`), then [`Receiver::run`] it on a
/// listener until a shutdown future resolves — the CLI passes SIGTERM/SIGINT, tests a channel.
pub struct Receiver {
    app: Arc<App>,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    writer: recorder::Writer,
}

/// `cutover serve`'s flags alone, so [`Receiver::from_args`] parses exactly what the CLI does.
#[derive(clap::Parser)]
#[command(name = "cutover serve")]
struct ServeCommand {
    #[command(flatten)]
    global: Global,
    #[command(flatten)]
    args: ServeArgs,
}

impl Receiver {
    /// Builds a receiver from `cutover serve`'s flags (without the leading `cutover serve`),
    /// e.g. `["--rules", "triggers.yaml", "--ledger", "sqlite://x.db"]`.
    ///
    /// # Errors
    /// Bad flags, rules, plans or secrets (said with what to change), or a ledger that cannot
    /// be opened.
    pub async fn from_args<I, T>(args: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        let argv = std::iter::once(std::ffi::OsString::from("cutover serve"))
            .chain(args.into_iter().map(Into::into));
        let parsed = ServeCommand::try_parse_from(argv)?;
        Self::build(&parsed.global, &parsed.args)
            .await
            .map_err(Failure::into_anyhow)
    }

    async fn build(global: &Global, args: &ServeArgs) -> Result<Self, Failure> {
        let (rules, plans) = load_rules(&args.rules)?;
        let secrets = secrets::ProviderSecrets::load(args)?;
        for rule in &rules.rules {
            if secrets.get(rule.provider).is_empty() {
                return Err(Failure::Input(anyhow!(
                    "rule `{}` uses {} but no {} secret is configured: {}",
                    rule.name,
                    rule.provider.as_str(),
                    rule.provider.as_str(),
                    secrets::how_to_configure(rule.provider)
                )));
            }
        }
        tracing::info!(
            github = secrets.get(Provider::Github).len(),
            gitlab = secrets.get(Provider::Gitlab).len(),
            generic = secrets.get(Provider::Generic).len(),
            "secrets configured"
        );
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .map_err(|e| {
                        Failure::Input(anyhow!(
                            "cannot use TLS certificate {} and key {}: {e}",
                            cert.display(),
                            key.display()
                        ))
                    })?;
                Some(config)
            }
            (None, None) => None,
            _ => {
                return Err(Failure::Input(anyhow!(
                    "TLS needs both --tls-cert and --tls-key"
                )));
            }
        };
        let access = match &args.access {
            Some(path) => Some(access::Access::load(path).await?),
            None => None,
        };
        let cwd = std::env::current_dir().context("reading the working directory")?;
        let ledger_url = Ledger::resolve_url(args.ledger.as_deref(), &cwd);
        let ledger = Ledger::open(&ledger_url)
            .await
            .map_err(|e| Failure::Failed(e.into()))?;
        let connect = ConnectOptions {
            address: global.address.clone(),
            namespace: global.namespace.clone(),
            profile: global.profile.clone(),
            identity: Some(format!("cutover-serve@{}", std::process::id())),
        };
        let (recorder, writer) = recorder::Recorder::start(ledger.clone());
        let app = Arc::new(App {
            rules,
            plans,
            secrets,
            ledger,
            recorder,
            temporal: Mutex::new(None),
            connect,
            task_queue: global.task_queue.clone(),
            max_body: args.max_body.0,
            generic: GenericHeaders {
                signature: args.generic_signature_header.to_ascii_lowercase(),
                timestamp: args.generic_timestamp_header.to_ascii_lowercase(),
                delivery: args.generic_delivery_header.to_ascii_lowercase(),
                tolerance: args.generic_tolerance,
            },
            metrics: metrics::Metrics::new(),
            retention: args.retention,
            access,
        });
        Ok(Self { app, tls, writer })
    }

    /// Serves on `listener` until `shutdown` resolves, then lets open requests finish (up to
    /// 10 s), writes the ledger rows still queued, and closes the ledger.
    ///
    /// # Errors
    /// The listener cannot be used.
    pub async fn run(
        self,
        listener: std::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self { app, tls, writer } = self;
        // Connect now if we can; if not, the first delivery (or /readyz) tries again.
        let _ = app.temporal().await;
        let housekeeping = tokio::spawn(housekeeping::run(app.clone()));
        let handle = axum_server::Handle::new();
        let stopping = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing open requests");
            stopping.graceful_shutdown(Some(Duration::from_secs(10)));
        });
        let service = router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
        listener
            .set_nonblocking(true)
            .context("configuring the listener")?;
        let local = listener
            .local_addr()
            .context("reading the listen address")?;
        tracing::info!(address = %local, tls = tls.is_some(), ledger = app.ledger.url(), rules = app.rules.rules.len(), "cutover serve listening");
        match tls {
            Some(config) => axum_server::from_tcp_rustls(listener, config)
                .handle(handle)
                .serve(service)
                .await
                .context("serving")?,
            None => axum_server::from_tcp(listener)
                .handle(handle)
                .serve(service)
                .await
                .context("serving")?,
        }
        housekeeping.abort();
        writer.finish().await;
        app.ledger.close().await;
        Ok(())
    }
}

/// `cutover serve`: runs the receiver on `--listen` until SIGTERM or SIGINT, then drains open
/// requests.
pub(crate) async fn serve(global: &Global, args: &ServeArgs) -> Outcome {
    let telemetry = cutover_client::telemetry::init(
        cutover_client::telemetry::LogFormat::Human,
        "cutover-serve",
    );
    let served = async {
        let receiver = Receiver::build(global, args).await?;
        let listener = std::net::TcpListener::bind(args.listen)
            .with_context(|| format!("listening on {}", args.listen))?;
        receiver
            .run(listener, cutover_client::shutdown::signal())
            .await?;
        Ok(())
    }
    .await;
    telemetry.shutdown();
    served
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/webhooks/{provider}", post(deliver::deliver))
        .route(
            "/rollouts/{service}/{environment}/{action}",
            post(control::act),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics_text))
        .with_state(app)
}

async fn ready(State(app): State<Arc<App>>) -> (StatusCode, String) {
    let ledger = app.ledger.ping().await;
    let temporal = match app.temporal().await {
        Some(client) => {
            let mut svc = client.connection().workflow_service();
            tokio::time::timeout(
                Duration::from_secs(2),
                svc.get_system_info(temporalio_client::tonic::Request::new(Default::default())),
            )
            .await
            .map_err(|_| "timed out".to_owned())
            .and_then(|r| r.map(|_| ()).map_err(|e| e.message().to_owned()))
        }
        None => Err("unreachable".to_owned()),
    };
    match (&ledger, &temporal) {
        (Ok(()), Ok(())) => (StatusCode::OK, "ready: temporal ok, ledger ok\n".to_owned()),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: temporal {}, ledger {}\n",
                temporal.err().unwrap_or_else(|| "ok".to_owned()),
                ledger
                    .err()
                    .map_or_else(|| "ok".to_owned(), |e| e.to_string())
            ),
        ),
    }
}

async fn metrics_text(State(app): State<Arc<App>>) -> ([(&'static str, &'static str); 1], String) {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
}

/// Reads and validates a rules file and every plan it names (relative to the file). Problems
/// are printed with positions; exit 2.
pub(crate) fn load_rules(
    path: &Path,
) -> Result<(TriggerRules, std::collections::BTreeMap<String, Plan>), Failure> {
    let shown = path.display().to_string();
    let text = crate::cmd::read_text(path, "rules file", 256 * 1024)?;
    let rules = rules_parse::parse_triggers(&text)
        .map_err(|problems| crate::cmd::reported(&shown, &problems))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut plans = std::collections::BTreeMap::new();
    let mut bad = 0;
    for rule in &rules.rules {
        let plan_path: PathBuf = base.join(&rule.plan);
        match crate::cmd::load_plan(&plan_path) {
            Ok(mut plan) => {
                // The rule's notifiers join the plan's; one name means one notifier.
                let clash = rule
                    .notify
                    .iter()
                    .find(|n| plan.notify.iter().any(|p| p.name == n.name));
                let total = plan.notify.len() + rule.notify.len();
                if let Some(n) = clash {
                    bad += 1;
                    eprintln!(
                        "{shown}: rule `{}`: notifier `{}` is also in its plan `{}`; give one of them another `name:`",
                        rule.name, n.name, rule.plan
                    );
                } else if total > cutover_workflows::plan::notify::MAX_NOTIFIERS {
                    bad += 1;
                    eprintln!(
                        "{shown}: rule `{}`: {total} notifiers with its plan's; at most {} are allowed",
                        rule.name,
                        cutover_workflows::plan::notify::MAX_NOTIFIERS
                    );
                } else {
                    plan.notify.extend(rule.notify.iter().cloned());
                    plans.insert(rule.name.clone(), plan);
                }
            }
            Err(Failure::InputReported) => bad += 1,
            Err(e) => {
                bad += 1;
                if let Failure::Input(e) | Failure::Failed(e) = e {
                    eprintln!("{shown}: rule `{}`: {e:#}", rule.name);
                }
            }
        }
    }
    if bad > 0 {
        return Err(Failure::InputReported);
    }
    Ok((rules, plans))
}
