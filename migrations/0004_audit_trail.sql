-- Issue 16: the audit trail never stalls on a poison row, and every query it serves is index-exact.

-- Outbox rows D1 refused again and again (or that could not even be turned into a statement), moved
-- here so the rows behind them flow on. Operators read them with
--   wrangler d1 execute DB --remote --command "SELECT * FROM outbox_dead_letters ORDER BY failed_at DESC"
CREATE TABLE outbox_dead_letters (
  id         TEXT PRIMARY KEY,           -- "<session_id>:<outbox id>", as audit_log.id
  session_id TEXT NOT NULL,
  kind       TEXT NOT NULL,              -- audit | stage | execution | delivery
  payload    TEXT NOT NULL,              -- the outbox row as it was
  error      TEXT NOT NULL,
  failed_at  TEXT NOT NULL
);

-- GET /api/executions/:id reads the execution's audit rows in two index-exact halves: those that name
-- the execution (audit_log_execution), and its mandate's rows from before it had one (this index).
CREATE INDEX audit_log_mandate ON audit_log (session_id, mandate_id, seq) WHERE execution_id IS NULL;

-- No query reads these (executions are found by their primary key).
DROP INDEX audit_log_session;
DROP INDEX executions_session;
DROP INDEX executions_mandate;

-- Ours: when this service learned the outcome (ISO 8601, our clock). ObeGee's own `completed_at` is
-- kept as it said it, bounded, beside it.
ALTER TABLE executions ADD COLUMN reported_completed_at TEXT;
