-- The audit trail: every human action on a rollout (approve, refuse, pause, resume, abort,
-- promote, retry), accepted or refused, and every action the receiver turned away before it
-- reached a rollout. Rows are chained: each holds the hash of the one before, and its own hash
-- covers its contents and that link, so an edited row, or one deleted from the middle, is
-- found by `cutover audit verify`. `position` and `prev_hash` are unique, so two writers
-- racing for the same place in the chain cannot both win (the loser retries).
CREATE TABLE audit (
    position BIGINT NOT NULL PRIMARY KEY,
    entry_key TEXT NOT NULL UNIQUE,
    at BIGINT,
    recorded_at BIGINT NOT NULL,
    subject TEXT NOT NULL,
    run_id TEXT NOT NULL,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    person TEXT NOT NULL,
    verified TEXT NOT NULL,
    step TEXT,
    reason TEXT,
    source TEXT NOT NULL,
    prev_hash TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL
);
CREATE INDEX audit_service ON audit (service, at);
