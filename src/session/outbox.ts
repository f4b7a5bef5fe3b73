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
 * One row D1 always refuses must not hold back the rows behind it (issue 16): when a batch fails, its
 * rows are tried one by one, so the others go through at once. A row refused MAX_ROW_ATTEMPTS times
 * (with backoff between tries, so over tens of seconds) — or one that cannot even be turned into a
 * statement — moves to D1's `outbox_dead_letters` (logged for operators). Moving it is itself a write
 * to D1: while D1 is down that fails too, and the row stays for the next try, so an outage loses
 * nothing however long it lasts.
 */

const BATCH_SIZE = 50;
/** How long a flush in progress may take before the alarm tries again on its own. */
const FLUSH_LEASE_MS = 5_000;
/** A row refused on its own this many times is a poison row, not an outage. */
export const MAX_ROW_ATTEMPTS = 5;
/** Past this many rows waiting, an error line tells the operator D1 is not keeping up. */
export const OUTBOX_ALERT_ROWS = 1_000;

interface OutboxRow {
	id: number;
	kind: string;
	payload: string;
	attempts: number;
}

export class Outbox {
	readonly #sql: SqlStorage;
	readonly #meta: MetaStore;
	readonly #onBatch: (statements: number, rowsWritten: number) => void;
	#flushing: Promise<boolean> | null = null;

	constructor(
		sql: SqlStorage,
		meta: MetaStore,
		onBatch: (statements: number, rowsWritten: number) => void = () => {},
	) {
		this.#sql = sql;
		this.#meta = meta;
		this.#onBatch = onBatch;
	}

	add(record: OutboxRecord): void {
		this.#sql.exec(
			"INSERT INTO ml_outbox (kind, payload) VALUES (?, ?)",
			record.kind,
			JSON.stringify(record),
		);
	}

	pending(): number {
		return this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM ml_outbox").one().n;
	}

	/**
	 * When the alarm should next try to flush, or null when nothing waits. Rows pending with no
	 * failure recorded belong to a flush about to run; the alarm still covers them a little later
	 * in case the object is evicted before that flush finishes.
	 */
	retryAt(now = Date.now()): number | null {
		if (this.pending() === 0) return null;
		return this.#meta.getNumber("outbox_retry_at") ?? now + FLUSH_LEASE_MS;
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
			const rows = this.#sql
				.exec<OutboxRow & Record<string, SqlStorageValue>>(
					"SELECT id, kind, payload, attempts FROM ml_outbox ORDER BY id LIMIT ?",
					BATCH_SIZE,
				)
				.toArray();
			if (rows.length === 0) {
				this.#meta.delete("outbox_failures");
				this.#meta.delete("outbox_retry_at");
				this.#meta.delete("outbox_alerted");
				return true;
			}
			// A row that cannot become a statement is poison at once: no retry can fix it.
			const statements: Array<{ row: OutboxRow; statement: D1PreparedStatement }> = [];
			for (const row of rows) {
				try {
					statements.push({
						row,
						statement: outboxStatement(db, sessionId, row.id, JSON.parse(row.payload) as OutboxRecord),
					});
				} catch (error) {
					if (!(await this.#deadLetter(db, sessionId, row, error))) return this.#failed(rows.length, error);
				}
			}
			if (statements.length === 0) continue;
			try {
				const results = await db.batch(statements.map((item) => item.statement));
				this.#delivered(
					statements.map((item) => item.row.id),
					results,
				);
				continue;
			} catch {
				// One of them may be the problem, or D1 may be down: try each on its own.
			}
			const refused: Array<{ row: OutboxRow; error: unknown }> = [];
			for (const { row, statement } of statements) {
				try {
					this.#delivered([row.id], await db.batch([statement]));
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

	#delivered(ids: number[], results: D1Result[]): void {
		this.#onBatch(
			ids.length,
			results.reduce((sum, result) => sum + (result.meta.rows_written ?? 0), 0),
		);
		this.#sql.exec(`DELETE FROM ml_outbox WHERE id IN (${ids.map(() => "?").join(", ")})`, ...ids);
	}

	/** Moves a poison row to D1's dead letters; false when D1 would not take even that. */
	async #deadLetter(db: D1Database, sessionId: string, row: OutboxRow, error: unknown): Promise<boolean> {
		try {
			await deadLetterStatement(db, sessionId, row.id, row.kind, row.payload, String(error)).run();
		} catch {
			return false;
		}
		this.#sql.exec("DELETE FROM ml_outbox WHERE id = ?", row.id);
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
