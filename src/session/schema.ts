/**
 * The Session DO's SQLite schema. Applied in the constructor, so an object woken by an alarm or a
 * hibernated socket is as ready as one woken by a request. Internal tables share the `ml_` prefix;
 * a stored version makes each step run once.
 */
const MIGRATIONS: readonly string[] = [
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
];

export function migrate(sql: SqlStorage): void {
	sql.exec("CREATE TABLE IF NOT EXISTS ml_schema (version INTEGER NOT NULL)");
	const row = sql.exec<{ version: number }>("SELECT version FROM ml_schema").toArray()[0];
	let version = row?.version ?? 0;
	if (!row) sql.exec("INSERT INTO ml_schema (version) VALUES (0)");
	for (; version < MIGRATIONS.length; version++) {
		sql.exec(MIGRATIONS[version] as string);
		sql.exec("UPDATE ml_schema SET version = ?", version + 1);
	}
}

export class Meta {
	readonly #sql: SqlStorage;
	constructor(sql: SqlStorage) {
		this.#sql = sql;
	}
	get(key: string): string | null {
		return (
			this.#sql.exec<{ value: string }>("SELECT value FROM ml_meta WHERE key = ?", key).toArray()[0]?.value ??
			null
		);
	}
	getNumber(key: string): number | null {
		const value = this.get(key);
		return value === null ? null : Number(value);
	}
	set(key: string, value: string | number): void {
		this.#sql.exec(
			"INSERT INTO ml_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
			key,
			String(value),
		);
	}
	delete(key: string): void {
		this.#sql.exec("DELETE FROM ml_meta WHERE key = ?", key);
	}
}
