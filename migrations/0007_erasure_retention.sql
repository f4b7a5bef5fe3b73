-- Issue 12: erasure and retention (DESIGN.md "Operations").

-- Whose session is whose: written (through the session's outbox) when a session is bound to the first
-- user whose token opens it, so that DELETE /api/admin/users/:sub finds every session of that user.
CREATE TABLE session_owners (
  session_id TEXT PRIMARY KEY,
  sub        TEXT NOT NULL,
  tenant_id  TEXT,
  bound_at   TEXT NOT NULL
);
CREATE INDEX session_owners_sub ON session_owners (sub);

-- Executions erased with their user or session: a late delivery webhook for one is answered 2xx and
-- stored nowhere. Only the id is kept (it names nothing once the rest is gone), until retention ends.
CREATE TABLE erased_executions (
  execution_id TEXT PRIMARY KEY,
  erased_at    TEXT NOT NULL
);

-- No other index: erasure deletes by the keys the Session DO holds (execution and mandate ids), and
-- the retention sweep walks tables in rowid order, which is the order rows were written.
