import { deadLetterStatement, type OutboxRecord, outboxStatement } from "../d1/outbox-statements.ts";
import type { MetaStore } from "../durable/meta.ts";
import { log } from "../log.ts";
import { backoffDelay, OUTBOX_BACKOFF_CAP_MS } from "../pipeline/backoff.ts";

export type { OutboxRecord };

/**
 * The D1 outbox (DESIGN.md): audit rows and the D1 copies of stage progress, executions and delivery
 * events are first written to DO storage in the same turn as the state change they describe, then
 * copied to D1 in batches (the statements: src/d1/outbox-statements.ts), off the caller's path. A D1
 * outage leaves them in place and the alarm retries with backoff, so a D1 hiccup loses nothing.
 *
 * The records of one turn share one row (issue 17): a webhook that moves three stages writes one
 * outbox row, not nine, and deletes one. Each record keeps an id of its own — the D1 key of its audit
 * row, the version of its upsert — taken from a counter that only goes up: the row's id is its first
 * record's, and a new counter starts at the clock (in microseconds-like units, `Date.now() × 1000`),
 * so ids stay unique and ordered across restarts without a stored sequence (no AUTOINCREMENT: that
 * would write a second row per insert).
 *
 * One row D1 always refuses must not hold back the rows behind it (issue 16): when a batch fails, its
 * rows are tried one by one (a row of several records is first split into one row per record), so the others go through at once. A row refused MAX_ROW_ATTEMPTS times
 * (with backoff between tries, so over tens of seconds) — or one that cannot even be turned into a
 * statement — moves to D1's `outbox_dead_letters` (logged for operators). Moving it is itself a write
 * to D1: while D1 is down that fails too, and the row stays for the next try, so an outage loses
 * nothing however long it lasts.
 */

/** Records per D1 batch (a row of several records is never cut in two). */
const BATCH_SIZE = 50;
/** Ids per millisecond of clock; a turn writing more runs ahead of the clock (and records that). */
const IDS_PER_MS = 1_000;
/** How long a flush in progress may take before the alarm tries again on its own. */
const FLUSH_LEASE_MS = 5_000;
/** An alarm due within this long covers rows a flush is copying (they are tried again when it runs). */
export const OUTBOX_COVER_MS = 60_000;
/** A row refused on its own this many times is a poison row, not an outage. */
export const MAX_ROW_ATTEMPTS = 5;
/** Past this many rows waiting, an error line tells the operator D1 is not keeping up. */
export const OUTBOX_ALERT_ROWS = 1_000;

interface OutboxRow {
	id: number;
	kind: string;
	payload: string;
	attempts: number;
	records: number;
}

export class Outbox {
	readonly #sql: SqlStorage;
	readonly #meta: MetaStore;
	#flushing: Promise<boolean> | null = null;
	/** Records of the current turn, written as one row by `commit()`. */
	#turn: OutboxRecord[] = [];
	/** The next record id (null until read, after a restart). */
	#next: number | null = null;
	#added = 0;
	/**
	 * Records in the table, kept as rows are written and deleted (null until read, after a restart), so
	 * the schedule's "anything waiting?" and a flush that has copied everything cost no statement.
	 */
	#stored: number | null = null;

	constructor(sql: SqlStorage, meta: MetaStore) {
		this.#sql = sql;
		this.#meta = meta;
	}

