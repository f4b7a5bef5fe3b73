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

/** Forgets one execution this isolate remembered (it was erased). */
export function forgetExecution(executionId: string): void {
	sessionsByExecution.delete(executionId);
}

/** Forgets what this isolate remembered: as if the next webhook landed in another isolate (tests). */
export function forgetRememberedExecutions(): void {
	sessionsByExecution.clear();
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
	/** Ours: when this service learned the outcome. */
	completed_at: string | null;
	/** ObeGee's own `completed_at`, as it said it (bounded). */
	reported_completed_at: string | null;
}

/**
 * The execution's audit timeline, in two index-exact halves merged by `seq` (issue 16): the rows that
 * name the execution (index audit_log_execution), and its mandate's rows from before ObeGee named it
 * (partial index audit_log_mandate). One query with an OR let SQLite scan every pre-dispatch row of
 * the session once D1 had statistics. test/audit-trail.test.ts proves each plan.
 */
export const TIMELINE_QUERIES = {
	ofExecution:
		"SELECT seq, event, detail, at FROM audit_log WHERE execution_id = ? AND session_id = ? ORDER BY seq",
	beforeExecution:
		"SELECT seq, event, detail, at FROM audit_log WHERE session_id = ? AND mandate_id = ? AND execution_id IS NULL ORDER BY seq",
	deliveries:
		"SELECT webhook_id, status, outcome, received_at FROM delivery_events WHERE execution_id = ? ORDER BY received_at",
} as const;

interface TimelineRow {
	seq: number;
	event: string;
	detail: string;
	at: string;
}

export interface StageRow {
	stage: number;
	status: string;
	message: string | null;
	updated_at: string;
}

/**
 * Each stage's latest status, from the timeline's `stage` rows (every stage change is one, written in
 * the same turn as the change): the last row of a stage wins, as the timeline is in write order.
 * Sorted by stage. (Until migration 0008 D1 kept a second copy of this, table pipeline_progress.)
 */
export function latestStages(
	timeline: ReadonlyArray<{ event: string; at: string; detail: unknown }>,
): StageRow[] {
	const latest = new Map<number, StageRow>();
	for (const { event, at, detail } of timeline) {
		if (event !== "stage" || typeof detail !== "object" || detail === null) continue;
		const { stage, status, message } = detail as Record<string, unknown>;
		if (typeof stage !== "number" || typeof status !== "string") continue;
		latest.set(stage, {
			stage,
			status,
			message: typeof message === "string" ? message : null,
			updated_at: at,
		});
	}
	return [...latest.values()].sort((a, b) => a.stage - b.stage);
}

/** `GET /api/executions/:id`: the record, its stages, its audit timeline and its delivery events. */
export async function readExecution(db: D1Database, executionId: string) {
	const execution = await db
		.prepare(
			`SELECT execution_id, session_id, mandate_id, tenant_id, intent, state, summary, delivered_to, error,
			        created_at, updated_at, completed_at, reported_completed_at
			 FROM executions WHERE execution_id = ?`,
		)
		.bind(executionId)
		.first<ExecutionRow>();
	if (!execution) return null;
	const { session_id: sessionId, mandate_id: mandateId } = execution;
	const [ofExecution, beforeExecution, deliveries] = await db.batch([
		db.prepare(TIMELINE_QUERIES.ofExecution).bind(executionId, sessionId),
		db.prepare(TIMELINE_QUERIES.beforeExecution).bind(sessionId, mandateId),
		db.prepare(TIMELINE_QUERIES.deliveries).bind(executionId),
	]);
	const timeline = [
		...((beforeExecution?.results ?? []) as unknown as TimelineRow[]),
		...((ofExecution?.results ?? []) as unknown as TimelineRow[]),
	].sort((a, b) => a.seq - b.seq);
	const parsed = timeline.map(({ event, detail, at }) => ({
		event,
		at,
		detail: JSON.parse(detail) as unknown,
	}));
	return {
		execution: {
			...execution,
			delivered_to: execution.delivered_to ? (JSON.parse(execution.delivered_to) as string[]) : null,
		},
		stages: latestStages(parsed),
		timeline: parsed.map(({ event, at, detail }) => ({ event, at, detail })),
		deliveries: deliveries?.results ?? [],
	};
}
