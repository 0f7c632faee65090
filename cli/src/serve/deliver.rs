//! One delivery, from the first header to the answer:
//!
//! 1. size: a `Content-Length` over the limit is refused (413) before any byte of the body is
//!    read; a body without one is read up to the limit and no further;
//! 2. content type: JSON only (415);
//! 3. authentication (401, "signature mismatch" and nothing more);
//! 4. delivery ID present (400), JSON well-formed (400 with the parse position);
//! 5. the event: unknown ones and those Cutover does not act on are answered 202 "ignored";
//! 6. the rules: none matching → 202 "no rule matched";
//! 7. the claim in the ledger: a delivery seen before gets the first outcome back (200), never
//!    a second start;
//! 8. the start, through `cutover_client::start_rollout`, with Temporal's request ID derived
//!    from the delivery: receivers that do not share a ledger and get the same delivery at
//!    once make the same request, and the server starts one run and answers both with it. If
//!    Temporal is unreachable: 503 with `Retry-After`, and the claim is given up so the
//!    provider's retry can start it.
//!
//! Every request leaves a row in the ledger: provider, delivery ID, source, status, reason —
//! committed before the request is answered (refusals are written in batches: [`super::recorder`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::serve::rules::Provider;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cutover_client::{Begun, StartError, begin_rollout};
use cutover_ledger::{Claim, DeliveryRow, NewDelivery};
use cutover_workflows::plan::{Trigger, TriggerKind};
use opentelemetry::trace::FutureExt as _;
use serde_json::{Value, json};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::events::{self, Parsed, clip};
use super::{App, auth};

/// How long a provider is told to wait before retrying when Temporal is unreachable.
const RETRY_AFTER_SECS: u64 = 30;

/// The answer and what the ledger records of it.
struct Answer {
    status: StatusCode,
    outcome: &'static str,
    reason: String,
    rule: Option<String>,
    workflow_id: Option<String>,
    run_id: Option<String>,
    /// The request's ledger row is already written (the claim's row, settled).
    recorded: bool,
}

impl Answer {
    fn new(status: StatusCode, outcome: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            outcome,
            reason: reason.into(),
            rule: None,
            workflow_id: None,
            run_id: None,
            recorded: false,
        }
    }

    fn body(&self) -> Value {
        let mut v = json!({ "outcome": self.outcome, "reason": self.reason });
        if let Some(rule) = &self.rule {
            v["rule"] = json!(rule);
        }
        if let (Some(w), Some(r)) = (&self.workflow_id, &self.run_id) {
            v["workflow_id"] = json!(w);
            v["run_id"] = json!(r);
        }
        v
    }
}

/// What is known of the request so far, for its ledger row.
struct Seen {
    provider: String,
    delivery_id: Option<String>,
    event: Option<String>,
    source: String,
}

pub(super) async fn deliver(
    State(app): State<Arc<App>>,
    Path(provider_name): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let Some(provider) = Provider::from_name(&provider_name) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"outcome": "rejected", "reason": "unknown provider: use /webhooks/github, /webhooks/gitlab or /webhooks/generic"})),
        )
            .into_response();
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (delivery_header, event_header) = match provider {
        Provider::Github => ("x-github-delivery", header("x-github-event")),
        Provider::Gitlab => (
            if header("x-gitlab-event-uuid").is_some() {
                "x-gitlab-event-uuid"
            } else {
                "idempotency-key"
            },
            header("x-gitlab-event"),
        ),
        Provider::Generic => (app.generic.delivery.as_str(), None),
    };
    let seen = Seen {
        provider: provider.as_str().to_owned(),
        delivery_id: header(delivery_header).map(clip),
        event: event_header.map(clip),
        source: peer.to_string(),
    };
    // The trace of a delivery starts here; the rollout it starts continues it.
    let span = tracing::info_span!(
        "webhook",
        provider = %seen.provider,
        delivery = seen.delivery_id.as_deref().unwrap_or("-"),
        status = tracing::field::Empty,
        outcome = tracing::field::Empty,
        service = tracing::field::Empty,
        environment = tracing::field::Empty,
        version = tracing::field::Empty,
    );
    let answer = handle(&app, provider, &headers, body, &seen, event_header)
        .instrument(span.clone())
        .await;
    span.record("status", answer.status.as_u16());
    span.record("outcome", answer.outcome);
    if !answer.recorded {
        let row = NewDelivery {
            provider: seen.provider.clone(),
            delivery_id: seen.delivery_id.clone(),
            event: seen.event.clone(),
            source: seen.source.clone(),
            status: answer.status.as_u16(),
            outcome: answer.outcome.to_owned(),
            reason: answer.reason.clone(),
            rule: answer.rule.clone(),
            workflow_id: None,
        };
        // Answered only once the row is committed (batched with others: [`super::recorder`]).
        if let Err(e) = app.recorder.record(row).await {
            tracing::error!(error = %e, "the ledger refused a delivery row");
        }
    }
    app.metrics.observe(
        &seen.provider,
        answer.outcome,
        started.elapsed().as_secs_f64(),
    );
    // Logged inside the delivery's span, so the line carries its trace ID (traces on).
    span.in_scope(|| {
        tracing::info!(
            provider = %seen.provider,
            delivery = seen.delivery_id.as_deref().unwrap_or("-"),
            source = %seen.source,
            status = answer.status.as_u16(),
            outcome = answer.outcome,
            reason = %answer.reason,
            "delivery"
        );
    });
    let mut response = (answer.status, axum::Json(answer.body())).into_response();
    if answer.status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(RETRY_AFTER_SECS),
        );
    }
    response
}

