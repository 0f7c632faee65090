//! The chaos run: N rollouts of S command steps whose effects are counted, while the worker
//! is SIGKILLed every K seconds and restarted (and, optionally, the dev server is SIGKILLed
//! once and restarted from its SQLite file). Shared by the `chaos` bench (the figures in
//! BENCHMARKS.md) and the smaller run in `tests/tests/chaos.rs`.
//!
//! Each step runs `sh -c 'sleep …; echo <step> >> effects/<service>'`. A command dies with its
//! worker (`PR_SET_PDEATHSIG`), so a kill during the sleep leaves no effect and the retry
//! does it; a kill between the `echo` and the activity's completion reaching the server makes
//! the retry do it again — a re-execution, which is what a real non-idempotent command would
//! suffer, and why the count is reported rather than hidden.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use cutover_client::connect::{ConnectOptions, connect};
use temporalio_client::Client;
use temporalio_client::WorkflowExecutionStatus as S;
use tokio::time::Instant;

use crate::{WorkerProcess, free_port, plan, temporal_cli, unique_queue};

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Rollouts started at once.
    pub rollouts: usize,
    /// Steps per rollout.
    pub steps: usize,
    /// How long each step's command sleeps before its effect.
    pub step: Duration,
    /// SIGKILL the worker this often (and start a new one at once); `None`: never.
    pub kill_every: Option<Duration>,
    /// SIGKILL the dev server once, a third of the way in, and restart it from its file.
    pub server_restart: bool,
    /// The steps' heartbeat timeout: how soon a dead worker's activity is retried.
    pub heartbeat: Duration,
    /// The worker's `--sticky-timeout`.
    pub sticky: String,
    /// Give up waiting after this long.
    pub deadline: Duration,
}

/// What happened.
#[derive(Debug, Default)]
pub struct Report {
    /// Rollouts started.
    pub rollouts: usize,
    /// Rollouts that reached a final state.
    pub completed: usize,
    /// Rollouts that succeeded.
    pub succeeded: usize,
    /// Effects expected (rollouts × steps).
    pub expected: usize,
    /// Effects done exactly once.
    pub once: usize,
    /// Effects done more than once.
    pub repeated: usize,
    /// Effects never done.
    pub lost: usize,
    /// Extra executions of effects already done.
    pub reexecutions: usize,
    /// Worker SIGKILLs.
    pub worker_kills: usize,
    /// Server SIGKILL + restarts.
    pub server_restarts: usize,
    /// From the first start to the last rollout's end.
    pub wall: Duration,
    /// The non-succeeded rollouts' final states and reasons, for diagnosis.
    pub problems: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "completed {}/{} (succeeded {}), effects once {}/{}, lost {}, re-executions {}, worker kills {}, server restarts {}, wall {:.1}s",
            self.completed,
            self.rollouts,
            self.succeeded,
            self.once,
            self.expected,
            self.lost,
            self.reexecutions,
            self.worker_kills,
            self.server_restarts,
            self.wall.as_secs_f64()
        )
    }
}

