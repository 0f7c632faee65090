//! The PostgreSQL pair DR drills will fail over: a primary and a streaming standby on loopback,
//! started by the test. Checks that replication (synchronous and asynchronous) works here, and
//! measures the raw `pg_promote()`-to-first-write time a drill's RTO is compared with.

use std::time::{Duration, Instant};

use cutover_tests::pg::PgCluster;
use cutover_tests::wait_for;

#[tokio::test]
async fn a_synchronous_standby_has_every_commit_and_promotes_to_a_writable_primary()
-> anyhow::Result<()> {
    let primary = PgCluster::start_with("-c synchronous_standby_names=standby1")?;
    let standby = PgCluster::standby_of(&primary, "standby1")?;
    wait_for(
        Duration::from_secs(30),
        "the standby to stream synchronously",
        || {
            let state = primary
                .psql("postgres", "SELECT sync_state FROM pg_stat_replication")
                .unwrap_or_default();
            async move { (state == "sync").then_some(()) }
        },
    )
    .await?;
    primary.psql("postgres", "CREATE TABLE markers (n int PRIMARY KEY)")?;
    for n in 0..100 {
        primary.psql("postgres", &format!("INSERT INTO markers VALUES ({n})"))?;
    }
    assert_eq!(standby.psql("postgres", "SELECT pg_is_in_recovery()")?, "t");
    // Synchronous commit: every acknowledged marker is already on the standby.
    primary.crash()?;
    assert_eq!(
        standby.psql("postgres", "SELECT count(*) FROM markers")?,
        "100"
    );
    let started = Instant::now();
    assert_eq!(
        standby.psql("postgres", "SELECT pg_promote(true, 30)")?,
        "t"
    );
    standby.psql("postgres", "INSERT INTO markers VALUES (100)")?;
    println!(
        "raw pg_promote() to first committed write: {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(standby.psql("postgres", "SELECT pg_is_in_recovery()")?, "f");
    assert_eq!(
        standby.psql("postgres", "SELECT count(*) FROM markers")?,
        "101"
    );
    Ok(())
}
