/**
 * Executions in D1 (table `executions`, written through the Session DOs' outboxes): which session owns
 * an execution, and its record with stages, audit timeline and delivery events for operators.
 */

/**
 * Which session owns an execution, remembered by this isolate when an execute passes through it, so
 * the delivery webhook that usually follows skips a D1 read. The mapping never changes once made;
 * anything not remembered here (another isolate, a restart) is read from D1.
 */
const MAX_REMEMBERED = 10_000;
const sessionsByExecution = new Map<string, string>();

export function rememberExecution(executionId: string, sessionId: string): void {
	// First come, for good: an execution's owner never changes (issue 14).
	if (sessionsByExecution.has(executionId)) return;
	if (sessionsByExecution.size >= MAX_REMEMBERED) {
		const oldest = sessionsByExecution.keys().next().value;
		if (oldest !== undefined) sessionsByExecution.delete(oldest);
	}
	sessionsByExecution.set(executionId, sessionId);
}

export async function sessionOfExecution(db: D1Database, executionId: string): Promise<string | null> {
	const remembered = sessionsByExecution.get(executionId);
	if (remembered) return remembered;
	const row = await db
		.prepare("SELECT session_id FROM executions WHERE execution_id = ?")
		.bind(executionId)
		.first<{ session_id: string }>();
	if (row) rememberExecution(executionId, row.session_id);
	return row?.session_id ?? null;
}

interface ExecutionRow {
	execution_id: string;
	session_id: string;
	mandate_id: string;
	tenant_id: string;
	intent: string | null;
	state: string;
	summary: string | null;
	delivered_to: string | null;
	error: string | null;
	created_at: string;
	updated_at: string;
	completed_at: string | null;
}

/** `GET /api/executions/:id`: the record, its stages, its audit timeline and its delivery events. */
export async function readExecution(db: D1Database, executionId: string) {
	const execution = await db
		.prepare(
			`SELECT execution_id, session_id, mandate_id, tenant_id, intent, state, summary, delivered_to, error,
			        created_at, updated_at, completed_at
			 FROM executions WHERE execution_id = ?`,
		)
		.bind(executionId)
		.first<ExecutionRow>();
	if (!execution) return null;
	const [stages, timeline, deliveries] = await db.batch([
		db
			.prepare(
				"SELECT stage, status, message, updated_at FROM pipeline_progress WHERE session_id = ? AND mandate_id = ? ORDER BY stage",
			)
			.bind(execution.session_id, execution.mandate_id),
		db
			.prepare(
				`SELECT event, detail, at FROM audit_log
				 WHERE session_id = ? AND (execution_id = ? OR (execution_id IS NULL AND mandate_id = ?)) ORDER BY seq`,
			)
			.bind(execution.session_id, execution.execution_id, execution.mandate_id),
		db
			.prepare(
				"SELECT webhook_id, status, outcome, received_at FROM delivery_events WHERE execution_id = ? ORDER BY received_at",
			)
			.bind(execution.execution_id),
	]);
	return {
		execution: {
			...execution,
			delivered_to: execution.delivered_to ? (JSON.parse(execution.delivered_to) as string[]) : null,
		},
		stages: stages?.results ?? [],
		timeline: (timeline?.results ?? []).map((row) => {
			const { detail, ...rest } = row as { detail: string; event: string; at: string };
			return { ...rest, detail: JSON.parse(detail) as unknown };
		}),
		deliveries: deliveries?.results ?? [],
	};
}
