//! The entry the `delivery` fuzz target drives (`fuzz/`): a request's headers and body through
//! the payload parsers, the rules and the signature checks a delivery goes through, with
//! fixed secrets. Nothing here may panic, whatever the bytes; that is what the fuzzer checks.

use std::time::Duration;

use super::auth::{self, Secrets};
use super::events;

const RULES: &str = "rules:\n  - { name: main, provider: github, repository: acme/hello, event: push, branch: main, plan: plan.yaml, environment: staging }\n  - { name: previews, provider: github, repository: acme/hello, event: push, branch: \"feature/*\", plan: plan.yaml, environment: \"preview-{branch}\", version: commit_sha }\n  - { name: lab, provider: gitlab, repository: acme/hello, event: push, branch: main, plan: plan.yaml, environment: lab }\n  - { name: generic, provider: generic, repository: acme/hello, event: tag, tag: \"v*\", plan: plan.yaml, environment: production }\n";

/// Splits `data` as `<event>\n<signature>\n<timestamp>\n<body>` (missing parts are empty) and
/// runs every parser and check on it. Returns how many checks accepted it, so the work is not
/// optimised away.
#[doc(hidden)]
pub fn delivery(data: &[u8]) -> usize {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let mut next = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (event, signature, timestamp) = (next(), next(), next());
    let body = data.splitn(4, |b| *b == b'\n').nth(3).unwrap_or_default();
    let secrets = Secrets::from_lines("fuzz-secret\nanother-secret\n");
    let mut accepted = 0;
    accepted += usize::from(auth::github(&secrets, Some(&signature), body).is_ok());
    accepted += usize::from(auth::gitlab(&secrets, Some(&signature)).is_ok());
    accepted += usize::from(
        auth::generic(
            &secrets,
            Some(&signature),
            Some(&timestamp),
            body,
            1_700_000_000,
            Duration::from_secs(300),
        )
        .is_ok(),
    );
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let rules = super::rules::parse_triggers(RULES);
        for parsed in [
            events::github(&event, &value),
            events::gitlab(&event, &value),
            events::generic(&value).unwrap_or(events::Parsed::Ignored(String::new())),
        ] {
            if let (events::Parsed::Event(e), Ok(rules)) = (parsed, &rules) {
                accepted += usize::from(rules.decide(&e).is_ok());
            }
        }
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_rules_parse_and_a_signed_push_passes_every_stage() {
        assert!(super::super::rules::parse_triggers(RULES).is_ok());
        let body = br#"{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","repository":{"full_name":"acme/hello"}}"#;
        let signature = auth::sign_github(b"fuzz-secret", body);
        let mut data = format!("push\n{signature}\n0\n").into_bytes();
        data.extend_from_slice(body);
        // The GitHub signature and the rule decision.
        assert_eq!(delivery(&data), 2);
        assert_eq!(delivery(b"\xff\n\n\n{"), 0);
    }
}
