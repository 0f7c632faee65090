//! HTTP checks: status, body substring, JSON pointer, and "N passes in a row within D".

use std::time::Duration;

use cutover_workflows::contracts::{StepRef, VerifyOutput};
use cutover_workflows::plan::VerifySpec;
use temporalio_sdk::activities::ActivityContext;
use tokio::time::Instant;
use tracing::info;

use crate::error::StepFailure;

/// Most of a response body read for checking.
const MAX_BODY: usize = 1024 * 1024;
/// Most of a body quoted back in an error.
const QUOTE: usize = 200;

/// Checks until `consecutive` checks pass in a row, or fails when `within` runs out.
#[tracing::instrument(
    name = "http.verify",
    skip_all,
    fields(step = %step.step, attempt = step.attempt, rollout = %step.rollout)
)]
pub(crate) async fn verify(
    ctx: &ActivityContext,
    client: &reqwest::Client,
    step: &StepRef,
    spec: &VerifySpec,
) -> Result<VerifyOutput, StepFailure> {
    let url = reqwest::Url::parse(&spec.url).map_err(|e| {
        StepFailure::InvalidInput(format!("`{}` is not a valid URL: {e}", spec.url))
    })?;
    let method = reqwest::Method::from_bytes(spec.method.as_bytes()).map_err(|_| {
        StepFailure::InvalidInput(format!("`{}` is not an HTTP method", spec.method))
    })?;
    let deadline = Instant::now() + spec.within;
    let (mut checks, mut passes, mut best) = (0u32, 0u32, 0u32);
    let mut last_problem = String::new();
    loop {
        checks += 1;
        let request = client
            .request(method.clone(), url.clone())
            .timeout(spec.request_timeout);
        match check(request, spec).await {
            Ok(status) => {
                passes += 1;
                best = best.max(passes);
                info!(rollout = %step.rollout, step = %step.step, check = checks, passes, "check passed");
                if passes >= spec.consecutive {
                    return Ok(VerifyOutput {
                        checks,
                        consecutive_passes: passes,
                        last_status: status,
                    });
                }
            }
            Err(problem) => {
                passes = 0;
                info!(rollout = %step.rollout, step = %step.step, check = checks, "check failed: {problem}");
                last_problem = problem;
            }
        }
        let _ = ctx.record_heartbeat(checks).await;
        if Instant::now() + spec.interval > deadline {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(spec.interval) => {}
            () = ctx.cancelled() => return Err(StepFailure::Cancelled),
        }
    }
    Err(StepFailure::CheckFailed(format!(
        "{} {}: expected {}; {} ({checks} check(s) in {}, best run {best} of {} in a row)",
        spec.method,
        spec.url,
        expectation(spec),
        if last_problem.is_empty() {
            "passes were not consecutive".to_owned()
        } else {
            last_problem
        },
        humantime::format_duration(spec.within),
        spec.consecutive,
    )))
}

/// What a passing response looks like, in words.
fn expectation(spec: &VerifySpec) -> String {
    let mut parts = vec![format!("status {}", spec.expect_status)];
    if let Some(s) = &spec.body_contains {
        parts.push(format!("a body containing {s:?}"));
    }
    if let Some(j) = &spec.json {
        parts.push(format!("JSON {} = {}", j.pointer, j.equals));
    }
    parts.join(" and ")
}

/// One request. Ok(status) when everything matched; otherwise what came back.
async fn check(request: reqwest::RequestBuilder, spec: &VerifySpec) -> Result<u16, String> {
    let mut response = request
        .send()
        .await
        .map_err(|e| format!("got no response: {}", describe(&e)))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while body.len() < MAX_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                return Err(format!(
                    "got status {status} but the body failed: {}",
                    describe(&e)
                ));
            }
        }
    }
    let text = String::from_utf8_lossy(&body);
    let quoted = quote(&text);
    if status != spec.expect_status {
        return Err(format!("got status {status} with body {quoted}"));
    }
    if let Some(needle) = &spec.body_contains
        && !text.contains(needle.as_str())
    {
        return Err(format!(
            "got status {status} but the body {quoted} lacks {needle:?}"
        ));
    }
    if let Some(expect) = &spec.json {
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| format!("got status {status} but the body is not JSON ({e}): {quoted}"))?;
        match value.pointer(&expect.pointer) {
            Some(found) if found == &expect.equals => {}
            Some(found) => return Err(format!("got {} = {found}", expect.pointer)),
            None => return Err(format!("got no value at {} in {quoted}", expect.pointer)),
        }
    }
    Ok(status)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    if e.is_connect() {
        return "connection refused or unreachable".to_owned();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

fn quote(text: &str) -> String {
    let clean: String = text
        .chars()
        .take(QUOTE)
        .map(|c| if c.is_control() && c != ' ' { ' ' } else { c })
        .collect();
    if text.chars().count() > QUOTE {
        format!("{:?}…", clean.trim())
    } else {
        format!("{:?}", clean.trim())
    }
}

/// The HTTP client activities share; redirects are not followed, so a check sees what the
/// service really answered.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}
