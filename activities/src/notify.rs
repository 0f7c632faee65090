//! `notify.send`: one message to one notifier, as one HTTP request.
//!
//! Slack-compatible destinations get `{"text": …}`. Generic webhooks get the message as JSON,
//! signed as the generic trigger is verified (README, "Webhooks"): `X-Cutover-Signature:
//! sha256=<hex>` of HMAC-SHA256(secret, `<timestamp>.<body>`), `X-Cutover-Timestamp` (Unix
//! seconds), `X-Cutover-Delivery` (`<workflow>/<run>/<seq>`, the same on every attempt, so a
//! receiver can drop repeats) and `X-Cutover-Event`.
//!
//! The destination URL is a credential: it is read from its secret reference here, and no
//! error or log line carries it (reqwest's errors are stripped of their URL).

use std::sync::Arc;
use std::time::Duration;

use cutover_workflows::notify::{Message, NotifyInput, NotifyOutput};
use cutover_workflows::plan::notify::Destination;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::StepFailure;
use crate::secrets::Secrets;

/// One request's limit (the activity's is longer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The notification activity.
pub struct NotifyActivityImpls {
    http: reqwest::Client,
}

impl Default for NotifyActivityImpls {
    fn default() -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
        }
    }
}

#[activities]
impl NotifyActivityImpls {
    /// `notify.send`.
    #[activity(definition = cutover_workflows::notify::contracts::Send)]
    pub async fn send(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: NotifyInput,
    ) -> Result<NotifyOutput, ActivityError> {
        let info = ctx.info();
        let delivery = format!(
            "{}/{}/{}",
            input.message.workflow_id,
            info.workflow_run_id.as_deref().unwrap_or("-"),
            input.message.seq
        );
        let work = send(&self.http, &input, &delivery);
        crate::acting(&ctx, work).await
    }
}

async fn send(
    http: &reqwest::Client,
    input: &NotifyInput,
    delivery: &str,
) -> Result<NotifyOutput, StepFailure> {
    let name = &input.notifier.name;
    // The values stay in `Secrets` (zeroed on drop); only borrowed for the request.
    let (secrets, body) = match &input.notifier.to {
        Destination::Slack { url } => (
            Secrets::single("url", url)?,
            serde_json::json!({ "text": input.message.text() }),
        ),
        Destination::Webhook { url, secret } => {
            let mut secrets = Secrets::single("url", url)?;
            secrets.extend(Secrets::single("secret", secret)?);
            (secrets, webhook_body(&input.message))
        }
    };
    let url = secrets.get("url").unwrap_or_default();
    let signing = secrets.get("secret");
    let body = serde_json::to_vec(&body).map_err(|e| StepFailure::InvalidInput(e.to_string()))?;
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Cutover-Event", input.message.event.as_str())
        .header("X-Cutover-Delivery", delivery);
    if let Some(key) = signing {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        request = request
            .header("X-Cutover-Timestamp", &timestamp)
            .header("X-Cutover-Signature", sign(key, &timestamp, &body));
    }
    let response = request.body(body).send().await.map_err(|e| {
        StepFailure::CheckFailed(format!(
            "notifier `{name}` unreachable: {}",
            e.without_url()
        ))
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(NotifyOutput {
            status: status.as_u16(),
        });
    }
    let said = response.text().await.unwrap_or_default();
    let said: String = said.chars().filter(|c| !c.is_control()).take(200).collect();
    let message = format!("notifier `{name}` answered {status}: {said}");
    // A request the destination refuses as such (bad URL path, revoked hook) will be refused
    // again; throttling and server errors may pass later.
    if status.is_client_error()
        && status != reqwest::StatusCode::REQUEST_TIMEOUT
        && status != reqwest::StatusCode::TOO_MANY_REQUESTS
    {
        Err(StepFailure::InvalidInput(message))
    } else {
        Err(StepFailure::CheckFailed(message))
    }
}

/// The generic webhook's JSON: the message's fields and the line for people.
fn webhook_body(message: &Message) -> serde_json::Value {
    let mut body = serde_json::to_value(message).unwrap_or_default();
    if let Some(map) = body.as_object_mut() {
        map.insert("text".to_owned(), message.text().into());
    }
    body
}

/// `sha256=<hex>` of HMAC-SHA256(key, `<timestamp>.<body>`).
pub(crate) fn sign(key: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231-style check against an independent computation: key "key",
        // message "1700000000.{}".
        let got = sign("key", "1700000000", b"{}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").expect("any key length");
        mac.update(b"1700000000.{}");
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(got, want);
        assert_ne!(sign("other", "1700000000", b"{}"), want);
    }
}
