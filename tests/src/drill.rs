//! The scene of a DR drill, shared by the drill tests and the drill benchmark: a real
//! PostgreSQL primary and streaming standby on loopback and the example service on top.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::pg::PgCluster;
use crate::{Harness, bin, free_port, wait_for, write_file};

/// A primary, its standby, and the app on top.
pub struct Scene {
    /// See the type.
    pub primary: PgCluster,
    /// See the type.
    pub standby: PgCluster,
    app: Child,
    /// See the type.
    pub app_port: u16,
    /// See the type.
    pub endpoint: std::path::PathBuf,
    /// See the type.
    pub plan: String,
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = self.app.kill();
        let _ = self.app.wait();
    }
}

/// A primary and its streaming standby (synchronous or not), the example service reading its
/// database URL from an endpoint file, and a drill plan of `mode` over them.
pub async fn scene(h: &Harness, mode: &str, synchronous: bool) -> anyhow::Result<Scene> {
    scene_of(h, mode, synchronous, true).await
}

/// Like [`scene`]; a primary without data checksums and `wal_log_hints` cannot be rewound, so
/// its failback takes a fresh base backup.
pub async fn scene_of(
    h: &Harness,
    mode: &str,
    synchronous: bool,
    rewindable: bool,
) -> anyhow::Result<Scene> {
    let options = if synchronous {
        "-c synchronous_standby_names=standby1"
    } else {
        ""
    };
    let primary = PgCluster::start_checked(options, rewindable)?;
    let standby = PgCluster::standby_of(&primary, "standby1")?;
    let want = if synchronous { "sync" } else { "async" };
    wait_for(Duration::from_secs(30), "the standby to stream", || {
        let state = primary
            .psql(
                "postgres",
                "SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'",
            )
            .unwrap_or_default();
        async move { (state == want).then_some(()) }
    })
    .await?;
    // After the standby is there: a synchronous primary waits for it to commit.
    primary.psql(
        "postgres",
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)",
    )?;
    let dir = h.dir.path();
    write_file(dir, "primary_url", &primary.url("postgres"));
    write_file(dir, "standby_url", &standby.url("postgres"));
    let endpoint = write_file(dir, "database_url", &primary.url("postgres"));
    let app_port = free_port()?;
    let app = Command::new(bin("hello-service"))
        .env("PORT", app_port.to_string())
        .env("DATABASE_URL_FILE", &endpoint)
        .env("APP_VERSION", "drill")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let health = format!("http://127.0.0.1:{app_port}/health");
    wait_for(Duration::from_secs(30), "the app to be healthy", || {
        let health = health.clone();
        async move {
            reqwest::get(&health)
                .await
                .ok()
                .filter(|r| r.status().is_success())
        }
    })
    .await?;
    let plan = format!(
        "drill: db\nservice: hello\nenvironment: test\nmode: {mode}\ndatabase:\n  primary: {{ url: {{ file: \"{dir}/primary_url\" }}, data_dir: \"{pd}\", application_name: primary1 }}\n  standby: {{ url: {{ file: \"{dir}/standby_url\" }}, data_dir: \"{sd}\", application_name: standby1 }}\n  os_user: postgres\ntraffic: {{ endpoint_file: \"{ep}\" }}\nchecks:\n  - {{ url: \"http://127.0.0.1:{app_port}/health\" }}\nwrite_check: {{ url: \"http://127.0.0.1:{app_port}/items\" }}\nobjectives: {{ rto: 60s, rpo: 0 }}\n",
        dir = dir.display(),
        pd = primary.data_dir().display(),
        sd = standby.data_dir().display(),
        ep = endpoint.display(),
    );
    Ok(Scene {
        primary,
        standby,
        app,
        app_port,
        endpoint,
        plan,
    })
}

/// The drill's `status` query, or `None` if no worker answered yet.
pub async fn status(
    client: &temporalio_client::Client,
    workflow_id: &str,
) -> Option<cutover_workflows::drill::DrillStatus> {
    use cutover_workflows::drill::DrillWorkflow;
    use temporalio_client::WorkflowQueryOptions;
    client
        .get_workflow_handle::<DrillWorkflow>(workflow_id.to_owned())
        .query(DrillWorkflow::status, (), WorkflowQueryOptions::default())
        .await
        .ok()
}

/// True when `cluster` is a standby that streams from a primary.
pub fn streaming_standby(cluster: &PgCluster) -> bool {
    cluster
        .psql(
            "postgres",
            "SELECT pg_is_in_recovery() AND (SELECT status FROM pg_stat_wal_receiver) = 'streaming'",
        )
        .is_ok_and(|v| v == "t")
}
