import type { MigrationPlan } from "../durable/migrations.ts";

/**
 * The Session DO's SQLite schema, run by the shared migration runner (src/durable/migrations.ts) in
 * the constructor. Internal tables share the `ml_` prefix; append a step, never edit one that shipped.
 */
const STEPS: readonly string[] = [
	`CREATE TABLE ml_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
	 CREATE TABLE ml_events (seq INTEGER PRIMARY KEY, mandate_id TEXT NOT NULL, frame TEXT NOT NULL);
	 CREATE TABLE ml_mandates (
	   mandate_id TEXT PRIMARY KEY,
	   tenant_id TEXT,
	   intent TEXT,
	   state TEXT NOT NULL,
	   execution_id TEXT UNIQUE,
	   remote_status TEXT,
	   sub_status TEXT,
	   progress INTEGER NOT NULL DEFAULT 0,
	   answer TEXT NOT NULL DEFAULT '',
	   error TEXT,
	   error_code TEXT,
	   error_http INTEGER,
	   result TEXT,
	   dispatched_at INTEGER,
	   deadline_at INTEGER,
	   next_poll_at INTEGER,
	   poll_failures INTEGER NOT NULL DEFAULT 0,
	   heartbeat_at INTEGER,
	   created_at INTEGER NOT NULL,
	   updated_at INTEGER NOT NULL
	 );
	 CREATE INDEX ml_mandates_running ON ml_mandates(state, next_poll_at);
	 CREATE TABLE ml_stages (
	   mandate_id TEXT NOT NULL,
	   stage INTEGER NOT NULL,
	   status TEXT NOT NULL,
	   message TEXT,
	   updated_at INTEGER NOT NULL,
	   PRIMARY KEY (mandate_id, stage)
	 );
	 CREATE TABLE ml_webhooks (webhook_id TEXT PRIMARY KEY, received_at INTEGER NOT NULL);
	 CREATE TABLE ml_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, payload TEXT NOT NULL);`,
	// Issue 3: when the agent's gateway stream last spoke for this execution (slows ObeGee polling).
	"ALTER TABLE ml_mandates ADD COLUMN agent_event_at INTEGER;",
	// Issue 14: a dispatch is stored before it is sent and retried (same Idempotency-Key) until an answer.
	`ALTER TABLE ml_mandates ADD COLUMN dispatch_body TEXT;
	 ALTER TABLE ml_mandates ADD COLUMN dispatch_attempts INTEGER NOT NULL DEFAULT 0;
	 ALTER TABLE ml_mandates ADD COLUMN next_dispatch_at INTEGER;`,
	// Issue 14: how much of the agent's answer arrived (chunk offsets count in it; the stored answer may
	// also hold a gap mark or the truncation notice), and whether the answer reached its cap.
	`ALTER TABLE ml_mandates ADD COLUMN answer_chars INTEGER NOT NULL DEFAULT 0;
	 ALTER TABLE ml_mandates ADD COLUMN answer_truncated INTEGER NOT NULL DEFAULT 0;
	 UPDATE ml_mandates SET answer_chars = length(answer);`,
	// Issue 16: how often D1 refused an outbox row on its own; a poison row is dead-lettered, not retried for ever.
	"ALTER TABLE ml_outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;",
	// Issue 10: completion pushes, stored before their first attempt. A row with no device is the
	// outcome waiting for its acknowledgement grace; it fans out into one row per device of the owner.
	`CREATE TABLE ml_push (
	   id INTEGER PRIMARY KEY,
	   mandate_id TEXT NOT NULL,
	   outcome TEXT NOT NULL,
	   terminal_seq INTEGER NOT NULL,
	   message TEXT NOT NULL,
	   device_id TEXT NOT NULL DEFAULT '',
	   target TEXT,
	   attempts INTEGER NOT NULL DEFAULT 0,
	   due_at INTEGER NOT NULL,
	   expires_at INTEGER NOT NULL,
	   UNIQUE (mandate_id, outcome, device_id)
	 );
	 CREATE INDEX ml_push_due ON ml_push (due_at);`,
	// How many times a webhook-id came again: replays are audited once, not once each (issue 16).
	"ALTER TABLE ml_webhooks ADD COLUMN duplicates INTEGER NOT NULL DEFAULT 0;",
	// Issue 10: live progress off the app — an iOS Live Activity's push token ('activity') or an Android
	// device's FCM token ('fcm:<device_id>') per mandate. `version` counts the changes noted,
	// `sent_version` the last one delivered; `due_at` is the next send (coalesced) or NULL; `done` marks
	// an activity whose one end was sent (kept, so the same token is never ended twice).
	`CREATE TABLE ml_live (
	   mandate_id TEXT NOT NULL,
	   target_key TEXT NOT NULL,
	   target TEXT NOT NULL,
	   version INTEGER NOT NULL DEFAULT 1,
	   sent_version INTEGER NOT NULL DEFAULT 0,
	   last_sent_at INTEGER,
	   last_timestamp INTEGER NOT NULL DEFAULT 0,
	   due_at INTEGER,
	   in_flight INTEGER NOT NULL DEFAULT 0,
	   attempts INTEGER NOT NULL DEFAULT 0,
	   ending INTEGER NOT NULL DEFAULT 0,
	   done INTEGER NOT NULL DEFAULT 0,
	   expires_at INTEGER NOT NULL,
	   PRIMARY KEY (mandate_id, target_key)
	 );
	 CREATE INDEX ml_live_due ON ml_live (due_at);
	 ALTER TABLE ml_push ADD COLUMN ticket TEXT;`,
	// Issue 17: every row written is billed, and a rowid table with a TEXT or composite key writes its
	// key index too. These keyed tables keep their rows in the key (WITHOUT ROWID: one row per write),
	// and the outbox drops AUTOINCREMENT (a second row per insert) and holds a turn's records in one row.
	`CREATE TABLE ml_outbox_v2 (
	   id INTEGER PRIMARY KEY,
	   kind TEXT NOT NULL,
	   payload TEXT NOT NULL,
	   attempts INTEGER NOT NULL DEFAULT 0,
	   records INTEGER NOT NULL DEFAULT 1
	 );
	 INSERT INTO ml_outbox_v2 (id, kind, payload, attempts) SELECT id, kind, payload, attempts FROM ml_outbox;
	 DROP TABLE ml_outbox;
	 ALTER TABLE ml_outbox_v2 RENAME TO ml_outbox;
	 CREATE TABLE ml_meta_v2 (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
	 INSERT INTO ml_meta_v2 (key, value) SELECT key, value FROM ml_meta;
	 DROP TABLE ml_meta;
	 ALTER TABLE ml_meta_v2 RENAME TO ml_meta;
	 CREATE TABLE ml_stages_v2 (
	   mandate_id TEXT NOT NULL,
	   stage INTEGER NOT NULL,
	   status TEXT NOT NULL,
	   message TEXT,
	   updated_at INTEGER NOT NULL,
	   PRIMARY KEY (mandate_id, stage)
	 ) WITHOUT ROWID;
	 INSERT INTO ml_stages_v2 SELECT mandate_id, stage, status, message, updated_at FROM ml_stages;
	 DROP TABLE ml_stages;
	 ALTER TABLE ml_stages_v2 RENAME TO ml_stages;
	 CREATE TABLE ml_webhooks_v2 (
	   webhook_id TEXT PRIMARY KEY,
	   received_at INTEGER NOT NULL,
	   duplicates INTEGER NOT NULL DEFAULT 0
	 ) WITHOUT ROWID;
	 INSERT INTO ml_webhooks_v2 SELECT webhook_id, received_at, duplicates FROM ml_webhooks;
	 DROP TABLE ml_webhooks;
	 ALTER TABLE ml_webhooks_v2 RENAME TO ml_webhooks;`,
	// Issue 17: the answer's pieces stay in the log, each with how much had arrived; the mandate row
	// holds the answer up to `answer_seq` and catches up now and then (src/session/answer.ts).
	`ALTER TABLE ml_mandates ADD COLUMN answer_seq INTEGER NOT NULL DEFAULT 0;
	 ALTER TABLE ml_events ADD COLUMN answer_chars INTEGER;
	 ALTER TABLE ml_events ADD COLUMN answer_truncated INTEGER;`,
	// Issue 17: a session's tables stay small (a snapshot's worth of mandates, a few pushes and live
	// targets): these indexes spared no read worth having and cost a row on every write.
	`DROP INDEX ml_mandates_running;
	 DROP INDEX ml_push_due;
	 DROP INDEX ml_live_due;`,
];

