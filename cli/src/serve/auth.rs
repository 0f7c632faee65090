//! Who sent a delivery: signatures and tokens, compared in constant time.
//!
//! - GitHub: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body.
//! - GitLab: `X-Gitlab-Token`, the webhook's secret token itself.
//! - Generic: `<signature header>: sha256=<hex>`, HMAC-SHA256 of `<timestamp>.<raw body>`, with
//!   the timestamp (Unix seconds) in its own header and accepted only within a tolerance
//!   window, so a captured request cannot be replayed later.
//!
//! Each provider may have several secrets at once (rotation): any of them verifies. Secret
//! values never leave this module: errors say only "signature mismatch".

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// A provider's secrets, each a [`SecretSlice`] (zeroed on drop, never printed). `Debug` shows
/// how many, never what.
#[derive(Clone, Default)]
pub(crate) struct Secrets(Vec<SecretSlice<u8>>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} configured)", self.0.len())
    }
}

impl Secrets {
    /// One secret per non-empty line of `text` (an environment variable or a file).
    pub(crate) fn from_lines(text: &str) -> Self {
        Self(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| SecretSlice::from(l.as_bytes().to_vec()))
                .collect(),
        )
    }

    /// Adds `other`'s secrets.
    pub(crate) fn extend(&mut self, other: Secrets) {
        self.0.extend(other.0);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Why a delivery was not authenticated. Deliberately uninformative to the sender.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Mismatch;

/// `sha256=<hex>` in `header` must be the HMAC of `signed` under one of `secrets`.
fn hmac_matches(secrets: &Secrets, header: Option<&str>, parts: &[&[u8]]) -> Result<(), Mismatch> {
    let given = header
        .and_then(|h| h.trim().strip_prefix("sha256="))
        .and_then(|hex| hex::decode(hex).ok())
        .ok_or(Mismatch)?;
    let mut ok = false;
    for secret in &secrets.0 {
        let Ok(mut mac) = HmacSha256::new_from_slice(secret.expose_secret()) else {
            continue;
        };
        for p in parts {
            mac.update(p);
        }
        // `verify_slice` compares in constant time.
        ok |= mac.verify_slice(&given).is_ok();
    }
    if ok { Ok(()) } else { Err(Mismatch) }
}

/// GitHub: `X-Hub-Signature-256`.
pub(crate) fn github(
    secrets: &Secrets,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), Mismatch> {
    hmac_matches(secrets, signature, &[body])
}

/// GitLab: `X-Gitlab-Token` equals one of the secrets.
pub(crate) fn gitlab(secrets: &Secrets, token: Option<&str>) -> Result<(), Mismatch> {
    let token = token.ok_or(Mismatch)?.as_bytes();
    let mut ok = subtle::Choice::from(0);
    for secret in &secrets.0 {
        ok |= secret.expose_secret().ct_eq(token);
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(Mismatch)
    }
}

/// Generic: the timestamp within `tolerance` of `now` (Unix seconds), and the signature over
/// `<timestamp>.<body>`.
pub(crate) fn generic(
    secrets: &Secrets,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), Mismatch> {
    let ts_text = timestamp.ok_or(Mismatch)?.trim();
    let ts: i64 = ts_text.parse().map_err(|_| Mismatch)?;
    if now.abs_diff(ts) > tolerance.as_secs() {
        return Err(Mismatch);
    }
    hmac_matches(secrets, signature, &[ts_text.as_bytes(), b".", body])
}

/// The `sha256=<hex>` signature GitHub puts in `X-Hub-Signature-256`.
#[cfg(test)]
pub(crate) fn sign_github(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The `sha256=<hex>` signature a generic sender puts in its header.
#[cfg(test)]
fn sign_generic(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's documented example: https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
    #[test]
    fn githubs_documented_example_verifies_and_one_changed_byte_does_not() {
        let secrets = Secrets::from_lines("It's a Secret to Everybody");
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(github(&secrets, Some(sig), b"Hello, World!"), Ok(()));
        assert_eq!(github(&secrets, Some(sig), b"Hello, World?"), Err(Mismatch));
        let mut flipped = sig.to_owned();
        flipped.replace_range(70..71, "0");
        assert_eq!(
            github(&secrets, Some(&flipped), b"Hello, World!"),
            Err(Mismatch)
        );
        assert_eq!(github(&secrets, None, b"Hello, World!"), Err(Mismatch));
        assert_eq!(
            github(&secrets, Some("sha1=abc"), b"Hello, World!"),
            Err(Mismatch)
        );
        assert_eq!(
            github(&secrets, Some("sha256=zz"), b"Hello, World!"),
            Err(Mismatch)
        );
    }

    #[test]
    fn any_of_several_secrets_verifies_during_a_rotation() {
        let secrets = Secrets::from_lines("old-secret\n\nIt's a Secret to Everybody\n");
        assert_eq!(secrets.len(), 2);
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(github(&secrets, Some(sig), b"Hello, World!"), Ok(()));
        assert_eq!(
            github(&Secrets::default(), Some(sig), b"Hello, World!"),
            Err(Mismatch)
        );
        assert!(!format!("{secrets:?}").contains("secret"), "{secrets:?}");
    }

    #[test]
    fn gitlab_tokens_compare_whole() {
        let secrets = Secrets::from_lines("tok-1\ntok-2");
        assert_eq!(gitlab(&secrets, Some("tok-2")), Ok(()));
        assert_eq!(gitlab(&secrets, Some("tok-")), Err(Mismatch));
        assert_eq!(gitlab(&secrets, Some("tok-22")), Err(Mismatch));
        assert_eq!(gitlab(&secrets, None), Err(Mismatch));
    }

    #[test]
    fn generic_signatures_expire() {
        let secrets = Secrets::from_lines("s3cret");
        let body = br#"{"repository":"acme/hello"}"#;
        let sig = sign_generic(b"s3cret", 1_000, body);
        let window = Duration::from_secs(300);
        assert_eq!(
            generic(&secrets, Some(&sig), Some("1000"), body, 1_200, window),
            Ok(())
        );
        assert_eq!(
            generic(&secrets, Some(&sig), Some("1000"), body, 1_301, window),
            Err(Mismatch),
            "too late"
        );
        assert_eq!(
            generic(&secrets, Some(&sig), Some("1001"), body, 1_000, window),
            Err(Mismatch),
            "other time"
        );
        assert_eq!(
            generic(&secrets, Some(&sig), None, body, 1_000, window),
            Err(Mismatch)
        );
        assert_eq!(
            generic(&secrets, Some(&sig), Some("soon"), body, 1_000, window),
            Err(Mismatch)
        );
    }
}
