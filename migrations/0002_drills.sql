-- DR drill evidence: one row per drill run, written by the drill itself (activity
-- `drill.record`) when it ends — passed, missed or failed — with its phases as JSON.
CREATE TABLE drills (
    workflow_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    drill TEXT NOT NULL,
    service TEXT NOT NULL,
    environment TEXT NOT NULL,
    mode TEXT NOT NULL,
    state TEXT NOT NULL,
    rto_ms BIGINT,
    rto_objective_ms BIGINT NOT NULL,
    rpo_markers BIGINT,
    rpo_objective BIGINT NOT NULL,
    rpo_bytes BIGINT,
    markers BIGINT NOT NULL,
    reason TEXT,
    restoration TEXT,
    phases TEXT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    PRIMARY KEY (workflow_id, run_id)
);
CREATE INDEX drills_started ON drills (started_at);