/**
 * The schema every step above adds up to, created at once in a new object: a new session writes its
 * schema in one statement, not in nine steps (each DDL statement and version bump is a billed row).
 * test/schema.test.ts checks it equals the steps' result, table by table, column by column.
 */
const FRESH = `
	CREATE TABLE ml_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
	CREATE TABLE ml_events (
	  seq INTEGER PRIMARY KEY,
	  mandate_id TEXT NOT NULL,
	  frame TEXT NOT NULL,
	  answer_chars INTEGER,
	  answer_truncated INTEGER
	);
	CREATE TABLE ml_mandates (
	  mandate_id TEXT PRIMARY KEY,
	  tenant_id TEXT,
	  intent TEXT,
	  state TEXT NOT NULL,
	  execution_id TEXT UNIQUE,
	  remote_status TEXT,
	  sub_status TEXT,
	  progress INTEGER NOT NULL DEFAULT 0,
	  answer TEXT NOT NULL DEFAULT '',
	  error TEXT,
	  error_code TEXT,
	  error_http INTEGER,
	  result TEXT,
	  dispatched_at INTEGER,
	  deadline_at INTEGER,
	  next_poll_at INTEGER,
	  poll_failures INTEGER NOT NULL DEFAULT 0,
	  heartbeat_at INTEGER,
	  created_at INTEGER NOT NULL,
	  updated_at INTEGER NOT NULL,
	  agent_event_at INTEGER,
	  dispatch_body TEXT,
	  dispatch_attempts INTEGER NOT NULL DEFAULT 0,
	  next_dispatch_at INTEGER,
	  answer_chars INTEGER NOT NULL DEFAULT 0,
	  answer_truncated INTEGER NOT NULL DEFAULT 0,
	  answer_seq INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE ml_stages (
	  mandate_id TEXT NOT NULL,
	  stage INTEGER NOT NULL,
	  status TEXT NOT NULL,
	  message TEXT,
	  updated_at INTEGER NOT NULL,
	  PRIMARY KEY (mandate_id, stage)
	) WITHOUT ROWID;
	CREATE TABLE ml_webhooks (
	  webhook_id TEXT PRIMARY KEY,
	  received_at INTEGER NOT NULL,
	  duplicates INTEGER NOT NULL DEFAULT 0
	) WITHOUT ROWID;
	CREATE TABLE ml_outbox (
	  id INTEGER PRIMARY KEY,
	  kind TEXT NOT NULL,
	  payload TEXT NOT NULL,
	  attempts INTEGER NOT NULL DEFAULT 0,
	  records INTEGER NOT NULL DEFAULT 1
	);
	CREATE TABLE ml_push (
	  id INTEGER PRIMARY KEY,
	  mandate_id TEXT NOT NULL,
	  outcome TEXT NOT NULL,
	  terminal_seq INTEGER NOT NULL,
	  message TEXT NOT NULL,
	  device_id TEXT NOT NULL DEFAULT '',
	  target TEXT,
	  attempts INTEGER NOT NULL DEFAULT 0,
	  due_at INTEGER NOT NULL,
	  expires_at INTEGER NOT NULL,
	  ticket TEXT,
	  UNIQUE (mandate_id, outcome, device_id)
	);
	CREATE TABLE ml_live (
	  mandate_id TEXT NOT NULL,
	  target_key TEXT NOT NULL,
	  target TEXT NOT NULL,
	  version INTEGER NOT NULL DEFAULT 1,
	  sent_version INTEGER NOT NULL DEFAULT 0,
	  last_sent_at INTEGER,
	  last_timestamp INTEGER NOT NULL DEFAULT 0,
	  due_at INTEGER,
	  in_flight INTEGER NOT NULL DEFAULT 0,
	  attempts INTEGER NOT NULL DEFAULT 0,
	  ending INTEGER NOT NULL DEFAULT 0,
	  done INTEGER NOT NULL DEFAULT 0,
	  expires_at INTEGER NOT NULL,
	  PRIMARY KEY (mandate_id, target_key)
	);
`;

export const SESSION_MIGRATIONS: MigrationPlan = { versionTable: "ml_schema", steps: STEPS, fresh: FRESH };
