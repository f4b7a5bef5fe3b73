import { backoffDelay, OUTBOX_BACKOFF_CAP_MS } from "../pipeline/backoff.ts";
import type { Meta } from "./schema.ts";

/**
 * The D1 outbox (DESIGN.md): audit rows and the D1 copies of stage progress, executions and
 * delivery events are first written to DO storage in the same transaction as the state change
 * they describe, then copied to D1 in batches. A D1 failure leaves them in place and the alarm
 * retries with backoff, so a D1 hiccup loses nothing. Every statement is idempotent (keyed by a
 * stable id, and state upserts only move to a newer `version`), so a batch that D1 applied but
 * whose answer was lost can be sent again safely.
 */

export type OutboxRecord =
	| {
			kind: "audit";
			mandate_id: string | null;
			execution_id: string | null;
			event: string;
			detail: Record<string, unknown>;
			at: number;
	  }
	| {
			kind: "stage";
			mandate_id: string;
			stage: number;
			status: string;
			message: string | null;
			at: number;
	  }
	| {
			kind: "execution";
			execution_id: string;
			mandate_id: string;
			tenant_id: string;
			intent: string | null;
			state: string;
			summary: string | null;
			delivered_to: string[] | null;
			error: string | null;
			created_at: number;
			at: number;
			completed_at: string | null;
	  }
	| {
			kind: "delivery";
			webhook_id: string;
			execution_id: string;
			status: string;
			payload: string;
			outcome: string;
			at: number;
	  };

const BATCH_SIZE = 50;
/** How long a flush in progress may take before the alarm tries again on its own. */
const FLUSH_LEASE_MS = 5_000;

export class Outbox {
	readonly #sql: SqlStorage;
	readonly #meta: Meta;
	readonly #onBatch: (statements: number, rowsWritten: number) => void;
	#flushing: Promise<boolean> | null = null;

	constructor(
		sql: SqlStorage,
		meta: Meta,
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
					rows.map((row) => toStatement(db, sessionId, row.id, JSON.parse(row.payload) as OutboxRecord)),
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

const iso = (ms: number) => new Date(ms).toISOString();

function toStatement(
	db: D1Database,
	sessionId: string,
	id: number,
	record: OutboxRecord,
): D1PreparedStatement {
	switch (record.kind) {
		case "audit":
			return db
				.prepare(
					`INSERT OR IGNORE INTO audit_log (id, session_id, seq, mandate_id, execution_id, event, detail, at)
					 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				)
				.bind(
					`${sessionId}:${id}`,
					sessionId,
					id,
					record.mandate_id,
					record.execution_id,
					record.event,
					JSON.stringify(record.detail),
					iso(record.at),
				);
		case "stage":
			return db
				.prepare(
					`INSERT INTO pipeline_progress (session_id, mandate_id, stage, status, message, updated_at, version)
					 VALUES (?, ?, ?, ?, ?, ?, ?)
					 ON CONFLICT(session_id, mandate_id, stage) DO UPDATE SET status = excluded.status,
					   message = excluded.message, updated_at = excluded.updated_at, version = excluded.version
					 WHERE excluded.version > pipeline_progress.version`,
				)
				.bind(sessionId, record.mandate_id, record.stage, record.status, record.message, iso(record.at), id);
		case "execution":
			return db
				.prepare(
					`INSERT INTO executions (execution_id, session_id, mandate_id, tenant_id, intent, state, summary,
					   delivered_to, error, created_at, updated_at, completed_at, version)
					 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
					 ON CONFLICT(execution_id) DO UPDATE SET state = excluded.state, summary = excluded.summary,
					   delivered_to = excluded.delivered_to, error = excluded.error, updated_at = excluded.updated_at,
					   completed_at = excluded.completed_at, version = excluded.version
					 WHERE excluded.version > executions.version AND executions.session_id = excluded.session_id`,
				)
				.bind(
					record.execution_id,
					sessionId,
					record.mandate_id,
					record.tenant_id,
					record.intent,
					record.state,
					record.summary,
					record.delivered_to ? JSON.stringify(record.delivered_to) : null,
					record.error,
					iso(record.created_at),
					iso(record.at),
					record.completed_at,
					id,
				);
		case "delivery":
			return db
				.prepare(
					`INSERT OR IGNORE INTO delivery_events (webhook_id, execution_id, session_id, status, payload, outcome, received_at)
					 VALUES (?, ?, ?, ?, ?, ?, ?)`,
				)
				.bind(
					record.webhook_id,
					record.execution_id,
					sessionId,
					record.status,
					record.payload,
					record.outcome,
					iso(record.at),
				);
	}
}
