-- Who owns what (issue 14, DESIGN.md "External contract"): a mandate_id belongs to the first session
-- that reports or executes it, for good. Claimed by the Session DO before anything is stored or sent,
-- so a second session reusing the id gets 409. (An execution's owner is its `executions` row, which
-- the Session DO now inserts itself when ObeGee names the execution, before execute answers.)
CREATE TABLE mandate_owners (
  mandate_id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL,
  claimed_at TEXT NOT NULL
);
