//! DR drill activities on the host: PostgreSQL servers controlled with `pg_ctl` (as their OS
//! user), marker transactions, promotion, the app's endpoint file, and the app's checks.
//!
//! Every activity is safe to repeat: a stopped server stays stopped, a promoted one is
//! "already promoted", the endpoint file is rewritten with the same content.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cutover_client::poll;
use cutover_workflows::drill::contracts::{
    AppVerifyInput, At, MarkInput, MarkOutput, NodeInput, PreflightInput, PreflightOutput,
    SurveyInput, SurveyOutput, SwitchInput,
};
use cutover_workflows::drill::{AppCheck, DatabasePair};
use cutover_workflows::plan::SecretRef;
use sqlx::{Connection, PgConnection};

mod activities;
mod failback;
mod failover;

pub use activities::DrillActivityImpls;

pub(crate) use failback::{fence, rebuild};

use crate::error::StepFailure;
use crate::postgres::db_message;
use crate::secrets::Secrets;

const URL: &str = "url";
/// Most markers one drill writes.
const MAX_MARKERS: usize = 200_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A connection to one server, with its URL's password known for redaction.
async fn connect(url: &SecretRef) -> Result<(PgConnection, Secrets), StepFailure> {
    let secrets = Secrets::single(URL, url)?.with_url_password(URL);
    let text = secrets.get(URL).unwrap_or_default().to_owned();
    let conn = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&text))
        .await
        .map_err(|_| StepFailure::DatabaseUnavailable("connecting timed out".to_owned()))?
        .map_err(|e| StepFailure::DatabaseUnavailable(secrets.redact(&db_message(&e))))?;
    Ok((conn, secrets))
}

fn sql_error(secrets: &Secrets, e: &sqlx::Error) -> StepFailure {
    StepFailure::CheckFailed(secrets.redact(&db_message(e)))
}

pub(crate) async fn preflight(
    http: &reqwest::Client,
    input: &PreflightInput,
) -> Result<PreflightOutput, StepFailure> {
    let db = &input.plan.database;
    let (mut standby, s) = connect(&db.standby.url)
        .await
        .map_err(|e| StepFailure::CheckFailed(format!("the standby cannot be reached: {e}")))?;
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut standby)
        .await
        .map_err(|e| sql_error(&s, &e))?;
    if !in_recovery {
        return Err(StepFailure::CheckFailed(
            "the standby is not in recovery: it is a primary, not a standby".to_owned(),
        ));
    }
    let (mut primary, p) = connect(&db.primary.url)
        .await
        .map_err(|e| StepFailure::CheckFailed(format!("the primary cannot be reached: {e}")))?;
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT sync_state, COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint \
         FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 2 LIMIT 1",
    )
    .fetch_optional(&mut primary)
    .await
    .map_err(|e| sql_error(&p, &e))?;
    let Some((sync_state, lag)) = row else {
        return Err(StepFailure::CheckFailed(
            "no standby is streaming from the primary".to_owned(),
        ));
    };
    let lag = lag.max(0) as u64;
    if lag > input.plan.max_lag_bytes {
        return Err(StepFailure::CheckFailed(format!(
            "the standby is {lag} bytes behind, over max_lag ({} bytes)",
            input.plan.max_lag_bytes
        )));
    }
    for check in &input.plan.checks {
        check_once(http, check).await?;
    }
    Ok(PreflightOutput {
        lag_bytes: lag,
        sync_state,
    })
}

async fn check_once(http: &reqwest::Client, check: &AppCheck) -> Result<(), StepFailure> {
    let resp = http
        .get(&check.url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| StepFailure::CheckFailed(format!("{}: {e}", check.url)))?;
    if resp.status().as_u16() != check.expect_status {
        return Err(StepFailure::CheckFailed(format!(
            "{}: expected status {}, got {}",
            check.url,
            check.expect_status,
            resp.status().as_u16()
        )));
    }
    Ok(())
}

