//! Failback and fencing: a promoted server stopped so one primary remains, and a server rebuilt
//! as a streaming standby of the current primary.
//!
//! `pg_rewind` (and a base backup) copy the source's configuration files over the target's, so
//! the target's own `postgresql.conf`, `postgresql.auto.conf`, `pg_hba.conf` and `pg_ident.conf`
//! are saved beside the data directory first (`<data_dir>.cutover-config`) and put back after;
//! the saved copy survives a crash of the worker, so a retried rebuild restores the right files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_workflows::drill::contracts::{At, NodeInput, RebuildInput};
use cutover_workflows::plan::SecretRef;

use cutover_client::poll;

use super::{PgTools, URL, connect, now_ms, sql_error};
use crate::error::StepFailure;
use crate::secrets::Secrets;

/// The files a server keeps as its own through a rewind or a base backup.
const OWN_CONFIG: [&str; 4] = [
    "postgresql.conf",
    "postgresql.auto.conf",
    "pg_hba.conf",
    "pg_ident.conf",
];

/// How long a rebuilt standby has to start streaming.
const STREAMING_WITHIN: Duration = Duration::from_secs(120);

/// How long a server found already in recovery has to show it follows the source.
const ALREADY_WITHIN: Duration = Duration::from_secs(20);

pub(crate) async fn fence(input: &NodeInput) -> Result<At, StepFailure> {
    let tools = PgTools::for_pair(&input.database)?;
    let dir = input.node.data_dir.as_str();
    if !tools.running(dir).await? {
        return Ok(At {
            at_ms: now_ms(),
            note: format!("{dir} was already stopped"),
        });
    }
    // A server that cannot answer is in an unknown state: fenced too.
    if let Ok((mut conn, _)) = connect(&input.node.url).await
        && let Ok(true) = sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()")
            .fetch_one(&mut conn)
            .await
    {
        return Ok(At {
            at_ms: now_ms(),
            note: format!("{dir} is a standby; left running"),
        });
    }
    stop(&tools, dir, "fast").await?;
    Ok(At {
        at_ms: now_ms(),
        note: format!("the promoted server at {dir} was stopped (fenced)"),
    })
}

async fn stop(tools: &PgTools, dir: &str, mode: &str) -> Result<(), StepFailure> {
    let (ok, text) = tools
        .run("pg_ctl", &["-D", dir, "-m", mode, "-w", "stop"])
        .await?;
    if !ok && tools.running(dir).await? {
        return Err(StepFailure::CheckFailed(format!(
            "pg_ctl stop of {dir} failed: {text}"
        )));
    }
    Ok(())
}

