-- Cutover's ledger: what Temporal's retention would forget. Portable SQL: the same file runs on
-- SQLite (the default, under .cutover/) and on PostgreSQL. Times are Unix milliseconds.

-- Every request to a webhook endpoint, accepted or not. A delivery that starts (or is about to
-- start) a rollout is "claimed": the partial unique index makes that happen once per provider
-- and delivery ID, so a redelivery finds the first outcome instead of starting a second run.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    delivery_id TEXT,
    event TEXT,
    received_at BIGINT NOT NULL,
    source TEXT NOT NULL,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    rule_name TEXT,
    workflow_id TEXT,
    run_id TEXT,
    claimed INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX webhook_deliveries_claim
    ON webhook_deliveries (provider, delivery_id) WHERE claimed = 1;
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);

-- One row per rollout run, written by the rollout itself (activity `ledger.record_release`) when
-- it starts and when it ends.
CREATE TABLE releases (
    workflow_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    version TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    trigger_detail TEXT,
    outcome TEXT NOT NULL,
    reason TEXT,
    started_at BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (workflow_id, run_id)
);
CREATE INDEX releases_service ON releases (service, environment, started_at);
