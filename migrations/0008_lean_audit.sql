-- Issue 17: every D1 row written is billed, indexes included.

-- An audit row not about an execution yet (execution_id NULL) was also written into this index, where
-- no query looks for it: audit_log_mandate serves those rows. Now each audit row is written to the
-- table, its key and exactly one of the two partial indexes (3 rows instead of 3 or 4).
DROP INDEX audit_log_execution;
CREATE INDEX audit_log_execution ON audit_log (execution_id, seq) WHERE execution_id IS NOT NULL;

-- Every stage change was written twice: as an audit row (event 'stage', detail {stage, status,
-- message}) and as an upsert here. GET /api/executions/:id now derives each stage's latest status
-- from the audit rows it already reads (src/d1/executions.ts); every stage change since the first
-- release has its audit row, so nothing is lost with this table.
DROP TABLE pipeline_progress;