	/**
	 * Adds a record to this turn's row. The row is written by `commit()` — which the session calls
	 * before it answers, flushes or arms its alarm — and at the latest in a microtask of the same turn,
	 * so a record is stored in the same implicit transaction as the state change it describes.
	 */
	add(record: OutboxRecord): void {
		this.#added += 1;
		this.#turn.push(record);
		if (this.#turn.length === 1) queueMicrotask(() => this.commit());
	}

	/** Records added since this object started: a turn that added none has nothing to copy to D1. */
	get added(): number {
		return this.#added;
	}

	/** Writes this turn's records as one row. */
	commit(): void {
		const records = this.#turn;
		if (records.length === 0) return;
		this.#turn = [];
		const id = this.#takeIds(records.length);
		const [first] = records;
		this.#sql.exec(
			"INSERT INTO ml_outbox (id, kind, payload, records) VALUES (?, ?, ?, ?)",
			id,
			records.length === 1 && first ? first.kind : "batch",
			JSON.stringify(records.length === 1 ? first : records),
			records.length,
		);
		if (this.#stored !== null) this.#stored += records.length;
	}

	/** Forgets this turn's records and every row waiting (the session is being erased). */
	clear(): void {
		this.#turn = [];
		this.#sql.exec("DELETE FROM ml_outbox");
		this.#stored = 0;
	}

	#takeIds(n: number): number {
		const now = Date.now() * IDS_PER_MS;
		if (this.#next === null) {
			const stored = this.#sql
				.exec<{ next: number | null }>("SELECT MAX(id + records) AS next FROM ml_outbox")
				.one().next;
			this.#next = Math.max(stored ?? 0, this.#meta.getNumber("outbox_next_id") ?? 0);
		}
		const id = Math.max(this.#next, now);
		this.#next = id + n;
		// Far ahead of the clock (a turn of thousands of records): a restart must not fall behind it.
		if (this.#next > now + 60_000 * IDS_PER_MS) this.#meta.set("outbox_next_id", this.#next);
		return id;
	}

	/** Records waiting for D1. */
	pending(): number {
		this.commit();
		this.#stored ??=
			this.#sql.exec<{ n: number | null }>("SELECT SUM(records) AS n FROM ml_outbox").one().n ?? 0;
		return this.#stored;
	}

	/**
	 * When the alarm should next try to flush, or null when nothing waits (or the alarm is due soon
	 * anyway: `nextAlarm`, the other jobs' earliest). Rows pending with no failure recorded belong to
	 * a flush about to run; the alarm still covers them a little later in case the object is evicted
	 * before that flush finishes — unless another job brings it within OUTBOX_COVER_MS, which covers
	 * them as well and spares moving the alarm there and back around every flush.
	 */
	retryAt(now = Date.now(), nextAlarm: number | null = null): number | null {
		if (this.pending() === 0) return null;
		const retry = this.#meta.getNumber("outbox_retry_at");
		if (retry !== null) return retry;
		if (nextAlarm !== null && nextAlarm <= now + OUTBOX_COVER_MS) return null;
		return now + FLUSH_LEASE_MS;
	}

	/** True while a failed flush waits for its retry (the alarm's). */
	backingOff(now = Date.now()): boolean {
		return (this.#meta.getNumber("outbox_retry_at") ?? 0) > now;
	}

	/** The flush in progress, if any (so a caller that must see D1 up to date can wait for it). */
	inProgress(): Promise<boolean> | null {
		return this.#flushing;
	}

	/**
	 * Copies everything pending to D1. One flush runs at a time (a second caller waits and then
	 * flushes what arrived meanwhile), so D1 sees the rows in the order they were written.
	 * Resolves true when the outbox is empty afterwards.
	 */
	async flush(db: D1Database, sessionId: string): Promise<boolean> {
		while (this.#flushing) await this.#flushing;
		this.#flushing = this.#drain(db, sessionId).finally(() => {
			this.#flushing = null;
		});
		return this.#flushing;
	}

	async #drain(db: D1Database, sessionId: string): Promise<boolean> {
		for (;;) {
			this.commit();
			// Everything copied (the count says so): no statement to find the table empty.
			const rows =
				this.#stored === 0
					? []
					: this.#sql
							.exec<OutboxRow & Record<string, SqlStorageValue>>(
								"SELECT id, kind, payload, attempts, records FROM ml_outbox ORDER BY id LIMIT ?",
								BATCH_SIZE,
							)
							.toArray();
			// Fewer than a batch is the whole table: the count is exact again (whoever wrote the rows);
			// a full batch may leave more behind, so it is counted anew when next asked.
			this.#stored = rows.length < BATCH_SIZE ? rows.reduce((sum, row) => sum + row.records, 0) : null;
			if (rows.length === 0) {
				this.#meta.delete("outbox_failures");
				this.#meta.delete("outbox_retry_at");
				this.#meta.delete("outbox_alerted");
				return true;
			}
			// A row that cannot become statements is poison at once: no retry can fix it.
			const statements: Array<{ row: OutboxRow; statements: D1PreparedStatement[] }> = [];
			for (const row of rows) {
				try {
					statements.push({ row, statements: rowStatements(db, sessionId, row) });
				} catch (error) {
					if (!(await this.#deadLetter(db, sessionId, row, error))) return this.#failed(rows.length, error);
				}
			}
			if (statements.length === 0) continue;
			const all = statements.flatMap((item) => item.statements);
			try {
				if (all.length > 0) await db.batch(all);
				this.#delivered(statements.map((item) => item.row));
				continue;
			} catch {
				// One of them may be the problem, or D1 may be down: try each record on its own.
			}
			if (statements.some((item) => item.row.records > 1)) {
				this.#split(statements.map((item) => item.row));
				continue;
			}
			const refused: Array<{ row: OutboxRow; error: unknown }> = [];
			for (const { row, statements: own } of statements) {
				try {
					await db.batch(own);
					this.#delivered([row]);
				} catch (error) {
					refused.push({ row, error });
				}
			}
			const lastError = refused.at(-1)?.error ?? null;
			// A row refused again and again goes to the dead letters; if D1 will not take even that, D1 is
			// down rather than the row bad, and the row stays for the next try.
			for (const { row, error } of refused) {
				const attempts = row.attempts + 1;
				this.#sql.exec("UPDATE ml_outbox SET attempts = ? WHERE id = ?", attempts, row.id);
				if (attempts >= MAX_ROW_ATTEMPTS) await this.#deadLetter(db, sessionId, { ...row, attempts }, error);
			}
			if (refused.length > 0) return this.#failed(refused.length, lastError);
		}
	}

	/** Rewrites rows of several records as one row per record, so each is retried and refused alone. */
	#split(rows: OutboxRow[]): void {
		for (const row of rows) {
			if (row.records <= 1) continue;
			const records = JSON.parse(row.payload) as OutboxRecord[];
			this.#sql.exec("DELETE FROM ml_outbox WHERE id = ?", row.id);
			records.forEach((record, i) => {
				this.#sql.exec(
					"INSERT INTO ml_outbox (id, kind, payload, records, attempts) VALUES (?, ?, ?, 1, ?)",
					row.id + i,
					record.kind,
					JSON.stringify(record),
					row.attempts,
				);
			});
		}
	}

	#delivered(rows: OutboxRow[]): void {
		this.#sql.exec(
			`DELETE FROM ml_outbox WHERE id IN (${rows.map(() => "?").join(", ")})`,
			...rows.map((row) => row.id),
		);
		this.#forget(rows);
	}

	/** Rows deleted: the count follows (rows written meanwhile were counted when they were). */
	#forget(rows: OutboxRow[]): void {
		if (this.#stored === null) return;
		for (const row of rows) this.#stored -= row.records;
	}

	/** Moves a poison row to D1's dead letters; false when D1 would not take even that. */
	async #deadLetter(db: D1Database, sessionId: string, row: OutboxRow, error: unknown): Promise<boolean> {
		try {
			await deadLetterStatement(db, sessionId, row.id, row.kind, row.payload, String(error)).run();
		} catch {
			return false;
		}
		this.#sql.exec("DELETE FROM ml_outbox WHERE id = ?", row.id);
		this.#forget([row]);
		log("error", "outbox row dead-lettered", {
			session_id: sessionId,
			outbox_id: row.id,
			kind: row.kind,
			attempts: row.attempts,
			error: String(error).slice(0, 500),
		});
		return true;
	}

	#failed(refused: number, error: unknown): false {
		const failures = (this.#meta.getNumber("outbox_failures") ?? 0) + 1;
		this.#meta.set("outbox_failures", failures);
		this.#meta.set("outbox_retry_at", Date.now() + backoffDelay(failures, 1_000, OUTBOX_BACKOFF_CAP_MS));
		const pending = this.pending();
		log("warn", "d1 outbox flush failed", {
			failures,
			refused,
			pending,
			error: String(error),
		});
		if (pending > OUTBOX_ALERT_ROWS && this.#meta.get("outbox_alerted") === null) {
			this.#meta.set("outbox_alerted", 1);
			log("error", "outbox backlog over bound", { pending, bound: OUTBOX_ALERT_ROWS });
		}
		return false;
	}
}

/** The D1 statements of one outbox row: one per record (none for a legacy stage record), each keyed by its own id. */
function rowStatements(db: D1Database, sessionId: string, row: OutboxRow): D1PreparedStatement[] {
	const parsed = JSON.parse(row.payload) as OutboxRecord | OutboxRecord[];
	const records = Array.isArray(parsed) ? parsed : [parsed];
	if (records.length !== row.records)
		throw new Error(`outbox row holds ${records.length} of ${row.records} records`);
	return records.flatMap((record, i) => outboxStatement(db, sessionId, row.id + i, record) ?? []);
}
