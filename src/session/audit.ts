import type { SessionContext } from "./context.ts";
import type { ExecutionResult, MandateRecord } from "./mandate-store.ts";

/**
 * The session's audit trail: each row is written to the outbox in the same turn as the state change
 * it describes, and reaches D1 when the outbox flushes (src/session/outbox.ts).
 */
export function audit(
	s: SessionContext,
	event: string,
	mandate: Pick<MandateRecord, "mandate_id" | "execution_id"> | null,
	detail: Record<string, unknown>,
	now: number,
): void {
	s.outbox.add({
		kind: "audit",
		mandate_id: mandate?.mandate_id ?? null,
		execution_id: mandate?.execution_id ?? null,
		event,
		detail,
		at: now,
	});
}

/** The D1 copy of an execution's record (`GET /api/executions/:id`), newest state wins. */
export function recordExecution(s: SessionContext, mandate: MandateRecord, now: number): void {
	if (!mandate.execution_id) return;
	const result = mandate.result ? (JSON.parse(mandate.result) as ExecutionResult) : null;
	s.outbox.add({
		kind: "execution",
		execution_id: mandate.execution_id,
		mandate_id: mandate.mandate_id,
		tenant_id: mandate.tenant_id ?? "",
		intent: mandate.intent,
		state: mandate.state,
		summary: result?.summary ?? null,
		delivered_to: result?.delivered_to ?? null,
		error: mandate.error,
		created_at: mandate.dispatched_at ?? now,
		at: now,
		completed_at: result?.completed_at ?? null,
	});
}
