-- Issue 17: every D1 row written is billed, the table's own key index and every other index included.
--
-- audit_log was a rowid table with a TEXT key ("<session_id>:<outbox id>"): an audit row was written
-- to the table, to the key's index, and to audit_log_execution even when it named no execution yet
-- (where no query looks for it) — 4 rows, or 3. It is now keyed by what identifies a row and orders
-- it in time: (at, session_id, seq), WITHOUT ROWID, so the row lives in its key, and each of the two
-- secondary indexes is partial: an audit row is written to the table and exactly one index, 2 rows.
-- The key is stable across retries of the same outbox row (INSERT OR IGNORE stays idempotent), and
-- the retention sweep walks it in time order by its own key (src/d1/erasure.ts).
--
-- Copying the table runs in one statement: fine for the audit trail of a young deployment. A D1
-- database holding millions of audit rows should copy in batches first (see README, "Deploying").
CREATE TABLE audit_log_v2 (
  at           TEXT NOT NULL,          -- ISO 8601, when it happened (our clock)
  session_id   TEXT NOT NULL,
  seq          INTEGER NOT NULL,       -- the session's outbox id: order within the session
  mandate_id   TEXT,
  execution_id TEXT,
  event        TEXT NOT NULL,
  detail       TEXT NOT NULL,          -- JSON
  PRIMARY KEY (at, session_id, seq)
) WITHOUT ROWID;
INSERT OR IGNORE INTO audit_log_v2 (at, session_id, seq, mandate_id, execution_id, event, detail)
  SELECT at, session_id, seq, mandate_id, execution_id, event, detail FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_v2 RENAME TO audit_log;
CREATE INDEX audit_log_execution ON audit_log (execution_id, seq) WHERE execution_id IS NOT NULL;
CREATE INDEX audit_log_mandate ON audit_log (session_id, mandate_id, seq) WHERE execution_id IS NULL;

-- Every stage change was written twice: as an audit row (event 'stage', detail {stage, status,
-- message}) and as an upsert here. GET /api/executions/:id now derives each stage's latest status
-- from the audit rows it already reads (src/d1/executions.ts); every stage change since the first
-- release has its audit row, so nothing is lost with this table.
DROP TABLE pipeline_progress;
