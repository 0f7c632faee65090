//! RTO of the local failover drill, by phase, next to the raw `pg_promote()`-to-first-write
//! time on the same machine.
//!
//! ```text
//! cargo build --release --bins && cargo bench -p cutover-tests --bench drill   # -- --drills 5
//! ```
//!
//! Each drill: a fresh PostgreSQL primary and asynchronous streaming standby on loopback, the
//! example service on top, `DrillWorkflow` in failover mode through the real worker. Phase
//! times come from the drill's status (workflow time); RTO from the activities' clocks.

use cutover_tests::Harness;
use cutover_tests::bench::{arg, report};
use cutover_tests::drill::scene;
use cutover_tests::pg::PgCluster;
use cutover_workflows::drill::{DrillWorkflow, parse_drill};
use sqlx::Connection;
use temporalio_client::WorkflowGetResultOptions;

fn phase_ms(status: &cutover_workflows::drill::DrillStatus, name: &str) -> f64 {
    status
        .phases
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| Some((p.finished_at? - p.started_at?).num_milliseconds() as f64))
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = arg("drills", 5, 1);
    let (mut fault, mut promote, mut switch, mut verify, mut rto, mut failback) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for i in 0..n {
        let h = Harness::start(&format!("drill-bench-{i}")).await?;
        let s = scene(&h, "failover", false).await?;
        let plan = parse_drill(&s.plan).map_err(|d| anyhow::anyhow!("{d}"))?;
        let started = cutover_client::start_drill(h.client(), &plan, &h.queue).await?;
        let status = h
            .client()
            .get_workflow_handle::<DrillWorkflow>(started.workflow_id)
            .get_result(WorkflowGetResultOptions::default())
            .await?;
        fault.push(phase_ms(&status, "fault"));
        promote.push(phase_ms(&status, "promote"));
        switch.push(phase_ms(&status, "switch"));
        verify.push(phase_ms(&status, "verify"));
        failback.push(phase_ms(&status, "failback"));
        rto.push(status.rto_ms.unwrap_or_default() as f64);
        println!(
            "drill {i}: RTO {} ms, {} markers, {} lost",
            status.rto_ms.unwrap_or_default(),
            status.markers,
            status.rpo_markers.unwrap_or_default()
        );
        drop(s);
        h.shutdown().await?;
    }
    println!("\nfailover drill, {n} drills, by phase (workflow time, including task round trips):");
    report("  fault (pg_ctl stop -m immediate)", &mut fault);
    report("  promote (pg_promote + first write)", &mut promote);
    report("  switch (endpoint file)", &mut switch);
    report("  verify (app checks + write-then-read)", &mut verify);
    report("  RTO: fault → first verified write", &mut rto);
    report(
        "after the RTO: failback (checkpoint, pg_rewind, start, replay)",
        &mut failback,
    );

    let mut raw = Vec::new();
    for _ in 0..n {
        let primary = PgCluster::start()?;
        let standby = PgCluster::standby_of(&primary, "standby1")?;
        primary.psql("postgres", "CREATE TABLE t (n int)")?;
        let mut conn = sqlx::PgConnection::connect(&standby.url("postgres")).await?;
        primary.crash()?;
        let t = std::time::Instant::now();
        sqlx::query("SELECT pg_promote(true, 60)")
            .execute(&mut conn)
            .await?;
        sqlx::query("INSERT INTO t VALUES (1)")
            .execute(&mut conn)
            .await?;
        raw.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    report("raw pg_promote() to first committed write", &mut raw);
    Ok(())
}
