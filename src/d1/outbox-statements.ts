/**
 * The D1 side of the Session DO's outbox (DESIGN.md, "Rules that keep it correct"): what one outbox
 * row becomes in D1. Every statement is idempotent — keyed by a stable id, and state upserts only move
 * to a newer `version` — so a batch that D1 applied but whose answer was lost can be sent again safely.
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
			/** Legacy (before migration 0008): a stage change, now carried by its audit row alone. */
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
			/** Ours: when this service learned the outcome (ISO 8601). */
			completed_at: string | null;
			/** ObeGee's own `completed_at`, as it said it (bounded); absent in rows written before issue 16. */
			reported_completed_at?: string | null;
	  }
	| {
			/** The session was bound to its user (issue 12: erasure finds a user's sessions by this). */
			kind: "owner";
			sub: string;
			tenant_id: string | null;
			at: number;
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

const iso = (ms: number) => new Date(ms).toISOString();

export function outboxStatement(
	db: D1Database,
	sessionId: string,
	id: number,
	record: OutboxRecord,
): D1PreparedStatement | null {
	switch (record.kind) {
		case "audit":
			return db
				.prepare(
					`INSERT OR IGNORE INTO audit_log (session_id, seq, mandate_id, execution_id, event, detail, at)
					 VALUES (?, ?, ?, ?, ?, ?, ?)`,
				)
				.bind(
					sessionId,
					id,
					record.mandate_id,
					record.execution_id,
					record.event,
					JSON.stringify(record.detail),
					iso(record.at),
				);
		case "stage":
			// Written by sessions before migration 0008 and possibly still in an outbox: D1 now derives
			// each stage from its audit row (src/d1/executions.ts), so there is nothing left to write.
			return null;
		case "execution":
			return db
				.prepare(
					`INSERT INTO executions (execution_id, session_id, mandate_id, tenant_id, intent, state, summary,
					   delivered_to, error, created_at, updated_at, completed_at, reported_completed_at, version)
					 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
					 ON CONFLICT(execution_id) DO UPDATE SET state = excluded.state, summary = excluded.summary,
					   delivered_to = excluded.delivered_to, error = excluded.error, updated_at = excluded.updated_at,
					   completed_at = excluded.completed_at, reported_completed_at = excluded.reported_completed_at,
					   version = excluded.version
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
					record.reported_completed_at ?? null,
					id,
				);
		case "owner":
			return db
				.prepare(
					`INSERT INTO session_owners (session_id, sub, tenant_id, bound_at) VALUES (?, ?, ?, ?)
					 ON CONFLICT(session_id) DO UPDATE SET tenant_id = COALESCE(session_owners.tenant_id, excluded.tenant_id)`,
				)
				.bind(sessionId, record.sub, record.tenant_id, iso(record.at));
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

/** A poison outbox row, kept for operators in `outbox_dead_letters` (id "<session_id>:<outbox id>"). */
export function deadLetterStatement(
	db: D1Database,
	sessionId: string,
	id: number,
	kind: string,
	payload: string,
	error: string,
): D1PreparedStatement {
	return db
		.prepare(
			`INSERT OR IGNORE INTO outbox_dead_letters (id, session_id, kind, payload, error, failed_at)
			 VALUES (?, ?, ?, ?, ?, ?)`,
		)
		.bind(`${sessionId}:${id}`, sessionId, kind, payload, error.slice(0, 2_000), new Date().toISOString());
}