async fn handle(
    app: &App,
    provider: Provider,
    headers: &HeaderMap,
    body: Body,
    seen: &Seen,
    event: Option<&str>,
) -> Answer {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // 1. Size, before reading.
    let declared = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_body as u64) {
        return too_large(app.max_body);
    }
    // 2. Content type.
    let content_type = header("content-type").unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Answer::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "rejected",
            format!(
                "content type `{}` is not supported: configure the webhook to send application/json",
                clip(essence)
            ),
        );
    }
    let Ok(bytes) = to_bytes(body, app.max_body).await else {
        return too_large(app.max_body);
    };
    // 3. Authentication.
    let secrets = app.secrets.get(provider);
    let verified = match provider {
        Provider::Github => auth::github(secrets, header("x-hub-signature-256"), &bytes),
        Provider::Gitlab => auth::gitlab(secrets, header("x-gitlab-token")),
        Provider::Generic => auth::generic(
            secrets,
            header(&app.generic.signature),
            header(&app.generic.timestamp),
            &bytes,
            chrono::Utc::now().timestamp(),
            app.generic.tolerance,
        ),
    };
    if verified.is_err() {
        return Answer::new(StatusCode::UNAUTHORIZED, "rejected", "signature mismatch");
    }
    // 4. Delivery ID and JSON.
    let Some(delivery_id) = seen.delivery_id.clone() else {
        return Answer::new(
            StatusCode::BAD_REQUEST,
            "rejected",
            "the delivery has no delivery ID header, so a redelivery could not be recognised",
        );
    };
    let payload: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return Answer::new(
                StatusCode::BAD_REQUEST,
                "rejected",
                format!(
                    "malformed JSON at line {} column {}: {}",
                    e.line(),
                    e.column(),
                    e
                ),
            );
        }
    };
    // 5. The event.
    let parsed = match provider {
        Provider::Github => events::github(event.unwrap_or_default(), &payload),
        Provider::Gitlab => events::gitlab(event.unwrap_or_default(), &payload),
        Provider::Generic => match events::generic(&payload) {
            Ok(p) => p,
            Err(why) => return Answer::new(StatusCode::BAD_REQUEST, "rejected", why),
        },
    };
    let event = match parsed {
        Parsed::Event(e) => e,
        Parsed::Ignored(why) => {
            return Answer::new(StatusCode::ACCEPTED, "ignored", format!("ignored: {why}"));
        }
    };
    // 6. The rules.
    let decision = match app.rules.decide(&event) {
        Ok(d) => d,
        Err(why) => return Answer::new(StatusCode::ACCEPTED, "ignored", why.to_string()),
    };
    let rule = decision.rule.name.clone();
    let on_busy = decision.rule.on_busy;
    // 7. The plan to start.
    let mut plan = app
        .plans
        .get(&rule)
        .cloned()
        .expect("every rule's plan is loaded at start");
    plan.version = decision.version.clone();
    plan.environment = decision.environment.clone();
    let span = tracing::Span::current();
    span.record("service", plan.service.as_str());
    span.record("environment", plan.environment.as_str());
    span.record("version", plan.version.as_str());
    let tag = format!("{}:{delivery_id}", seen.provider);
    // The same delivery, sent to several receivers at once, makes the same start request.
    let request_id = format!("cutover-webhook:{tag}");
    plan.trigger = Some(Trigger {
        kind: match provider {
            Provider::Github => TriggerKind::Github,
            Provider::Gitlab => TriggerKind::Gitlab,
            Provider::Generic => TriggerKind::Generic,
        },
        detail: Some(format!("delivery {delivery_id}, rule {rule}")),
        delivery: Some(tag.clone()),
        author: event.author.clone(),
    });
    // 8. The claim, naming the rollout it is about to start.
    let claim = app
        .ledger
        .claim_delivery(&NewDelivery {
            provider: seen.provider.clone(),
            delivery_id: Some(delivery_id.clone()),
            event: seen.event.clone(),
            source: seen.source.clone(),
            status: StatusCode::ACCEPTED.as_u16(),
            outcome: "starting".to_owned(),
            reason: format!("rule `{rule}` matched"),
            rule: Some(rule.clone()),
            workflow_id: Some(plan.workflow_id()),
        })
        .await;
    let claim_id = match claim {
        Ok(Claim::Won(id)) => id,
        Ok(Claim::Taken(first)) => return first_outcome(app, *first).await,
        Err(e) => {
            tracing::error!(error = %e, "the ledger cannot record the delivery");
            let mut a = Answer::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the ledger is unavailable; retry later",
            );
            a.rule = Some(rule);
            return a;
        }
    };
    // 9. The start.
    let mut answer = match app.temporal().await {
        None => Answer::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Temporal is unreachable; retry later",
        ),
        Some(client) => match busy(&client, &plan).await {
            Some(answer) => answer,
            None => match begin_rollout(
                &client,
                &plan,
                &app.task_queue,
                Some(&request_id),
                on_busy,
                plan.trigger
                    .as_ref()
                    .and_then(|t| t.author.as_deref())
                    .filter(|a| !a.is_empty())
                    .unwrap_or("cutover"),
            )
            // The start carries the delivery's span in its Temporal headers (traces on).
            .with_context(tracing::Span::current().context())
            .await
            {
                Ok(Begun::Queued {
                    queue_id, behind, ..
                }) => {
                    let mut a = Answer::new(
                        StatusCode::ACCEPTED,
                        "queued",
                        format!(
                            "rule `{rule}` queued {} {} → {} in {queue_id} behind {behind} ({}); a newer delivery replaces it",
                            plan.service,
                            plan.version,
                            plan.environment,
                            on_busy.as_str()
                        ),
                    );
                    a.workflow_id = Some(queue_id);
                    a
                }
                Ok(Begun::Started(started)) => {
                    let mut a = Answer::new(
                        StatusCode::ACCEPTED,
                        "started",
                        format!(
                            "rule `{rule}` started {} {} → {}",
                            plan.service, plan.version, plan.environment
                        ),
                    );
                    a.workflow_id = Some(started.workflow_id);
                    a.run_id = Some(started.run_id);
                    a
                }
                Err(StartError::AlreadyRunning {
                    workflow_id,
                    run_id,
                }) => Answer::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!(
                        "a rollout of {} to {} is already running: {workflow_id} (run {run_id})",
                        plan.service, plan.environment
                    ),
                ),
                Err(e @ StartError::SearchAttributesMissing) => Answer::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    e.to_string(),
                ),
                Err(StartError::Server(why)) => Answer::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    format!("Temporal refused the start: {}", clip(&why)),
                ),
                Err(e) => Answer::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    e.to_string(),
                ),
            },
        },
    };
    answer.rule = Some(rule);
    // Keep the claim unless the start should be retried by the provider (or redelivered by a
    // person once the drill holding the service has ended).
    let keep = answer.status != StatusCode::SERVICE_UNAVAILABLE && answer.outcome != "locked";
    if let Err(e) = app
        .ledger
        .settle_delivery(
            &claim_id,
            answer.status.as_u16(),
            answer.outcome,
            &answer.reason,
            answer.workflow_id.as_deref(),
            answer.run_id.as_deref(),
            keep,
        )
        .await
    {
        tracing::error!(error = %e, "the ledger refused to settle a delivery");
    }
    answer.recorded = true;
    answer
}

