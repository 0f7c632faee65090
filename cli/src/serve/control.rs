//! `POST /rollouts/{service}/{environment}/{action}`: people acting on a running rollout with a
//! verified identity.
//!
//! The receiver checks the caller's token (see [`super::access`]), signs an assertion of who
//! they are, and sends the `control` update. The workflow decides and records the action
//! (accepted, or refused by the plan's rules) in its status and the audit trail; what the
//! receiver turns away itself — no or bad credentials, a rollout that does not exist or has
//! nothing to act on — it records in the audit trail directly.
//!
//! Answers: 200 accepted; 400 bad request; 401 not authenticated; 403 refused by the plan;
//! 404 no such rollout or action; 409 nothing to act on now; 413 body too large; 503
//! Temporal unreachable or control endpoints not configured.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cutover_ledger::NewAudit;
use cutover_workflows::RolloutWorkflow;
use cutover_workflows::control::{ControlRequest, ControlResult};
use cutover_workflows::guard::{Action, Assertion, Claims};
use cutover_workflows::name::Name;
use cutover_workflows::status::RolloutStatus;
use serde_json::{Value, json};
use temporalio_client::errors::WorkflowUpdateError;
use temporalio_client::{WorkflowExecuteUpdateOptions, WorkflowQueryOptions};

use super::App;
use super::access::Caller;

/// Largest request body: a reason or comment.
const MAX_BODY: usize = 8 * 1024;

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn refusal(status: StatusCode, reason: impl Into<String>) -> Response {
    answer(
        status,
        json!({ "accepted": false, "reason": reason.into() }),
    )
}

pub(super) async fn act(
    State(app): State<Arc<App>>,
    Path((service, environment, action)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(access) = &app.access else {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "control endpoints are off: start `cutover serve` with `--access FILE`",
        );
    };
    let Some(action) = Action::parse(&action) else {
        let known: Vec<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
        return refusal(
            StatusCode::NOT_FOUND,
            format!("unknown action; use one of {}", known.join(", ")),
        );
    };
    if Name::parse(&service).is_err() || Name::parse(&environment).is_err() {
        return refusal(
            StatusCode::NOT_FOUND,
            "no such rollout: service and environment must be valid names",
        );
    }
    let workflow_id = format!("rollout/{service}/{environment}");
    let record =
        |person: &str, verified: &str, run_id: &str, step: Option<String>, reason: String| {
            NewAudit {
                key: format!("receiver/{}", uuid::Uuid::new_v4()),
                at: Some(chrono::Utc::now().timestamp_millis()),
                subject: workflow_id.clone(),
                run_id: run_id.to_owned(),
                service: service.clone(),
                environment: environment.clone(),
                action: action.as_str().to_owned(),
                outcome: "refused".to_owned(),
                person: person.to_owned(),
                verified: verified.to_owned(),
                step,
                reason: Some(reason),
                source: "receiver".to_owned(),
            }
        };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let caller = match access.identify(authorization).await {
        Ok(c) => c,
        Err(why) => {
            audit(&app, record("unknown", "none", "", None, why.clone())).await;
            let mut r = refusal(StatusCode::UNAUTHORIZED, why);
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    };
    if body.len() > MAX_BODY {
        let why = format!("the body is {} bytes; at most {MAX_BODY}", body.len());
        audit(
            &app,
            record(&caller.person, caller.method, "", None, why.clone()),
        )
        .await;
        return refusal(StatusCode::PAYLOAD_TOO_LARGE, why);
    }
    let (reason, full) = match parse_body(&body) {
        Ok(r) => r,
        Err(why) => return refusal(StatusCode::BAD_REQUEST, why),
    };
    let Some(client) = app.temporal().await else {
        return refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporal is unreachable; try again",
        );
    };
    let handle = client.get_workflow_handle::<RolloutWorkflow>(&workflow_id);
    // The step the action concerns goes into the assertion, so it cannot be spent on another.
    let status: RolloutStatus = match handle
        .query(RolloutWorkflow::status, (), WorkflowQueryOptions::default())
        .await
    {
        Ok(s) => s,
        Err(_) => {
            let why = format!("no rollout {workflow_id}");
            audit(
                &app,
                record(&caller.person, caller.method, "", None, why.clone()),
            )
            .await;
            return refusal(StatusCode::NOT_FOUND, why);
        }
    };
    let step = match action {
        Action::Approve | Action::Refuse | Action::Promote | Action::Retry => {
            status.current_step.clone()
        }
        _ => None,
    };
    let claims = Claims {
        action,
        workflow_id: workflow_id.clone(),
        step: step.clone(),
        person: caller.person.clone(),
        groups: caller.groups.clone(),
        method: caller.method.to_owned(),
        issued_at: chrono::Utc::now().timestamp(),
        nonce: uuid::Uuid::new_v4().to_string(),
    };
    let request = ControlRequest {
        action,
        by: caller.person.clone(),
        reason,
        full,
        assertion: Some(Assertion::sign(&access.signing_key, &claims)),
    };
    match handle
        .execute_update(
            RolloutWorkflow::control,
            request,
            WorkflowExecuteUpdateOptions::default(),
        )
        .await
    {
        Ok(result) => accepted_or_refused(&caller, result),
        Err(e) => {
            let (status_code, why) = match e {
                WorkflowUpdateError::NotFound(_) => (
                    StatusCode::NOT_FOUND,
                    format!("rollout {workflow_id} has ended or does not exist"),
                ),
                WorkflowUpdateError::Failed(f) => (StatusCode::CONFLICT, f.message.clone()),
                other => {
                    tracing::warn!(error = %other, workflow_id, "control update failed");
                    return refusal(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the rollout could not be reached; try again",
                    );
                }
            };
            audit(
                &app,
                record(&caller.person, caller.method, "", step, why.clone()),
            )
            .await;
            refusal(status_code, why)
        }
    }
}

fn accepted_or_refused(caller: &Caller, r: ControlResult) -> Response {
    let status = if r.accepted {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    };
    answer(
        status,
        json!({
            "accepted": r.accepted,
            "action": r.action.as_str(),
            "by": r.by,
            "verified": caller.method,
            "step": r.step,
            if r.accepted { "message" } else { "reason" }: r.message,
        }),
    )
}

/// `{}` or `{"reason": "..."}` (or `comment`), at most 200 printable characters; an empty body
/// is no reason.
/// The body's `reason` (or `comment`), and `full` (a promote to the canary's end).
fn parse_body(body: &[u8]) -> Result<(Option<String>, bool), String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, false));
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Value::Object(map) = v else {
        return Err("the body must be a JSON object, e.g. {\"reason\": \"...\"}".to_owned());
    };
    if let Some(k) = map
        .keys()
        .find(|k| !["reason", "comment", "full"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown field `{}`; use `reason`, `comment` or `full`",
            super::events::clip(k)
        ));
    }
    let full = match map.get("full") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`full` must be true or false".to_owned()),
    };
    let reason = match map.get("reason").or_else(|| map.get("comment")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= 200 && !s.chars().any(char::is_control) => {
            Ok(Some(s.clone()))
        }
        Some(Value::String(_)) => {
            Err("`reason` must be at most 200 printable characters".to_owned())
        }
        Some(_) => Err("`reason` must be a string".to_owned()),
    }?;
    Ok((reason, full))
}

/// Writes a refusal the receiver decided; a ledger that is down is logged, not fatal (the
/// answer still goes back).
async fn audit(app: &App, row: NewAudit) {
    if let Err(e) = app.ledger.append_audit(&[row]).await {
        tracing::error!(error = %e, "could not write the audit trail");
    }
}
