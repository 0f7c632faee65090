//! hello-service: the example a Cutover plan releases.
//!
//! `GET /health` answers `ok`; `GET /version` answers `{"service":"hello","version":...}`
//! with the version from `APP_VERSION`. It listens on `127.0.0.1:$PORT` (default 18080) and
//! stops cleanly on SIGTERM.

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let version = std::env::var("APP_VERSION").unwrap_or_else(|_| "dev".to_owned());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18080);
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/version",
            get(move || {
                let version = version.clone();
                async move { Json::<Value>(json!({ "service": "hello", "version": version })) }
            }),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("hello-service listening on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                term.recv().await;
            }
        })
        .await
}
