//! `cutover host stop SERVICE [ENVIRONMENT]`: tear a service down on this machine.

use std::path::Path;
use std::time::Duration;

use anyhow::anyhow;

use crate::exit::{Failure, Outcome};

pub(crate) async fn stop(
    service: &str,
    environment: Option<&str>,
    root: &Path,
    grace: Duration,
) -> Outcome {
    for (what, value) in [("SERVICE", Some(service)), ("ENVIRONMENT", environment)] {
        if let Some(v) = value {
            cutover_workflows::name::Name::parse(v)
                .map_err(|e| Failure::Input(anyhow!("{what}: {e}")))?;
        }
    }
    let out = cutover_activities::teardown(root, service, environment, grace)
        .await
        .map_err(|e| Failure::Failed(anyhow!("{e}")))?;
    let env = out
        .environment
        .map(|e| format!(" in {e}"))
        .unwrap_or_default();
    if out.instances.is_empty() && !out.nginx {
        println!(
            "{service}{env}: nothing was running under {}",
            root.display()
        );
    } else {
        println!(
            "{service}{env}: stopped {} instance(s){}{}",
            out.instances.len(),
            if out.instances.is_empty() {
                String::new()
            } else {
                format!(" ({})", out.instances.join(", "))
            },
            if out.nginx { " and its nginx" } else { "" }
        );
    }
    Ok(())
}