/// A dev server we own as a process, persisting to a SQLite file, so it can be SIGKILLed and
/// started again on the same port with everything it had.
pub struct ServerProcess {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub address: String,
    db: PathBuf,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `temporal server start-dev` on a free port with `db` as its store.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let db = dir.join("temporal.db");
        let log = dir.join("temporal.log");
        let child = spawn_server(port, &db, &log)?;
        let server = Self {
            child,
            address: format!("127.0.0.1:{port}"),
            db,
            log,
        };
        server.client().await?;
        Ok(server)
    }

    /// A client, once the server answers (within 60 s).
    pub async fn client(&self) -> anyhow::Result<Client> {
        let options = ConnectOptions {
            address: Some(self.address.clone()),
            ..ConnectOptions::default()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match connect(&options).await {
                Ok(c) => return Ok(c.client),
                Err(e) if Instant::now() > deadline => {
                    return Err(anyhow::anyhow!(
                        "the dev server at {} did not answer: {e}; log:\n{}",
                        self.address,
                        std::fs::read_to_string(&self.log).unwrap_or_default()
                    ));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// SIGKILL, then the same server again from its file, on the same port.
    pub async fn crash_and_restart(&mut self) -> anyhow::Result<Client> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port: u16 = self.address.rsplit(':').next().unwrap_or("0").parse()?;
        self.child = spawn_server(port, &self.db, &self.log)?;
        self.client().await
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_server(port: u16, db: &Path, log: &Path) -> anyhow::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut cmd = Command::new(temporal_cli()?);
    cmd.args(["server", "start-dev", "--headless", "--log-level", "error"])
        .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--http-port", &free_port()?.to_string()])
        .args(["--metrics-port", &free_port()?.to_string()])
        .arg("--db-filename")
        .arg(db)
        .args(cutover_client::dev_server::dynamic_config_args());
    for name in cutover_workflows::search_attributes::ALL {
        cmd.args(["--search-attribute", &format!("{name}=Keyword")]);
    }
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("starting the Temporal dev server")
}

/// The plan of rollout `i`.
fn chaos_plan(cfg: &Config, i: usize, effects: &Path) -> String {
    let mut text = format!(
        "service: chaos-{i}\nenvironment: test\nversion: \"1\"\ndefaults:\n  heartbeat_timeout: {}ms\n  retry: {{ initial_interval: 100ms, maximum_interval: 1s, maximum_attempts: 0 }}\nsteps:\n",
        cfg.heartbeat.as_millis()
    );
    let file = effects.join(format!("chaos-{i}"));
    for s in 0..cfg.steps {
        text.push_str(&format!(
            "  - name: s{s}\n    kind: command\n    command: sh\n    args: [\"-c\", \"sleep {:.3}; echo s{s} >> {}\"]\n",
            cfg.step.as_secs_f64(),
            file.display()
        ));
    }
    text
}

/// Runs the chaos scenario in `dir` and reports.
pub async fn run(cfg: &Config, dir: &Path) -> anyhow::Result<Report> {
    let mut server = ServerProcess::start(dir).await?;
    let mut client = server.client().await?;
    let queue = unique_queue("chaos");
    let effects = dir.join("effects");
    std::fs::create_dir_all(&effects)?;
    let flags = [
        "--max-concurrent-activities",
        "100",
        "--max-concurrent-workflow-tasks",
        "100",
        "--sticky-timeout",
        cfg.sticky.as_str(),
    ];
    let spawn = |address: &str| WorkerProcess::spawn_with(address, &queue, dir, &flags);
    let mut worker = spawn(&server.address)?;
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..cfg.rollouts {
        let p = plan(&chaos_plan(cfg, i, &effects));
        let s = cutover_client::start_rollout(&client, &p, &queue, None).await?;
        ids.push(s.workflow_id);
    }
    let mut report = Report {
        rollouts: cfg.rollouts,
        expected: cfg.rollouts * cfg.steps,
        ..Report::default()
    };
    let deadline = started + cfg.deadline;
    let mut next_kill = cfg.kill_every.map(|k| Instant::now() + k);
    let mut server_due = cfg
        .server_restart
        .then(|| Instant::now() + cfg.deadline.min(expected_wall(cfg)) / 3);
    let mut finals: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    while finals.len() < ids.len() && Instant::now() < deadline {
        if let Some(status) = worker.exited() {
            anyhow::bail!(
                "the worker exited by itself ({status}):\n{}",
                worker.log_text()
            );
        }
        if next_kill.is_some_and(|t| Instant::now() >= t) {
            worker.kill9();
            report.worker_kills += 1;
            worker = spawn(&server.address)?;
            next_kill = cfg.kill_every.map(|k| Instant::now() + k);
        }
        if server_due.is_some_and(|t| Instant::now() >= t) {
            worker.kill9();
            client = server.crash_and_restart().await?;
            report.server_restarts += 1;
            worker = spawn(&server.address)?;
            server_due = None;
        }
        for id in &ids {
            if finals.contains_key(id) {
                continue;
            }
            if let Some(end) = ended(&client, id).await {
                finals.insert(id.clone(), end);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    report.wall = started.elapsed();
    drop(worker);
    report.completed = finals.len();
    for id in &ids {
        match finals.get(id) {
            Some((state, _)) if state == "Completed" => report.succeeded += 1,
            Some((state, reason)) => report.problems.push(format!("{id}: {state} {reason:?}")),
            None => report.problems.push(format!("{id}: still running")),
        }
    }
    for i in 0..cfg.rollouts {
        let text = std::fs::read_to_string(effects.join(format!("chaos-{i}"))).unwrap_or_default();
        for s in 0..cfg.steps {
            let n = text.lines().filter(|l| *l == format!("s{s}")).count();
            match n {
                0 => report.lost += 1,
                1 => report.once += 1,
                more => {
                    report.repeated += 1;
                    report.reexecutions += more - 1;
                }
            }
        }
    }
    Ok(report)
}

/// Roughly how long the run takes without faults.
fn expected_wall(cfg: &Config) -> Duration {
    cfg.step * cfg.steps as u32 + Duration::from_secs(5)
}

/// The workflow's close status and failure message, once it has closed.
async fn ended(client: &Client, id: &str) -> Option<(String, Option<String>)> {
    let d = client
        .get_workflow_handle::<cutover_workflows::RolloutWorkflow>(id.to_owned())
        .describe(temporalio_client::WorkflowDescribeOptions::default())
        .await
        .ok()?;
    match d.status() {
        S::Running | S::Unspecified => None,
        other => Some((format!("{other:?}"), None)),
    }
}

/// How a recovery measurement runs.
#[derive(Clone, Debug)]
pub struct Recovery {
    /// Rollouts interrupted by each kill.
    pub rollouts: usize,
    /// Kills measured.
    pub kills: usize,
    /// The step's heartbeat timeout.
    pub heartbeat: Duration,
    /// The worker's `--sticky-timeout`.
    pub sticky: String,
}

/// For each of `cfg.kills` rounds: `cfg.rollouts` rollouts whose one step is running, the
/// worker SIGKILLed and a new one started at once; the time from the kill until every
/// interrupted step has started its next attempt. Returns those times.
pub async fn recovery(cfg: &Recovery, dir: &Path) -> anyhow::Result<Vec<Duration>> {
    let server = ServerProcess::start(dir).await?;
    let client = server.client().await?;
    let queue = unique_queue("recovery");
    let marks = dir.join("marks");
    std::fs::create_dir_all(&marks)?;
    let flags = ["--sticky-timeout", cfg.sticky.as_str()];
    let mut worker = WorkerProcess::spawn_with(&server.address, &queue, dir, &flags)?;
    let mut times = Vec::new();
    for round in 0..cfg.kills {
        let files: Vec<PathBuf> = (0..cfg.rollouts)
            .map(|i| marks.join(format!("r{round}-{i}")))
            .collect();
        for (i, file) in files.iter().enumerate() {
            // The first attempt marks its start and runs long; the next one marks and ends.
            let script = format!(
                "if [ -e {f} ]; then echo start >> {f}; else echo start >> {f}; sleep 60; fi",
                f = file.display()
            );
            let text = format!(
                "service: rec-{round}-{i}\nenvironment: test\nversion: \"1\"\nsteps:\n  - name: long\n    kind: command\n    command: sh\n    args: [\"-c\", {script:?}]\n    heartbeat_timeout: {}ms\n    retry: {{ initial_interval: 100ms, maximum_attempts: 0 }}\n",
                cfg.heartbeat.as_millis()
            );
            cutover_client::start_rollout(&client, &plan(&text), &queue, None).await?;
        }
        let starts = |n: usize| {
            files
                .iter()
                .all(|f| std::fs::read_to_string(f).is_ok_and(|t| t.lines().count() >= n))
        };
        wait(Duration::from_secs(60), || starts(1)).await?;
        // Let a heartbeat or two reach the server, as in a step that has been running.
        tokio::time::sleep(cfg.heartbeat / 2).await;
        let killed = Instant::now();
        worker.kill9();
        worker = WorkerProcess::spawn_with(&server.address, &queue, dir, &flags)?;
        wait(Duration::from_secs(120), || starts(2)).await?;
        times.push(killed.elapsed());
    }
    Ok(times)
}

/// Polls `done` every 10 ms (a measurement's resolution, not a test's wait) until it holds.
async fn wait(limit: Duration, done: impl Fn() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !done() {
        anyhow::ensure!(Instant::now() < deadline, "gave up after {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}
