//! Activities run on their own through the SDK's `ActivityEnvironment`, against real HTTP
//! servers and real processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use cutover_activities::RolloutActivityImpls;
use cutover_tests::wait_for;
use cutover_workflows::contracts::{BuildInput, CommandInput, StepRef, VerifyInput};
use cutover_workflows::plan::{BuildSpec, CommandSpec, JsonExpectation, VerifySpec};
use temporalio_common::ActivityError;
use temporalio_sdk::testing::{ActivityEnvironment, ActivityEnvironmentError};

/// A real HTTP server on a loopback port: `/health` answers 503 for the first `flaps`
/// requests, then 200 with a JSON body.
async fn serve(flaps: u32) -> anyhow::Result<(String, Arc<AtomicU32>)> {
    let hits = Arc::new(AtomicU32::new(0));
    let counter = hits.clone();
    let app = Router::new().route(
        "/health",
        get(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < flaps {
                    (StatusCode::SERVICE_UNAVAILABLE, "warming up".to_owned())
                } else {
                    (
                        StatusCode::OK,
                        r#"{"status":"ok","version":"1.2.3"}"#.to_owned(),
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/health", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, hits))
}

fn step() -> StepRef {
    StepRef {
        rollout: "rollout/test/activities".to_owned(),
        step: "check".to_owned(),
        attempt: 1,
    }
}

fn spec(url: &str) -> VerifySpec {
    VerifySpec {
        url: url.to_owned(),
        method: "GET".to_owned(),
        expect_status: 200,
        body_contains: None,
        json: None,
        request_timeout: Duration::from_secs(2),
        consecutive: 1,
        within: Duration::from_secs(5),
        interval: Duration::from_millis(50),
    }
}

fn env() -> ActivityEnvironment {
    ActivityEnvironment::builder()
        .register_activities(RolloutActivityImpls::default())
        .build()
}

/// (type name, non-retryable, message) of an activity's application failure.
fn failure(err: ActivityEnvironmentError) -> (String, bool, String) {
    match err {
        ActivityEnvironmentError::Activity(ActivityError::Application(app)) => (
            app.type_name().unwrap_or_default().to_owned(),
            app.is_non_retryable(),
            app.source_error().to_string(),
        ),
        other => panic!("expected an application failure, got {other:?}"),
    }
}

#[tokio::test]
async fn verify_checks_status_body_and_json_pointer() -> anyhow::Result<()> {
    let (url, _) = serve(0).await?;
    let mut s = spec(&url);
    s.body_contains = Some("ok".to_owned());
    s.json = Some(JsonExpectation {
        pointer: "/version".to_owned(),
        equals: serde_json::json!("1.2.3"),
    });
    let out = env()
        .run(
            RolloutActivityImpls::verify,
            VerifyInput {
                step: step(),
                spec: s,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(out.last_status, 200);
    assert_eq!(out.checks, 1);
    Ok(())
}

#[tokio::test]
async fn verify_waits_for_n_passes_in_a_row() -> anyhow::Result<()> {
    let (url, hits) = serve(3).await?;
    let mut s = spec(&url);
    s.consecutive = 4;
    let out = env()
        .run(
            RolloutActivityImpls::verify,
            VerifyInput {
                step: step(),
                spec: s,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(out.consecutive_passes, 4);
    assert_eq!(out.checks, 7, "3 failures, then 4 passes");
    assert_eq!(hits.load(Ordering::SeqCst), 7);
    Ok(())
}

#[tokio::test]
async fn verify_failure_says_what_was_expected_and_what_came_back() -> anyhow::Result<()> {
    let (url, _) = serve(u32::MAX).await?;
    let mut s = spec(&url);
    s.within = Duration::from_millis(300);
    let err = env()
        .run(
            RolloutActivityImpls::verify,
            VerifyInput {
                step: step(),
                spec: s,
            },
        )
        .await
        .expect_err("the service never becomes healthy");
    let (kind, non_retryable, message) = failure(err);
    assert_eq!(kind, "CheckFailed");
    assert!(!non_retryable, "a failed check may pass on a later attempt");
    assert!(message.contains("expected status 200"), "{message}");
    assert!(
        message.contains("got status 503 with body \"warming up\""),
        "{message}"
    );

    let (url, _) = serve(0).await?;
    let mut s = spec(&url);
    s.json = Some(JsonExpectation {
        pointer: "/version".to_owned(),
        equals: serde_json::json!("2.0.0"),
    });
    s.within = Duration::from_millis(100);
    let err = env()
        .run(
            RolloutActivityImpls::verify,
            VerifyInput {
                step: step(),
                spec: s,
            },
        )
        .await
        .expect_err("wrong version");
    let (_, _, message) = failure(err);
    assert!(message.contains("JSON /version = \"2.0.0\""), "{message}");
    assert!(message.contains("got /version = \"1.2.3\""), "{message}");
    Ok(())
}

#[tokio::test]
async fn verify_reports_a_refused_connection_and_a_bad_url() -> anyhow::Result<()> {
    let port = cutover_tests::free_port()?;
    let mut s = spec(&format!("http://127.0.0.1:{port}/health"));
    s.within = Duration::from_millis(100);
    let err = env()
        .run(
            RolloutActivityImpls::verify,
            VerifyInput {
                step: step(),
                spec: s,
            },
        )
        .await
        .expect_err("nothing listens");
    let (_, _, message) = failure(err);
    assert!(
        message.contains("got no response: connection refused"),
        "{message}"
    );

    let s = spec("http://exa mple/");
    let err = env()
        .run(
            RolloutActivityImpls::verify,
            VerifyInput {
                step: step(),
                spec: s,
            },
        )
        .await
        .expect_err("bad URL");
    let (kind, non_retryable, _) = failure(err);
    assert_eq!(kind, "InvalidInput");
    assert!(non_retryable);
    Ok(())
}

#[tokio::test]
async fn build_fails_with_the_exit_code_and_the_last_20_lines_of_stderr() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = BuildSpec {
        command: CommandSpec {
            command: "sh".to_owned(),
            args: vec![
                "-c".to_owned(),
                "for i in $(seq 1 30); do echo line$i >&2; done; exit 4".to_owned(),
            ],
            workdir: Some(dir.path().display().to_string()),
            ..CommandSpec::default()
        },
        artifact: None,
    };
    let err = env()
        .run(
            RolloutActivityImpls::build,
            BuildInput { step: step(), spec },
        )
        .await
        .expect_err("exit 4");
    let (kind, non_retryable, message) = failure(err);
    assert_eq!(kind, "CommandFailed");
    assert!(!non_retryable);
    assert!(
        message.starts_with("`sh` exited with code 4; last 20 line(s) of stderr:"),
        "{message}"
    );
    assert!(
        message.contains("line11\n") && message.ends_with("line30"),
        "{message}"
    );
    assert!(
        !message.contains("line10\n"),
        "only the last 20 lines: {message}"
    );
    Ok(())
}

#[tokio::test]
async fn a_build_without_its_artifact_is_not_retried() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = BuildSpec {
        command: CommandSpec {
            command: "true".to_owned(),
            workdir: Some(dir.path().display().to_string()),
            ..CommandSpec::default()
        },
        artifact: Some("target/app".to_owned()),
    };
    let err = env()
        .run(
            RolloutActivityImpls::build,
            BuildInput { step: step(), spec },
        )
        .await
        .expect_err("no artifact");
    let (kind, non_retryable, message) = failure(err);
    assert_eq!(kind, "ArtifactMissing");
    assert!(non_retryable);
    assert!(message.contains("target/app"), "{message}");
    Ok(())
}

#[tokio::test]
async fn secrets_reach_the_command_but_not_its_logged_output() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let secret_file = dir.path().join("token");
    std::fs::write(&secret_file, "s3cr3t-value\n")?;
    let spec = CommandSpec {
        command: "sh".to_owned(),
        args: vec![
            "-c".to_owned(),
            "echo \"token is $TOKEN\" >&2; [ \"$TOKEN\" = s3cr3t-value ] && exit 9".to_owned(),
        ],
        secret_env: [(
            "TOKEN".to_owned(),
            cutover_workflows::plan::SecretRef::File(secret_file.display().to_string()),
        )]
        .into(),
        ..CommandSpec::default()
    };
    let err = env()
        .run(
            RolloutActivityImpls::run_command,
            CommandInput { step: step(), spec },
        )
        .await
        .expect_err("exit 9 proves the secret arrived");
    let (_, _, message) = failure(err);
    assert!(message.contains("exited with code 9"), "{message}");
    assert!(message.contains("token is ***"), "{message}");
    assert!(
        !message.contains("s3cr3t-value"),
        "the secret leaked: {message}"
    );
    Ok(())
}

#[tokio::test]
async fn cancelling_a_command_kills_its_whole_process_group() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pids = dir.path().join("pids");
    // The shell starts two sleeping children and records every pid.
    let script = format!(
        "sleep 300 & echo $! >> {p}; sleep 300 & echo $! >> {p}; echo $$ >> {p}; wait",
        p = pids.display()
    );
    let spec = CommandSpec {
        command: "sh".to_owned(),
        args: vec!["-c".to_owned(), script],
        ..CommandSpec::default()
    };
    let env = Arc::new(env());
    let runner = env.clone();
    let task = tokio::spawn(async move {
        runner
            .run(
                RolloutActivityImpls::run_command,
                CommandInput { step: step(), spec },
            )
            .await
    });
    let recorded: Vec<i32> = wait_for(Duration::from_secs(10), "three pids", || {
        let text = std::fs::read_to_string(&pids).unwrap_or_default();
        async move {
            let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            (pids.len() == 3).then_some(pids)
        }
    })
    .await?;
    env.cancel();
    let result = tokio::time::timeout(Duration::from_secs(15), task).await??;
    assert!(
        matches!(
            result,
            Err(ActivityEnvironmentError::Activity(
                ActivityError::Cancelled { .. }
            ))
        ),
        "{result:?}"
    );
    for pid in recorded {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or_default()
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false);
        assert!(!alive, "process {pid} survived the cancellation");
    }
    Ok(())
}