pub(crate) async fn rebuild(input: &RebuildInput) -> Result<At, StepFailure> {
    let tools = PgTools::for_pair(&input.database)?;
    let dir = input.node.data_dir.as_str();
    let source = Secrets::single(URL, &input.source.url)?.with_url_password(URL);
    let source_url = source.get(URL).unwrap_or_default().to_owned();
    let conninfo = standby_conninfo(&source_url, input.node.application_name.as_deref())
        .map_err(|e| StepFailure::InvalidInput(source.redact(&e)))?;

    if tools.running(dir).await? {
        match role(&input.node.url).await {
            Some(true) => {
                // A standby already (a retry after the start). One that cannot follow the
                // source (another timeline) is stopped and rebuilt.
                if wait_streaming(&input.node.url, &input.source.url, ALREADY_WITHIN)
                    .await
                    .is_ok()
                {
                    forget_saved(dir);
                    return Ok(At {
                        at_ms: now_ms(),
                        note: format!("{dir} is already a standby following the primary"),
                    });
                }
                stop(&tools, dir, "fast").await?;
            }
            // A primary of its own (diverged), or not answering: stopped, then rebuilt.
            _ => stop(&tools, dir, "fast").await?,
        }
    }

    // A freshly promoted server writes its new timeline to its control file only at its next
    // checkpoint; pg_rewind reads it there and would otherwise see no divergence at all.
    let (mut src, src_secrets) = connect(&input.source.url).await?;
    sqlx::query("CHECKPOINT")
        .execute(&mut src)
        .await
        .map_err(|e| sql_error(&src_secrets, &e))?;
    drop(src);
    let saved = save_config(dir)?;
    let (source_arg, password) = without_password(&source_url);
    let env: Vec<(&str, &str)> = password
        .as_deref()
        .map(|p| vec![("PGPASSWORD", p)])
        .unwrap_or_default();
    let (rewound, text) = tools
        .run_with(
            "pg_rewind",
            &["-D", dir, "--source-server", &source_arg, "--progress"],
            &env,
        )
        .await?;
    let how = if rewound {
        if text.contains("no rewind required") {
            "no rewind was required".to_owned()
        } else {
            "rewound with pg_rewind".to_owned()
        }
    } else {
        let why = source.redact(last_line(&text));
        base_backup(&tools, dir, &source_arg, &env)
            .await
            .map_err(|e| StepFailure::CheckFailed(source.redact(&e.to_string())))?;
        format!("pg_rewind could not ({why}); rebuilt from a fresh base backup")
    };
    restore_config(&tools, dir, &saved)?;
    let auto = Path::new(dir).join("postgresql.auto.conf");
    let mut text = std::fs::read_to_string(&auto).unwrap_or_default();
    if !text.ends_with('\n') && !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&format!(
        "# cutover drill failback\nprimary_conninfo = '{}'\n",
        conninfo.replace('\'', "''")
    ));
    tools.write_owned(&auto, text.as_bytes())?;
    tools.write_owned(&Path::new(dir).join("standby.signal"), b"")?;

    let log = format!("{dir}/cutover-rebuild.log");
    let (ok, text) = tools
        .run("pg_ctl", &["-D", dir, "-l", &log, "-w", "start"])
        .await?;
    if !ok {
        return Err(StepFailure::CheckFailed(format!(
            "the rebuilt standby did not start: {} (see {log})",
            source.redact(&text)
        )));
    }
    wait_streaming(&input.node.url, &input.source.url, STREAMING_WITHIN).await?;
    forget_saved(dir);
    Ok(At {
        at_ms: now_ms(),
        note: format!("{dir}: {how}; now a streaming standby of the primary"),
    })
}

/// `Some(true)` in recovery, `Some(false)` a primary, `None` not answering.
async fn role(url: &SecretRef) -> Option<bool> {
    let (mut conn, _) = connect(url).await.ok()?;
    sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut conn)
        .await
        .ok()
}

/// The source's URL with the standby's `application_name`, as `primary_conninfo`.
fn standby_conninfo(source: &str, application_name: Option<&str>) -> Result<String, String> {
    let Some(name) = application_name else {
        return Ok(source.to_owned());
    };
    let mut url = reqwest::Url::parse(source)
        .map_err(|e| format!("the source URL is not a postgres:// URL ({e})"))?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "application_name")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("application_name", name);
    Ok(url.to_string())
}

/// A `postgres://` URL without its password, and the password (for `PGPASSWORD`). A
/// connection string in another form is passed on as it is.
fn without_password(url: &str) -> (String, Option<String>) {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let password = u.password().map(|p| {
                percent_encoding::percent_decode_str(p)
                    .decode_utf8_lossy()
                    .into_owned()
            });
            let _ = u.set_password(None);
            (u.to_string(), password)
        }
        _ => (url.to_owned(), None),
    }
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
}

fn saved_dir(dir: &str) -> PathBuf {
    PathBuf::from(format!("{}.cutover-config", dir.trim_end_matches('/')))
}

