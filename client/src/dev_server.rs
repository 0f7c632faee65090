//! How Cutover runs the Temporal dev server (`cutover dev up`, and the tests' servers).
//!
//! The history service reads its transfer queue (where "an activity finished, schedule the
//! next workflow task" waits) and its timer queue at most `*ProcessorMaxPollRPS` times a second
//! per shard, 20 by default. A dev server has one shard, so once a workflow runs its steps
//! back to back the reads are rationed to one per 50 ms, and every step — of any SDK's
//! workflow, not just Cutover's — waits for the next: ~55 ms per step instead of ~10. Runs
//! spaced a second apart do not see it (the rate limiter's burst has refilled), which is why it
//! looked like a timer or a TCP stall. 200 reads a second (one per 5 ms) removes most of the
//! wait; 1000 removed a little more of it but, with 300 workflows in flight, cost the server
//! enough CPU per task to cut throughput by ~40% (BENCHMARKS.md), while at 200 throughput
//! stayed within ~15% of the default. A production cluster spreads rollouts over hundreds of
//! shards, each with its own budget; operators set these keys in the server's dynamic config
//! file if they want the same there.

/// Dynamic config `cutover dev up` gives the dev server: (key, value).
pub const DYNAMIC_CONFIG: &[(&str, &str)] = &[
    ("history.transferProcessorMaxPollRPS", "200"),
    ("history.timerProcessorMaxPollRPS", "200"),
];

/// [`DYNAMIC_CONFIG`] as `temporal server start-dev` flags.
pub fn dynamic_config_args() -> Vec<String> {
    DYNAMIC_CONFIG
        .iter()
        .flat_map(|(key, value)| {
            [
                "--dynamic-config-value".to_owned(),
                format!("{key}={value}"),
            ]
        })
        .collect()
}