pub(crate) async fn mark(input: &MarkInput) -> Result<MarkOutput, StepFailure> {
    let (mut conn, secrets) = connect(&input.primary).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS cutover_drill_markers (run text NOT NULL, n bigint NOT NULL, \
         at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run, n))",
    )
    .execute(&mut conn)
    .await
    .map_err(|e| sql_error(&secrets, &e))?;
    let deadline = Instant::now() + Duration::from_millis(input.for_ms);
    let mut out = MarkOutput::default();
    let mut n: u64 = 0;
    loop {
        if Instant::now() >= deadline {
            out.ended_by = "duration".to_owned();
            break;
        }
        if out.markers.len() >= MAX_MARKERS {
            out.ended_by = format!("the limit of {MAX_MARKERS} markers");
            break;
        }
        n += 1;
        let written = sqlx::query("INSERT INTO cutover_drill_markers (run, n) VALUES ($1, $2)")
            .bind(&input.run)
            .bind(n as i64)
            .execute(&mut conn)
            .await;
        if let Err(e) = written {
            out.ended_by = format!("the primary: {}", secrets.redact(&db_message(&e)));
            break;
        }
        // Acknowledged: the WAL position right after the commit.
        match sqlx::query_scalar::<_, String>("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&mut conn)
            .await
        {
            Ok(lsn) => out.markers.push((n, lsn)),
            Err(e) => {
                // The commit was acknowledged; its position is not known. Keep the marker.
                let last = out.markers.last().map(|m| m.1.clone()).unwrap_or_default();
                out.markers.push((n, last));
                out.ended_by = format!("the primary: {}", secrets.redact(&db_message(&e)));
                break;
            }
        }
    }
    Ok(out)
}

/// `pg_ctl` and friends, run as the data directory's owner when we are root.
struct PgTools {
    bin: PathBuf,
    user: Option<String>,
}

impl PgTools {
    fn for_pair(db: &DatabasePair) -> Result<Self, StepFailure> {
        let bin = match &db.bin_dir {
            Some(b) => PathBuf::from(b),
            None => {
                let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                    .map_err(|e| {
                        StepFailure::io(
                            "finding PostgreSQL's binaries under /usr/lib/postgresql",
                            e,
                        )
                    })?
                    .flatten()
                    .map(|e| e.path().join("bin"))
                    .filter(|b| b.join("pg_ctl").is_file())
                    .collect();
                found.sort();
                found.pop().ok_or_else(|| {
                    StepFailure::InvalidInput(
                        "no pg_ctl under /usr/lib/postgresql/*/bin: set database.bin_dir"
                            .to_owned(),
                    )
                })?
            }
        };
        let root = nix::unistd::Uid::effective().is_root();
        Ok(Self {
            bin,
            user: db.os_user.clone().filter(|_| root),
        })
    }

    async fn run(&self, tool: &str, args: &[&str]) -> Result<(bool, String), StepFailure> {
        self.run_with(tool, args, &[]).await
    }

    /// Like `run`, with environment variables (a password goes here, not in the arguments,
    /// which every local user can read in `ps`).
    async fn run_with(
        &self,
        tool: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(bool, String), StepFailure> {
        let program = self.bin.join(tool);
        let mut cmd = match &self.user {
            Some(user) => {
                let mut c = tokio::process::Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => tokio::process::Command::new(&program),
        };
        let out = cmd
            .args(args)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| StepFailure::io(format!("running {}", program.display()), e))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok((out.status.success(), text.trim().to_owned()))
    }

    /// Writes a file in a data directory, owned by the OS user and readable only by it.
    fn write_owned(&self, path: &Path, bytes: &[u8]) -> Result<(), StepFailure> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, bytes)
            .map_err(|e| StepFailure::io(format!("writing {}", path.display()), e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| StepFailure::io(format!("chmod {}", path.display()), e))?;
        if let Some(name) = &self.user {
            let user = nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .ok_or_else(|| StepFailure::InvalidInput(format!("no OS user `{name}`")))?;
            std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .map_err(|e| StepFailure::io(format!("chown {}", path.display()), e))?;
        }
        Ok(())
    }

    async fn running(&self, data_dir: &str) -> Result<bool, StepFailure> {
        Ok(self.run("pg_ctl", &["-D", data_dir, "status"]).await?.0)
    }
}