/// Copies the server's own configuration aside, unless an earlier attempt already did (then
/// the data directory may hold the source's files).
fn save_config(dir: &str) -> Result<PathBuf, StepFailure> {
    let saved = saved_dir(dir);
    if saved.is_dir() {
        return Ok(saved);
    }
    let partial = saved.with_extension("cutover-config-partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial)
        .map_err(|e| StepFailure::io(format!("creating {}", partial.display()), e))?;
    for name in OWN_CONFIG {
        let from = Path::new(dir).join(name);
        if from.is_file() {
            std::fs::copy(&from, partial.join(name))
                .map_err(|e| StepFailure::io(format!("saving {}", from.display()), e))?;
        }
    }
    // Complete or absent: a crash while copying leaves only the partial directory.
    std::fs::rename(&partial, &saved)
        .map_err(|e| StepFailure::io(format!("saving {}", saved.display()), e))?;
    Ok(saved)
}

fn restore_config(tools: &PgTools, dir: &str, saved: &Path) -> Result<(), StepFailure> {
    for name in OWN_CONFIG {
        let from = saved.join(name);
        if from.is_file() {
            let bytes = std::fs::read(&from)
                .map_err(|e| StepFailure::io(format!("reading {}", from.display()), e))?;
            tools.write_owned(&Path::new(dir).join(name), &bytes)?;
        }
    }
    Ok(())
}

fn forget_saved(dir: &str) {
    let _ = std::fs::remove_dir_all(saved_dir(dir));
}

/// Replaces the data directory with a base backup of the source. The old directory is moved
/// aside first and removed once the copy is complete.
async fn base_backup(
    tools: &PgTools,
    dir: &str,
    source_url: &str,
    env: &[(&str, &str)],
) -> Result<(), StepFailure> {
    let aside = PathBuf::from(format!("{}.cutover-old", dir.trim_end_matches('/')));
    if Path::new(dir).exists() {
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::rename(dir, &aside)
            .map_err(|e| StepFailure::io(format!("moving {dir} aside"), e))?;
    }
    let (ok, text) = tools
        .run_with(
            "pg_basebackup",
            &["-D", dir, "-d", source_url, "-X", "stream", "-c", "fast"],
            env,
        )
        .await?;
    if !ok {
        let _ = std::fs::remove_dir_all(dir);
        return Err(StepFailure::CheckFailed(format!(
            "pg_basebackup failed: {}",
            last_line(&text)
        )));
    }
    let _ = std::fs::remove_dir_all(&aside);
    Ok(())
}

/// Waits until the server streams from the source and has replayed what the source had
/// flushed when the wait began. (A WAL receiver reports `streaming` for a moment even when the
/// timelines forked and it cannot follow; replaying past the source's position proves it can.)
async fn wait_streaming(
    url: &SecretRef,
    source: &SecretRef,
    within: Duration,
) -> Result<(), StepFailure> {
    let (mut src, src_secrets) = connect(source).await?;
    let target: String = sqlx::query_scalar("SELECT pg_current_wal_flush_lsn()::text")
        .fetch_one(&mut src)
        .await
        .map_err(|e| sql_error(&src_secrets, &e))?;
    drop(src);
    poll::until_ok(within, Duration::from_millis(50), || async {
        let (mut conn, secrets) = connect(url).await.map_err(|e| e.to_string())?;
        match sqlx::query_as::<_, (bool, Option<String>, bool)>(
            "SELECT pg_is_in_recovery(), (SELECT status FROM pg_stat_wal_receiver), \
                 COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)",
        )
        .bind(&target)
        .fetch_one(&mut conn)
        .await
        {
            Ok((true, Some(status), true)) if status == "streaming" => Ok(()),
            Ok((false, _, _)) => Err("it is not in recovery".to_owned()),
            Ok((true, status, _)) => Err(format!(
                "its WAL receiver is {} and it has not replayed up to {target}",
                status.unwrap_or_else(|| "not running".to_owned())
            )),
            Err(e) => Err(sql_error(&secrets, &e).to_string()),
        }
    })
    .await
    .map_err(|last| {
        StepFailure::CheckFailed(format!(
            "the rebuilt standby did not follow the primary within {} s: {last}",
            within.as_secs()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::standby_conninfo;

    #[test]
    fn the_application_name_is_set_once() -> Result<(), String> {
        assert_eq!(
            standby_conninfo(
                "postgres://u:p@127.0.0.1:5/db?application_name=x&sslmode=disable",
                Some("standby1")
            )?,
            "postgres://u:p@127.0.0.1:5/db?sslmode=disable&application_name=standby1"
        );
        assert_eq!(standby_conninfo("host=a port=5", None)?, "host=a port=5");
        assert!(standby_conninfo("host=a port=5", Some("s")).is_err());
        Ok(())
    }

    #[test]
    fn the_password_leaves_the_arguments_for_the_environment() {
        assert_eq!(
            super::without_password("postgres://app:s%40cret@127.0.0.1:5432/db"),
            (
                "postgres://app@127.0.0.1:5432/db".to_owned(),
                Some("s@cret".to_owned())
            )
        );
        assert_eq!(
            super::without_password("postgres://app@127.0.0.1/db"),
            ("postgres://app@127.0.0.1/db".to_owned(), None)
        );
        assert_eq!(
            super::without_password("host=a password=x"),
            ("host=a password=x".to_owned(), None)
        );
    }
}
