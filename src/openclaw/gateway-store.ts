import type { MigrationPlan } from "../durable/migrations.ts";
import { mustPersist, newRunState, type RunState, restoredRunState } from "./mapping.ts";

/*
 * The Gateway DO's SQLite: a few key/value rows (device key, device token, schedule) and one row
 * per watched execution with its mapping state, so a reconnect or an eviction never forwards an
 * answer twice or lowers progress, and a short-lived tombstone per unwatched execution, so a watch
 * that arrives after its unwatch is ignored. Tables share the `gw_` prefix (STYLE.md).
 */

/** What `add` did with a watch request. */
export type WatchOutcome =
	| "added"
	/** The same session watched again (a retried stage 9): TTL extended, mapping state kept. */
	| "renewed"
	/** Another session already watches this execution: refused, the owner keeps it (finding 1). */
	| "owned_by_another"
	/** Unwatched moments ago: this watch was overtaken by its unwatch (finding 12). */
	| "unwatched";

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
		// Issue 14, finding 12: unwatched executions, so a late watch is ignored until `until`.
		"CREATE TABLE IF NOT EXISTS gw_unwatched (execution_id TEXT PRIMARY KEY, until INTEGER NOT NULL);",
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

/**
 * How often a run's mapping state is written while an item streams; boundaries (mapping.ts
 * `mustPersist`) and its end are written at once.
 */
/**
 * While an item streams, its mapping state is written at most this often (issue 17: at 1 s it was
 * a billed row a second for every streamed answer). What lags is only how much of the item was
 * forwarded: after a restart the next cumulative text is forwarded from the older offset, and the
 * session appends by offset, so it takes only what it lacks.
 */
export const RUN_PERSIST_INTERVAL_MS = 5_000;

/**
 * The watched executions, kept in memory and written through to SQLite. A busy stream reads its
 * watch for every event, so it must not parse rows each time; its mapping state is persisted at most
 * every RUN_PERSIST_INTERVAL_MS while an item streams and at once at every boundary (a restart mid-run
 * resumes from there with exact chunk offsets, so the answer stays whole).
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

	/**
	 * Watches an execution for its session. An execution belongs to the first session that watches
	 * it, for good: another session's watch never re-points it. Watching again from the same session
	 * (a retried stage 9) keeps the run's mapping state and extends the TTL.
	 */
	add(
		executionId: string,
		sessionId: string,
		mandateId: string,
		expiresAt: number,
		now = Date.now(),
	): WatchOutcome {
		const existing = this.#watches().get(executionId);
		if (existing && existing.sessionId !== sessionId) return "owned_by_another";
		if (existing) {
			this.extend(existing, expiresAt);
			return "renewed";
		}
		const tombstone = this.#sql
			.exec<{ until: number }>("SELECT until FROM gw_unwatched WHERE execution_id = ?", executionId)
			.toArray()[0];
		if (tombstone && tombstone.until > now) return "unwatched";
		this.#sql.exec(
			`INSERT INTO gw_watch (execution_id, session_id, mandate_id, expires_at, run_state) VALUES (?, ?, ?, ?, ?)`,
			executionId,
			sessionId,
			mandateId,
			expiresAt,
			JSON.stringify(newRunState()),
		);
		this.#watches().set(executionId, { executionId, sessionId, mandateId, expiresAt, run: newRunState() });
		return "added";
	}

	/** Moves a watch's expiry later (never earlier). */
	extend(watch: WatchedExecution, expiresAt: number): void {
		if (expiresAt <= watch.expiresAt) return;
		watch.expiresAt = expiresAt;
		this.#sql.exec("UPDATE gw_watch SET expires_at = ? WHERE execution_id = ?", expiresAt, watch.executionId);
	}

	/**
	 * Stops watching and leaves a tombstone until `tombstoneUntil`, so a watch overtaken by this
	 * unwatch is ignored; tombstones past their time are swept here.
	 */
	unwatch(executionId: string, tombstoneUntil: number, now = Date.now()): boolean {
		this.#sql.exec("DELETE FROM gw_unwatched WHERE until <= ?", now);
		this.#sql.exec(
			`INSERT INTO gw_unwatched (execution_id, until) VALUES (?, ?)
			 ON CONFLICT (execution_id) DO UPDATE SET until = excluded.until`,
			executionId,
			tombstoneUntil,
		);
		return this.remove(executionId);
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
		const boundary = mustPersist(watch.run, run);
		watch.run = run;
		if (!boundary && !run.ended && now - (this.#persistedAt.get(executionId) ?? 0) < RUN_PERSIST_INTERVAL_MS)
			return;
		this.#persistedAt.set(executionId, now);
		this.#sql.exec(
			"UPDATE gw_watch SET run_state = ? WHERE execution_id = ?",
			JSON.stringify({ ...run, resumed: false }),
			executionId,
		);
	}
}

function fromRow(row: WatchRow): WatchedExecution {
	let run: RunState;
	try {
		run = restoredRunState(JSON.parse(row.run_state) as Partial<RunState>);
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
