import type { MigrationPlan } from "../durable/migrations.ts";
import { newRunState, type RunState } from "./mapping.ts";

/*
 * The Gateway DO's SQLite: a few key/value rows (device key, device token, schedule) and one row
 * per watched execution with its mapping state, so a reconnect or an eviction never forwards an
 * answer twice or lowers progress. Tables share the `gw_` prefix (STYLE.md).
 */

export interface WatchedExecution {
	executionId: string;
	sessionId: string;
	mandateId: string;
	expiresAt: number;
	run: RunState;
}

interface WatchRow extends Record<string, SqlStorageValue> {
	execution_id: string;
	session_id: string;
	mandate_id: string;
	expires_at: number;
	run_state: string;
}

/** The Gateway DO's schema steps (src/durable/migrations.ts); append, never edit. */
export const GATEWAY_MIGRATIONS: MigrationPlan = {
	versionTable: "gw_schema",
	steps: [
		`CREATE TABLE IF NOT EXISTS gw_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
		 CREATE TABLE IF NOT EXISTS gw_watch (
		   execution_id TEXT PRIMARY KEY,
		   session_id   TEXT NOT NULL,
		   mandate_id   TEXT NOT NULL,
		   expires_at   INTEGER NOT NULL,
		   run_state    TEXT NOT NULL
		 );`,
	],
	// Objects created before the shared runner kept their version as gw_meta's `schema_version`.
	legacyVersion: (sql) => {
		const hasMeta =
			sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'gw_meta'").one().n > 0;
		if (!hasMeta) return 0;
		const row = sql
			.exec<{ value: string }>("SELECT value FROM gw_meta WHERE key = 'schema_version'")
			.toArray()[0];
		return Number(row?.value ?? 0);
	},
};

/** How often a run's mapping state is written while it streams; its end is written at once. */
const RUN_PERSIST_INTERVAL_MS = 1_000;

/**
 * The watched executions, kept in memory and written through to SQLite. A busy stream reads its
 * watch for every event, so it must not parse rows each time; its mapping state is persisted at most
 * once a second (a restart mid-run resumes from there, and chunk offsets keep the answer whole).
 */
export class WatchStore {
	readonly #sql: SqlStorage;
	#cache: Map<string, WatchedExecution> | null = null;
	readonly #persistedAt = new Map<string, number>();

	constructor(sql: SqlStorage) {
		this.#sql = sql;
	}

	#watches(): Map<string, WatchedExecution> {
		if (!this.#cache) {
			this.#cache = new Map(
				this.#sql
					.exec<WatchRow>("SELECT * FROM gw_watch")
					.toArray()
					.map((row) => [row.execution_id, fromRow(row)] as const),
			);
		}
		return this.#cache;
	}

	/** Watching again (a retried stage 9) keeps the run's mapping state and extends the TTL. */
	upsert(executionId: string, sessionId: string, mandateId: string, expiresAt: number): void {
		this.#sql.exec(
			`INSERT INTO gw_watch (execution_id, session_id, mandate_id, expires_at, run_state) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT (execution_id) DO UPDATE SET session_id = excluded.session_id,
			   mandate_id = excluded.mandate_id, expires_at = excluded.expires_at`,
			executionId,
			sessionId,
			mandateId,
			expiresAt,
			JSON.stringify(newRunState()),
		);
		const existing = this.#watches().get(executionId);
		this.#watches().set(executionId, {
			executionId,
			sessionId,
			mandateId,
			expiresAt,
			run: existing?.run ?? newRunState(),
		});
	}

	remove(executionId: string): boolean {
		this.#watches().delete(executionId);
		this.#persistedAt.delete(executionId);
		return this.#sql.exec("DELETE FROM gw_watch WHERE execution_id = ?", executionId).rowsWritten > 0;
	}

	/** Drops watches whose TTL passed (unwatch never came); returns their ids. */
	expire(now: number): string[] {
		const gone = [...this.#watches().values()]
			.filter((watch) => watch.expiresAt <= now)
			.map((watch) => watch.executionId);
		for (const executionId of gone) this.remove(executionId);
		return gone.sort();
	}

	all(): WatchedExecution[] {
		return [...this.#watches().values()].sort((a, b) => (a.executionId < b.executionId ? -1 : 1));
	}

	/** The first watch that satisfies `predicate`, in no particular order (no copy, no sort). */
	find(predicate: (watch: WatchedExecution) => boolean): WatchedExecution | null {
		for (const watch of this.#watches().values()) if (predicate(watch)) return watch;
		return null;
	}

	get(executionId: string): WatchedExecution | null {
		return this.#watches().get(executionId) ?? null;
	}

	count(): number {
		return this.#watches().size;
	}

	earliestExpiry(): number | null {
		let earliest: number | null = null;
		for (const watch of this.#watches().values()) {
			if (earliest === null || watch.expiresAt < earliest) earliest = watch.expiresAt;
		}
		return earliest;
	}

	saveRun(executionId: string, run: RunState, now = Date.now()): void {
		const watch = this.#watches().get(executionId);
		if (!watch) return;
		watch.run = run;
		if (!run.ended && now - (this.#persistedAt.get(executionId) ?? 0) < RUN_PERSIST_INTERVAL_MS) return;
		this.#persistedAt.set(executionId, now);
		this.#sql.exec(
			"UPDATE gw_watch SET run_state = ? WHERE execution_id = ?",
			JSON.stringify(run),
			executionId,
		);
	}
}

function fromRow(row: WatchRow): WatchedExecution {
	let run: RunState;
	try {
		run = { ...newRunState(), ...(JSON.parse(row.run_state) as Partial<RunState>) };
	} catch {
		run = newRunState();
	}
	return {
		executionId: row.execution_id,
		sessionId: row.session_id,
		mandateId: row.mandate_id,
		expiresAt: row.expires_at,
		run,
	};
}