pub(crate) async fn fault(input: &NodeInput) -> Result<At, StepFailure> {
    let tools = PgTools::for_pair(&input.database)?;
    let dir = input.node.data_dir.as_str();
    if !tools.running(dir).await? {
        return Ok(At {
            at_ms: now_ms(),
            note: "the primary was already stopped".to_owned(),
        });
    }
    if input.graceful {
        wait_caught_up(&input.node.url).await?;
    }
    let mode = if input.graceful { "fast" } else { "immediate" };
    let (ok, text) = tools
        .run("pg_ctl", &["-D", dir, "-m", mode, "-w", "stop"])
        .await?;
    let at_ms = now_ms();
    if !ok && tools.running(dir).await? {
        return Err(StepFailure::CheckFailed(format!(
            "pg_ctl stop failed: {text}"
        )));
    }
    Ok(At {
        at_ms,
        note: format!("primary stopped ({mode})"),
    })
}

/// Waits until every streaming standby has replayed all the primary's WAL.
async fn wait_caught_up(primary: &SecretRef) -> Result<(), StepFailure> {
    let (mut conn, secrets) = connect(primary).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let behind: i64 = sqlx::query_scalar(
            "SELECT COALESCE(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), -1)::bigint \
             FROM pg_stat_replication WHERE state = 'streaming'",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(|e| sql_error(&secrets, &e))?;
        if behind == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(StepFailure::CheckFailed(format!(
                "the standby did not catch up within 60 s ({behind} bytes behind)"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) async fn restart(input: &NodeInput) -> Result<At, StepFailure> {
    let tools = PgTools::for_pair(&input.database)?;
    let dir = input.node.data_dir.as_str();
    if tools.running(dir).await? {
        return Ok(At {
            at_ms: now_ms(),
            note: format!("{dir} was still running"),
        });
    }
    let log = Path::new(dir).join("cutover-restart.log");
    let (ok, text) = tools
        .run(
            "pg_ctl",
            &[
                "-D",
                dir,
                "-l",
                log.to_str().unwrap_or_default(),
                "-w",
                "start",
            ],
        )
        .await?;
    if !ok {
        return Err(StepFailure::CheckFailed(format!(
            "pg_ctl start failed: {text}"
        )));
    }
    Ok(At {
        at_ms: now_ms(),
        note: format!("{dir} was restarted"),
    })
}

pub(crate) async fn promote(input: &NodeInput) -> Result<At, StepFailure> {
    let (mut conn, secrets) = connect(&input.node.url).await?;
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| sql_error(&secrets, &e))?;
    let note = if in_recovery {
        let promoted: bool = sqlx::query_scalar("SELECT pg_promote(true, 60)")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| sql_error(&secrets, &e))?;
        if !promoted {
            return Err(StepFailure::CheckFailed(
                "pg_promote did not finish within 60 s".to_owned(),
            ));
        }
        "standby promoted"
    } else {
        "already promoted"
    };
    // Writable: a write commits (a promoted server may refuse writes for a while, or for good).
    let within = match input.within_ms {
        0 => Duration::from_secs(60),
        ms => Duration::from_millis(ms),
    };
    let deadline = Instant::now() + within;
    loop {
        let written = sqlx::query(
            "CREATE TABLE IF NOT EXISTS cutover_drill_markers (run text NOT NULL, \
             n bigint NOT NULL, at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run, n))",
        )
        .execute(&mut conn)
        .await;
        match written {
            Ok(_) => break,
            Err(e) if Instant::now() > deadline => {
                return Err(StepFailure::CheckFailed(format!(
                    "{note}, but it did not accept a write within {} ms: {}",
                    within.as_millis(),
                    secrets.redact(&db_message(&e))
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Ok(At {
        at_ms: now_ms(),
        note: note.to_owned(),
    })
}

/// `drill.switch` on Kubernetes: the URL resolved here, written to the app's Secret key.
pub(crate) async fn switch_kube(
    endpoints: &crate::kube::Endpoints,
    input: &SwitchInput,
    to: &cutover_workflows::drill::contracts::KubeEndpoint,
) -> Result<At, StepFailure> {
    let secrets = Secrets::single(URL, &input.primary)?.with_url_password(URL);
    let url = secrecy::SecretString::from(secrets.get(URL).unwrap_or_default().to_owned());
    endpoints
        .switch(to, &url)
        .await
        .map_err(|e| secrets.redact_failure(e))
}

pub(crate) async fn switch(input: &SwitchInput) -> Result<At, StepFailure> {
    use std::os::unix::fs::PermissionsExt;
    let secrets = Secrets::single(URL, &input.primary)?;
    let url = secrets.get(URL).unwrap_or_default();
    let path = Path::new(&input.endpoint_file);
    let tmp = path.with_extension("cutover-tmp");
    std::fs::write(&tmp, format!("{url}\n"))
        .map_err(|e| StepFailure::io(format!("writing {}", tmp.display()), e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| StepFailure::io(format!("chmod {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| StepFailure::io(format!("replacing {}", path.display()), e))?;
    Ok(At {
        at_ms: now_ms(),
        note: format!("{} points at the new primary", path.display()),
    })
}

pub(crate) async fn verify(
    http: &reqwest::Client,
    input: &AppVerifyInput,
) -> Result<At, StepFailure> {
    let attempts = std::sync::atomic::AtomicU32::new(0);
    poll::until_ok(
        Duration::from_millis(input.within_ms),
        Duration::from_millis(50),
        || async {
            let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            verify_once(http, input, attempt).await.map(|at_ms| At {
                at_ms,
                note: format!("app checks passed (attempt {attempt})"),
            })
        },
    )
    .await
    .map_err(|last| {
        StepFailure::CheckFailed(format!(
            "the app checks did not pass within {} ms: {last}",
            input.within_ms
        ))
    })
}

/// One round of checks; the time of the verified write (or of the checks, without one).
async fn verify_once(
    http: &reqwest::Client,
    input: &AppVerifyInput,
    attempt: u32,
) -> Result<i64, StepFailure> {
    for check in &input.checks {
        check_once(http, check).await?;
    }
    let Some(write) = &input.write_check else {
        return Ok(now_ms());
    };
    let name = format!("drill {} #{attempt}", input.run);
    let resp = http
        .post(&write.url)
        .header("content-type", "application/json")
        .body(serde_json::json!({ "name": name }).to_string())
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| StepFailure::CheckFailed(format!("write to {}: {e}", write.url)))?;
    let written_at = now_ms();
    if !resp.status().is_success() {
        return Err(StepFailure::CheckFailed(format!(
            "write to {}: status {}",
            write.url,
            resp.status().as_u16()
        )));
    }
    let body = http
        .get(&write.url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| StepFailure::CheckFailed(format!("read from {}: {e}", write.url)))?
        .text()
        .await
        .unwrap_or_default();
    if !body.contains(&name) {
        return Err(StepFailure::CheckFailed(format!(
            "the write to {} is not in what it reads back",
            write.url
        )));
    }
    Ok(written_at)
}

pub(crate) async fn survey(input: &SurveyInput) -> Result<SurveyOutput, StepFailure> {
    let (mut conn, secrets) = connect(&input.primary).await?;
    let present: Vec<i64> =
        sqlx::query_scalar("SELECT n FROM cutover_drill_markers WHERE run = $1")
            .bind(&input.run)
            .fetch_all(&mut conn)
            .await
            .map_err(|e| sql_error(&secrets, &e))?;
    let present: BTreeSet<u64> = present.into_iter().map(|n| n as u64).collect();
    let lost: Vec<&(u64, String)> = input
        .acknowledged
        .iter()
        .filter(|(n, _)| !present.contains(n))
        .collect();
    let last_acked = input.acknowledged.last().map(|m| m.1.clone());
    let last_kept = input
        .acknowledged
        .iter()
        .rev()
        .find(|(n, _)| present.contains(n))
        .map(|m| m.1.clone());
    let lost_bytes = match (last_acked, last_kept, lost.is_empty()) {
        (_, _, true) => 0,
        (Some(a), Some(k), false) => sqlx::query_scalar::<_, i64>(
            "SELECT GREATEST(pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn), 0)::bigint",
        )
        .bind(a)
        .bind(k)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| sql_error(&secrets, &e))? as u64,
        _ => 0,
    };
    Ok(SurveyOutput {
        lost: lost.len() as u64,
        lost_markers: lost.iter().take(100).map(|m| m.0).collect(),
        lost_bytes,
    })
}
