//! `--health-listen`: the probes a cluster (or a load balancer, or systemd) asks a worker.
//!
//! - `GET /healthz` — the process serves requests (liveness);
//! - `GET /readyz` — connected to Temporal and polling; 503 before that and while draining
//!   after SIGTERM, so a rolling update of the workers waits for the new pod's connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

/// Whether the worker is connected and polling.
static READY: AtomicBool = AtomicBool::new(false);

/// Marks the worker ready (connected, polling) or not (starting, draining).
pub(crate) fn set_ready(ready: bool) {
    READY.store(ready, Ordering::SeqCst);
}

/// Binds `addr` now (a taken port fails the start, not the first probe) and serves the
/// probes in the background.
pub(crate) async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for health probes (--health-listen)"))?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|| async {
                if READY.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ready\n")
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: connecting to Temporal, or draining\n",
                    )
                }
            }),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("health probe listener stopped: {e}");
        }
    });
    Ok(())
}
