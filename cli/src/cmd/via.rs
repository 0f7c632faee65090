//! `cutover rollout ACTION ID --via URL`: the action goes through a `cutover serve` receiver,
//! which verifies the caller's token and vouches for them to the rollout.

use std::path::Path;
use std::time::Duration;

use anyhow::anyhow;
use cutover_workflows::guard::Action;

use crate::exit::{Failure, Outcome};

/// The token: `--token-file`, else CUTOVER_TOKEN. Never printed.
fn token(file: Option<&Path>) -> Result<String, Failure> {
    let text = match file {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| Failure::Input(anyhow!("cannot read the token file {}: {e}", p.display())))?,
        None => std::env::var("CUTOVER_TOKEN").map_err(|_| {
            Failure::Input(anyhow!(
                "--via needs a token: set CUTOVER_TOKEN or pass --token-file (make one with `cutover auth token`)"
            ))
        })?,
    };
    let token = text.trim().to_owned();
    if token.is_empty() {
        return Err(Failure::Input(anyhow!("the token is empty")));
    }
    Ok(token)
}

/// The endpoint's path for a rollout ID (`rollout/` may be left out, as everywhere).
fn path(id: &str, action: Action) -> Result<String, Failure> {
    let full = super::rollout_id(id)?;
    let bare = full.trim_start_matches("rollout/");
    Ok(format!("/rollouts/{bare}/{}", action.as_str()))
}

pub(crate) async fn act(
    url: &str,
    token_file: Option<&Path>,
    id: &str,
    action: Action,
    reason: Option<String>,
    full: bool,
    output: crate::cli::Output,
) -> Outcome {
    let token = token(token_file)?;
    let endpoint = format!("{}{}", url.trim_end_matches('/'), path(id, action)?);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Failure::Failed(e.into()))?;
    let response = client
        .post(&endpoint)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "reason": reason, "full": full }).to_string())
        .send()
        .await
        .map_err(|e| Failure::Failed(anyhow!("cannot reach {url}: {e}")))?;
    let status = response.status();
    let body: serde_json::Value = response
        .bytes()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let said = body
        .get("message")
        .or_else(|| body.get("reason"))
        .and_then(|v| v.as_str())
        .unwrap_or("(no answer)")
        .to_owned();
    if output == crate::cli::Output::Json {
        let mut json = body.clone();
        if let Some(map) = json.as_object_mut() {
            map.insert("status".to_owned(), status.as_u16().into());
        }
        println!("{json}");
        return if status.is_success() {
            Ok(())
        } else {
            Err(Failure::FailedReported)
        };
    }
    if status.is_success() {
        let by = body.get("by").and_then(|v| v.as_str()).unwrap_or("?");
        println!(
            "{by} ({}): {said}",
            body.get("verified").and_then(|v| v.as_str()).unwrap_or("?")
        );
        Ok(())
    } else if status.as_u16() == 401 {
        Err(Failure::Failed(anyhow!(
            "{} not authenticated: {said}",
            action.as_str()
        )))
    } else {
        Err(Failure::Failed(anyhow!(
            "{} refused ({status}): {said}",
            action.as_str()
        )))
    }
}
