import { type OutboxRecord, outboxStatement } from "../d1/outbox-statements.ts";
import type { MetaStore } from "../durable/meta.ts";
import { backoffDelay, OUTBOX_BACKOFF_CAP_MS } from "../pipeline/backoff.ts";

export type { OutboxRecord };

/**
 * The D1 outbox (DESIGN.md): audit rows and the D1 copies of stage progress, executions and
 * delivery events are first written to DO storage in the same transaction as the state change
 * they describe, then copied to D1 in batches (the statements: src/d1/outbox-statements.ts). A D1
 * failure leaves them in place and the alarm retries with backoff, so a D1 hiccup loses nothing.
 */

const BATCH_SIZE = 50;
/** How long a flush in progress may take before the alarm tries again on its own. */
const FLUSH_LEASE_MS = 5_000;

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
				.exec<{ id: number; payload: string }>(
					"SELECT id, payload FROM ml_outbox ORDER BY id LIMIT ?",
					BATCH_SIZE,
				)
				.toArray();
			if (rows.length === 0) {
				this.#meta.delete("outbox_failures");
				this.#meta.delete("outbox_retry_at");
				return true;
			}
			try {
				const results = await db.batch(
					rows.map((row) => outboxStatement(db, sessionId, row.id, JSON.parse(row.payload) as OutboxRecord)),
				);
				this.#onBatch(
					rows.length,
					results.reduce((sum, result) => sum + (result.meta.rows_written ?? 0), 0),
				);
			} catch (error) {
				const failures = (this.#meta.getNumber("outbox_failures") ?? 0) + 1;
				this.#meta.set("outbox_failures", failures);
				this.#meta.set("outbox_retry_at", Date.now() + backoffDelay(failures, 1_000, OUTBOX_BACKOFF_CAP_MS));
				console.warn(
					JSON.stringify({
						msg: "d1 outbox flush failed",
						failures,
						pending: rows.length,
						error: String(error),
					}),
				);
				return false;
			}
			const lastId = rows[rows.length - 1]?.id ?? 0;
			this.#sql.exec("DELETE FROM ml_outbox WHERE id <= ?", lastId);
		}
	}
}
