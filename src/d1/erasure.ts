/**
 * Erasure and retention in D1 (issue 12, DESIGN.md "Operations"). Every statement deletes by a key
 * the caller holds (a session, execution or mandate id) or walks a table in the order rows were
 * written (rowid; audit_log's key starts with its time), in bounded batches — so no sweep ever holds
 * D1 for long.
 */

/** What one session owns in D1, as its Session DO knows it before it forgets. */
export interface SessionFootprint {
	sessionId: string;
	mandateIds: string[];
	executionIds: string[];
}

/** Rows removed, per table. */
export type ErasedRows = Record<string, number>;

/** Deletes every D1 row of one session and remembers its executions as erased; idempotent. */
export async function eraseSessionRows(
	db: D1Database,
	{ sessionId, mandateIds, executionIds }: SessionFootprint,
	now: number,
): Promise<ErasedRows> {
	const at = new Date(now).toISOString();
	const statements: Array<[string, D1PreparedStatement]> = [];
	for (const executionId of executionIds) {
		statements.push([
			"audit_log",
			db.prepare("DELETE FROM audit_log WHERE execution_id = ?").bind(executionId),
		]);
		statements.push([
			"delivery_events",
			db.prepare("DELETE FROM delivery_events WHERE execution_id = ?").bind(executionId),
		]);
		statements.push([
			"executions",
			db.prepare("DELETE FROM executions WHERE execution_id = ?").bind(executionId),
		]);
		statements.push([
			"erased_executions",
			db
				.prepare("INSERT OR IGNORE INTO erased_executions (execution_id, erased_at) VALUES (?, ?)")
				.bind(executionId, at),
		]);
	}
	for (const mandateId of mandateIds) {
		statements.push([
			"mandate_owners",
			db
				.prepare("DELETE FROM mandate_owners WHERE mandate_id = ? AND session_id = ?")
				.bind(mandateId, sessionId),
		]);
	}
	// The session's own audit rows not about an execution (index audit_log_mandate), its dead letters
	// (ids "<session_id>:<n>") and its owner row.
	statements.push([
		"audit_log",
		db.prepare("DELETE FROM audit_log WHERE session_id = ? AND execution_id IS NULL").bind(sessionId),
	]);
	statements.push([
		"outbox_dead_letters",
		db
			.prepare("DELETE FROM outbox_dead_letters WHERE id >= ? AND id < ?")
			.bind(`${sessionId}:`, `${sessionId};`),
	]);
	statements.push([
		"session_owners",
		db.prepare("DELETE FROM session_owners WHERE session_id = ?").bind(sessionId),
	]);
	const results = await db.batch(statements.map(([, statement]) => statement));
	const removed: ErasedRows = {};
	statements.forEach(([table], i) => {
		if (table === "erased_executions") return;
		removed[table] = (removed[table] ?? 0) + (results[i]?.meta.changes ?? 0);
	});
	return removed;
}

/** The sessions a user opened (their first mobile token bound them). */
export async function sessionsOfUser(db: D1Database, sub: string): Promise<string[]> {
	const rows = await db
		.prepare("SELECT session_id FROM session_owners WHERE sub = ?")
		.bind(sub)
		.all<{ session_id: string }>();
	return rows.results.map((row) => row.session_id);
}

/** A session that deleted itself (retention) forgets its owner row. */
export async function deleteSessionOwner(db: D1Database, sessionId: string): Promise<void> {
	await db.prepare("DELETE FROM session_owners WHERE session_id = ?").bind(sessionId).run();
}

/** Whether an execution was erased (a late webhook for it is answered and stored nowhere). */
export async function isErasedExecution(db: D1Database, executionId: string): Promise<boolean> {
	return (
		(await db
			.prepare("SELECT 1 AS x FROM erased_executions WHERE execution_id = ?")
			.bind(executionId)
			.first()) !== null
	);
}

/** How many rows one sweep deletes from one table at most. */
export const SWEEP_BATCH = 500;

const oldest = (table: string, column: string, extra = "", key = "rowid", order = "rowid") =>
	`DELETE FROM ${table} WHERE (${key}) IN (SELECT ${key} FROM ${table} WHERE ${column} < ?1 ${extra} ORDER BY ${order} LIMIT ${SWEEP_BATCH})`;
const RUNNING = "SELECT execution_id FROM executions WHERE state IN ('running', 'dispatching')";

/** Per table, the statement deleting its oldest SWEEP_BATCH rows from before ?1 (ISO 8601). */
export const SWEEP_QUERIES = {
	executions: oldest("executions", "updated_at", "AND state NOT IN ('running', 'dispatching')"),
	// Keyed (at, session_id, seq) WITHOUT ROWID (migration 0008): its key is its time order.
	audit_log: oldest(
		"audit_log",
		"at",
		`AND (execution_id IS NULL OR execution_id NOT IN (${RUNNING}))`,
		"at, session_id, seq",
		"at",
	),
	delivery_events: oldest("delivery_events", "received_at"),
	mandate_owners: oldest("mandate_owners", "claimed_at"),
	outbox_dead_letters: oldest("outbox_dead_letters", "failed_at"),
	erased_executions: oldest("erased_executions", "erased_at"),
} as const satisfies Record<string, string>;

/**
 * One bounded retention sweep (the Cron Trigger): rows older than `cutoff` go, at most SWEEP_BATCH per
 * table. An execution still running is never touched (its rows are minutes old anyway: a mandate
 * ends by its deadline). Returns the rows removed, per table; call again while any table hit the batch.
 */
export async function sweepD1(db: D1Database, cutoff: number): Promise<ErasedRows> {
	const before = new Date(cutoff).toISOString();
	const statements = Object.entries(SWEEP_QUERIES).map(
		([table, sql]) => [table, db.prepare(sql).bind(before)] as const,
	);
	const results = await db.batch(statements.map(([, statement]) => statement));
	const removed: ErasedRows = {};
	statements.forEach(([table], i) => {
		removed[table] = results[i]?.meta.changes ?? 0;
	});
	return removed;
}
