//! A local HTTP server that records what notifiers send it: every POST to `/<path>` is kept,
//! and `/down` always answers 500 (a notifier that is down).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The path, without its `/`.
    pub path: String,
    /// The request's headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

/// Everything received, shared with the server.
#[derive(Clone, Default)]
pub struct Inbox(Arc<Mutex<Vec<Received>>>);

impl Inbox {
    /// The requests to `/path`, in arrival order.
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.0
            .lock()
            .expect("inbox")
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

/// Records every POST; `/down` always answers 500.
async fn receive(
    State(inbox): State<Inbox>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    inbox.0.lock().expect("inbox").push(Received {
        path: path.clone(),
        headers,
        body,
    });
    if path == "down" {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

/// Starts the server on a free loopback port: its base URL and what it receives.
pub async fn serve() -> anyhow::Result<(String, Inbox)> {
    let inbox = Inbox::default();
    let app = Router::new()
        .route("/{path}", post(receive))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, inbox))
}

/// A header's value, or empty.
pub fn header(r: &Received, name: &str) -> String {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
