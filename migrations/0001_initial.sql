-- MyndLens Progress: the D1 audit trail and the queryable copies of session state.
-- Written only through each Session Durable Object's outbox (src/session/outbox.ts); the DO's own
-- SQLite is the source of truth for live state.

-- One row per ObeGee execution; also how a webhook finds the session of its execution.
CREATE TABLE executions (
  execution_id TEXT PRIMARY KEY,
  session_id   TEXT NOT NULL,
  mandate_id   TEXT NOT NULL,
  tenant_id    TEXT NOT NULL,
  intent       TEXT,
  state        TEXT NOT NULL,          -- running | completed | failed | timed_out
  summary      TEXT,
  delivered_to TEXT,                   -- JSON array
  error        TEXT,
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  completed_at TEXT,
  version      INTEGER NOT NULL        -- outbox id of the last write; older writes never win
);
CREATE INDEX executions_session ON executions (session_id);
CREATE INDEX executions_mandate ON executions (mandate_id);

-- The seed's pipeline_progress: the latest status of every stage of every mandate.
CREATE TABLE pipeline_progress (
  session_id TEXT NOT NULL,
  mandate_id TEXT NOT NULL,
  stage      INTEGER NOT NULL CHECK (stage BETWEEN 1 AND 10),
  status     TEXT NOT NULL CHECK (status IN ('pending', 'active', 'completed', 'failed')),
  message    TEXT,
  updated_at TEXT NOT NULL,
  version    INTEGER NOT NULL,
  PRIMARY KEY (session_id, mandate_id, stage)
);

-- Every delivery webhook accepted (signature verified), once per webhook-id.
CREATE TABLE delivery_events (
  webhook_id   TEXT PRIMARY KEY,
  execution_id TEXT NOT NULL,
  session_id   TEXT NOT NULL,
  status       TEXT NOT NULL,
  payload      TEXT NOT NULL,
  outcome      TEXT NOT NULL,          -- applied | already_final | late_success | recorded
  received_at  TEXT NOT NULL
);
CREATE INDEX delivery_events_execution ON delivery_events (execution_id);

-- Every transition, dispatch, poll outcome, webhook and timeout, in order per session.
CREATE TABLE audit_log (
  id           TEXT PRIMARY KEY,       -- "<session_id>:<outbox id>", stable across retries
  session_id   TEXT NOT NULL,
  seq          INTEGER NOT NULL,       -- order within the session
  mandate_id   TEXT,
  execution_id TEXT,
  event        TEXT NOT NULL,
  detail       TEXT NOT NULL,          -- JSON
  at           TEXT NOT NULL
);
CREATE INDEX audit_log_execution ON audit_log (execution_id, seq);
CREATE INDEX audit_log_session ON audit_log (session_id, seq);
