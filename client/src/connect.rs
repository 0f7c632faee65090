//! Connecting to Temporal with its standard environment configuration.
//!
//! `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, the TLS variables and
//! `temporal.toml` profiles all work as they do for the `temporal` CLI, because the SDK's
//! envconfig reads them. Cutover changes one default: with nothing configured it connects to
//! `127.0.0.1:7233`, where `cutover dev up` starts the embedded server, rather than
//! `localhost`, which may resolve to `::1` first.

use std::time::Duration;

use temporalio_client::envconfig::LoadClientConfigProfileOptions;
use temporalio_client::{Client, ClientOptions, Connection};

/// The address used when nothing else is configured.
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:7233";

/// What to connect to, beyond the standard environment configuration.
#[derive(Clone, Debug, Default)]
pub struct ConnectOptions {
    /// `host:port` overriding the profile's address.
    pub address: Option<String>,
    /// Namespace overriding the profile's.
    pub namespace: Option<String>,
    /// `temporal.toml` profile to use.
    pub profile: Option<String>,
    /// Identity reported to the server (worker name in the UI).
    pub identity: Option<String>,
}

/// A connected client and where it is connected to.
pub struct Connected {
    /// The namespace-bound client.
    pub client: Client,
    /// The address connected to, for messages.
    pub address: String,
    /// The namespace.
    pub namespace: String,
}

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The environment configuration or profile is invalid.
    #[error("invalid Temporal connection settings: {0}")]
    Config(String),
    /// The server could not be reached.
    #[error(
        "cannot reach Temporal at {address}: {reason}\n  start the embedded default with `cutover dev up`, or point TEMPORAL_ADDRESS at your server"
    )]
    Unreachable {
        /// The address tried.
        address: String,
        /// What went wrong, briefly.
        reason: String,
    },
}

/// Loads the connection profile and connects.
///
/// # Errors
///
/// [`ConnectError::Config`] for bad settings, [`ConnectError::Unreachable`] naming the address
/// tried when the server does not answer within a few seconds.
pub async fn connect(options: &ConnectOptions) -> Result<Connected, ConnectError> {
    let load = LoadClientConfigProfileOptions::builder()
        .maybe_config_file_profile(options.profile.clone())
        .build();
    let (mut conn, mut client_opts) =
        ClientOptions::load_from_config(load).map_err(|e| ConnectError::Config(e.to_string()))?;
    let env_address = std::env::var("TEMPORAL_ADDRESS")
        .ok()
        .filter(|a| !a.is_empty());
    let wanted = options.address.clone().or_else(|| {
        // The SDK's built-in default is localhost; prefer the IPv4 loopback the dev server binds.
        (env_address.is_none()
            && conn.target.host_str() == Some("localhost")
            && conn.target.port() == Some(7233))
        .then(|| DEFAULT_ADDRESS.to_owned())
    });
    if let Some(address) = wanted {
        conn.target = parse_address(&address, conn.tls_options.is_some())?;
    }
    if let Some(ns) = &options.namespace {
        client_opts.namespace = ns.clone();
    }
    if let Some(identity) = &options.identity {
        conn.identity = identity.clone();
    }
    conn.connect_timeout = Some(Duration::from_secs(5));
    let address = display_address(&conn.target);
    let namespace = client_opts.namespace.clone();
    let connection = Connection::connect(conn)
        .await
        .map_err(|e| ConnectError::Unreachable {
            address: address.clone(),
            reason: brief(&e),
        })?;
    if crate::telemetry::traces_enabled() {
        // Trace context rides in Temporal headers: starts, signals and updates carry the
        // caller's span, workflows and activities continue it (workers built on this client
        // inherit the plugin).
        client_opts = ClientOptions::new(client_opts.namespace.clone())
            .data_converter(client_opts.data_converter.clone())
            .client_interceptors(client_opts.client_interceptors.clone())
            .plugin(temporalio_sdk::opentelemetry::OpenTelemetryPlugin::builder().build())
            .build();
    }
    let client =
        Client::new(connection, client_opts).map_err(|e| ConnectError::Config(e.to_string()))?;
    Ok(Connected {
        client,
        address,
        namespace,
    })
}

fn parse_address(address: &str, tls: bool) -> Result<url::Url, ConnectError> {
    let with_scheme = if address.contains("://") {
        address.to_owned()
    } else if tls {
        format!("https://{address}")
    } else {
        format!("http://{address}")
    };
    url::Url::parse(&with_scheme)
        .ok()
        .filter(|u| u.host().is_some())
        .ok_or_else(|| ConnectError::Config(format!("`{address}` is not a host:port address")))
}

fn display_address(url: &url::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        _ => url.to_string(),
    }
}

/// One line on why a connection failed, without the nested Debug dumps of tonic errors.
fn brief(err: &dyn std::error::Error) -> String {
    let text = format!("{err} {err:?}").to_lowercase();
    if text.contains("connection refused") {
        "connection refused".to_owned()
    } else if text.contains("timed out") || text.contains("timeout") {
        "timed out".to_owned()
    } else if text.contains("dns") || text.contains("resolve") {
        "the host name does not resolve".to_owned()
    } else {
        let mut line = err.to_string();
        line.truncate(200);
        line
    }
}