/// A delivery claimed before: wait briefly for its start to settle, then answer with it.
async fn first_outcome(app: &App, mut first: DeliveryRow) -> Answer {
    for _ in 0..50 {
        if first.outcome != "starting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        match app
            .ledger
            .claimed_delivery(
                &first.provider,
                first.delivery_id.as_deref().unwrap_or_default(),
            )
            .await
        {
            Ok(Some(row)) => first = row,
            _ => break,
        }
    }
    let mut a = Answer::new(
        StatusCode::OK,
        "duplicate",
        format!("delivery seen before: {} — {}", first.outcome, first.reason),
    );
    a.rule = first.rule;
    a.workflow_id = first.workflow_id;
    a.run_id = first.run_id;
    a
}

fn too_large(limit: usize) -> Answer {
    Answer::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "rejected",
        format!("the body is larger than the limit of {limit} bytes"),
    )
}

/// 409 when another workflow (a drill) holds the service's lock: the rollout would only end
/// `not started`. A rollout of the same ID is left to the start's own refusal.
async fn busy(
    client: &temporalio_client::Client,
    plan: &cutover_workflows::plan::Plan,
) -> Option<Answer> {
    let holder = cutover_client::lock::holder(client, &plan.service, &plan.environment)
        .await
        .ok()
        .flatten()?;
    if holder.workflow_id == plan.workflow_id() {
        return None;
    }
    Some(Answer::new(
        StatusCode::CONFLICT,
        "locked",
        format!(
            "{} in {} is busy: {} {} (run {}) holds its lock; redeliver when it has ended",
            plan.service, plan.environment, holder.kind, holder.workflow_id, holder.run_id
        ),
    ))
}
