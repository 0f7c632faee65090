//! `cutover audit [verify]` and `cutover auth keygen|token`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow};
use base64::Engine;
use cutover_ledger::AuditFilter;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;

use super::ledger::{open, when};
use crate::cli::Output;
use crate::exit::{Failure, Outcome};

pub(crate) async fn list(
    url: Option<&str>,
    service: Option<String>,
    since: Option<i64>,
    last: u32,
    output: Output,
) -> Outcome {
    let ledger = open(url).await?;
    let rows = ledger
        .audit(&AuditFilter {
            service,
            since,
            limit: Some(i64::from(last)),
        })
        .await
        .map_err(|e| Failure::Failed(e.into()))?;
    if output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).context("encoding")?
        );
        return Ok(());
    }
    if rows.is_empty() {
        println!("no human actions recorded");
        return Ok(());
    }
    for r in rows {
        let e = &r.entry;
        println!(
            "{:>5}  {}  {:<8} {:<9} {} ({})  {}{}{}",
            r.position,
            when(e.at),
            e.action,
            e.outcome,
            e.person,
            e.verified,
            e.subject,
            e.step
                .as_deref()
                .map(|s| format!(" step {s}"))
                .unwrap_or_default(),
            e.reason
                .as_deref()
                .map(|s| format!(" — {s}"))
                .unwrap_or_default(),
        );
    }
    Ok(())
}

pub(crate) async fn verify(url: Option<&str>) -> Outcome {
    let ledger = open(url).await?;
    match ledger
        .verify_audit()
        .await
        .map_err(|e| Failure::Failed(e.into()))?
    {
        Ok((count, last)) => {
            println!("audit trail intact: {count} rows, last hash {last}");
            println!(
                "  (keep the count and hash elsewhere to detect rows removed from the end later)"
            );
            Ok(())
        }
        Err(problem) => Err(Failure::Failed(anyhow!("audit trail broken: {problem}"))),
    }
}

fn random32() -> Result<[u8; 32], Failure> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Failure::Failed(anyhow!("no randomness: {e}")))?;
    Ok(bytes)
}

pub(crate) fn keygen(path: &Path) -> Outcome {
    let key = SigningKey::from_bytes(&random32()?);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Failure::Failed(anyhow!("encoding the key: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        Failure::Input(anyhow!(
            "cannot create {}: {e} (it is never overwritten)",
            path.display()
        ))
    })?;
    file.write_all(pem.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "private key written to {} (for `cutover serve --access`: signing_key: {{ file: ... }})",
        path.display()
    );
    println!("public key (for cutover-worker --assertion-public-key):");
    println!("{}", hex::encode(key.verifying_key().to_bytes()));
    Ok(())
}

pub(crate) fn token() -> Outcome {
    let token = format!(
        "cut_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random32()?)
    );
    println!("token (give it to the person; it is not stored):\n{token}");
    println!(
        "line for their `tokens:` list in the tokens file:\n- {}",
        crate::serve::access::hash_line(&token)
    );
    Ok(())
}
