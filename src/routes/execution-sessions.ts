/**
 * Which session owns an execution, remembered by this isolate when an execute passes through it, so
 * the delivery webhook that usually follows skips a D1 read. The mapping never changes once made;
 * anything not remembered here (another isolate, a restart) is read from D1 as before.
 */
const MAX_REMEMBERED = 10_000;
const sessionsByExecution = new Map<string, string>();

export function rememberExecution(executionId: string, sessionId: string): void {
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
