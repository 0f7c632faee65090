//! hello-service: the example a Cutover plan releases.
//!
//! - `GET /health` answers `ok` (503 while the database is configured but unreachable);
//! - `GET /version` answers `{"service":"hello","version":...}`;
//! - `GET /items` lists the `items` table, every column included (so v2's added column shows);
//! - `POST /items` with `{"name": "..."}` adds a row;
//! - `GET /metrics` answers Prometheus text: `hello_http_requests_total{version,code}`.
//!
//! Settings from the environment: `PORT` (default 18080), the version from `APP_VERSION` or
//! `CUTOVER_VERSION` (set by Cutover's host driver), `DATABASE_URL` or `DATABASE_URL_FILE`
//! (optional; the file is re-read on each request, so a DR drill can switch databases),
//! `STARTUP_DELAY_MS` to simulate a slow start, and `FAIL_PERCENT` (0–100) to make that share
//! of requests other than `/health` and `/metrics` answer 500 — a bad release that passes its
//! health check, for analysis to catch. It stops cleanly on SIGTERM.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

#[derive(Clone)]
struct App {
    version: String,
    db: Option<PgPool>,
    /// `DATABASE_URL_FILE`: the database URL is read from this file, and the pool replaced
    /// when the file changes — how a DR drill points the app at a promoted standby.
    url_file: Option<Arc<UrlFile>>,
    /// Percent of requests answered 500 on purpose.
    fail_percent: u64,
    /// `UNHEALTHY_PORTS` (comma-separated) lists this instance's port: `/health` answers 503,
    /// as a release that is broken on one host or slot would.
    unhealthy: bool,
    /// Requests seen (decides which fail) and answers by status code.
    counters: Arc<Mutex<Counters>>,
}

/// The database URL file and the pool built from its current content.
struct UrlFile {
    path: std::path::PathBuf,
    current: Mutex<Option<(String, PgPool)>>,
}

impl App {
    /// The pool to use now.
    fn pool(&self) -> Option<PgPool> {
        let Some(file) = &self.url_file else {
            return self.db.clone();
        };
        // Until a drill first writes the file, the URL the environment gave.
        let Some(url) = std::fs::read_to_string(&file.path)
            .ok()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
        else {
            return self.db.clone();
        };
        let mut current = file.current.lock().unwrap_or_else(|e| e.into_inner());
        match &*current {
            Some((u, pool)) if *u == url => Some(pool.clone()),
            _ => {
                let pool = pool_for(&url).ok()?;
                *current = Some((url, pool.clone()));
                Some(pool)
            }
        }
    }
}

fn pool_for(url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy(url)
}

#[derive(Default)]
struct Counters {
    seen: u64,
    by_code: BTreeMap<u16, u64>,
}

#[derive(Deserialize)]
struct NewItem {
    name: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let version = env("APP_VERSION")
        .or_else(|| env("CUTOVER_VERSION"))
        .unwrap_or_else(|| "dev".to_owned());
    let port: u16 = env("PORT").and_then(|p| p.parse().ok()).unwrap_or(18080);
    if let Some(ms) = env("STARTUP_DELAY_MS").and_then(|v| v.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let db = env("DATABASE_URL").map(|url| pool_for(&url));
    let url_file = env("DATABASE_URL_FILE").map(|path| {
        Arc::new(UrlFile {
            path: path.into(),
            current: Mutex::new(None),
        })
    });
    let db = match db {
        Some(Ok(pool)) => Some(pool),
        Some(Err(e)) => {
            eprintln!("DATABASE_URL is invalid: {e}");
            std::process::exit(2);
        }
        None => None,
    };
    let fail_percent = env("FAIL_PERCENT")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        .min(100);
    let unhealthy = env("UNHEALTHY_PORTS")
        .is_some_and(|ports| ports.split(',').any(|p| p.trim().parse() == Ok(port)));
    let state = App {
        version,
        db,
        url_file,
        fail_percent,
        unhealthy,
        counters: Arc::default(),
    };
    let app = Router::new()
        .route("/health", get(health))
        .route("/version", get(version_info))
        .route("/items", get(list_items).post(add_item))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state);
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

async fn health(State(app): State<App>) -> (StatusCode, &'static str) {
    if app.unhealthy {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "unhealthy on this port (UNHEALTHY_PORTS)",
        );
    }
    match &app.pool() {
        Some(db) if sqlx::query("SELECT 1").execute(db).await.is_err() => {
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
        _ => (StatusCode::OK, "ok"),
    }
}

async fn version_info(State(app): State<App>) -> Json<Value> {
    Json(json!({ "service": "hello", "version": app.version }))
}

async fn list_items(State(app): State<App>) -> Result<Json<Value>, (StatusCode, String)> {
    let db = app.pool().ok_or(no_database())?;
    let rows: Vec<Value> = sqlx::query_scalar("SELECT to_jsonb(i) FROM items i ORDER BY id")
        .fetch_all(&db)
        .await
        .map_err(internal)?;
    Ok(Json(Value::Array(rows)))
}

async fn add_item(
    State(app): State<App>,
    Json(item): Json<NewItem>,
) -> Result<(StatusCode, Json<Value>), (StatusCode, String)> {
    let db = app.pool().ok_or(no_database())?;
    let row: Value =
        sqlx::query_scalar("INSERT INTO items (name) VALUES ($1) RETURNING to_jsonb(items)")
            .bind(item.name)
            .fetch_one(&db)
            .await
            .map_err(internal)?;
    Ok((StatusCode::CREATED, Json(row)))
}

fn no_database() -> (StatusCode, String) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "no DATABASE_URL configured".to_owned(),
    )
}

fn internal(e: sqlx::Error) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// Counts every answer by status, and fails `FAIL_PERCENT` of requests on purpose.
async fn count(State(app): State<App>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let exempt = path == "/health" || path == "/metrics";
    let fail = !exempt && {
        let mut c = app.counters.lock().unwrap_or_else(|e| e.into_inner());
        c.seen += 1;
        c.seen % 100 < app.fail_percent
    };
    let response = if fail {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "failing on purpose (FAIL_PERCENT)",
        )
            .into_response()
    } else {
        next.run(req).await
    };
    if path != "/metrics" {
        let mut c = app.counters.lock().unwrap_or_else(|e| e.into_inner());
        *c.by_code.entry(response.status().as_u16()).or_default() += 1;
    }
    response
}

async fn metrics(State(app): State<App>) -> String {
    let c = app.counters.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::from(
        "# HELP hello_http_requests_total Requests answered, by status code.\n# TYPE hello_http_requests_total counter\n",
    );
    // Both series exist from the start, so rates over them are defined before the first error.
    let mut codes = c.by_code.clone();
    codes.entry(200).or_default();
    codes.entry(500).or_default();
    for (code, n) in codes {
        out.push_str(&format!(
            "hello_http_requests_total{{version=\"{}\",code=\"{code}\"}} {n}\n",
            app.version
        ));
    }
    out
}
