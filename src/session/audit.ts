import type { SessionContext } from "./context.ts";
import { type ExecutionResult, isFinished, type MandateRecord } from "./mandate-store.ts";

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

/** The mandate an audit row names, by id (it may be gone: then without its execution). */
export function auditSubject(
	s: SessionContext,
	mandateId: string,
): Pick<MandateRecord, "mandate_id" | "execution_id"> {
	return { mandate_id: mandateId, execution_id: s.mandates.get(mandateId)?.execution_id ?? null };
}

/** The D1 copy of an execution's record (`GET /api/executions/:id`), newest state wins. */
export function recordExecution(
	s: SessionContext,
	mandate: MandateRecord,
	now: number,
	/** ObeGee's own completion time, when this record follows its outcome (a failure keeps no result). */
	reportedCompletedAt: string | null = null,
): void {
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
		// Ours — when this service learned the outcome — for every ending; ObeGee's own beside it.
		completed_at: isFinished(mandate.state)
			? (result?.completed_at ?? new Date(mandate.updated_at).toISOString())
			: null,
		reported_completed_at: result?.reported_completed_at ?? reportedCompletedAt,
	});
}
