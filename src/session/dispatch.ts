import { ObeGeeClient } from "../obegee/client.ts";
import { dispatchFailure } from "../pipeline/messages.ts";
import { PROGRESS, STATUS } from "../pipeline/progress.ts";
import { emptyBoard, planStageMove } from "../pipeline/stage-machine.ts";
import type { ExecuteRequest, ExecuteResponse } from "../protocol/api.ts";
import { watchAgent } from "./agent-stream.ts";
import { flush } from "./alarm.ts";
import { audit, recordExecution } from "./audit.ts";
import type { SessionContext } from "./context.ts";
import { moveStages, showProgress } from "./emission.ts";
import { fail, ok, type RpcResult } from "./rpc-result.ts";

/**
 * `POST /api/mandate/execute` (DESIGN.md, "Execute flow"): stage 4 completes, the mandate is sent to
 * ObeGee, stages 5–8 complete and stage 9 starts. Idempotent per mandate_id: one dispatch, one
 * execution id; a concurrent duplicate waits for the first call instead of racing it.
 */
export function execute(s: SessionContext, request: ExecuteRequest): Promise<RpcResult<ExecuteResponse>> {
	const inFlight = s.dispatches.get(request.mandate_id);
	if (inFlight) return inFlight;
	const attempt = dispatch(s, request).finally(() => s.dispatches.delete(request.mandate_id));
	s.dispatches.set(request.mandate_id, attempt);
	return attempt;
}

async function dispatch(s: SessionContext, request: ExecuteRequest): Promise<RpcResult<ExecuteResponse>> {
	const { session_id: _session, ...mandateBody } = request;
	const now = Date.now();
	const existing = s.mandates.get(request.mandate_id);
	if (existing?.execution_id) {
		return ok({ execution_id: existing.execution_id, status: existing.remote_status ?? "QUEUED" });
	}
	if (existing?.error_code) {
		return fail(existing.error_http ?? 422, existing.error_code, existing.error ?? "This request failed.");
	}
	const board = existing ? s.mandates.board(request.mandate_id) : emptyBoard();
	const created = planStageMove(board, 4, "completed");
	if (!created.ok) return fail(409, created.code, created.message);
	const token = s.env.OBEGEE_API_TOKEN;
	if (!token) return fail(503, "not_configured", "Mandate execution is not configured on this service.");

	const mandate = s.mandates.update((existing ?? s.mandates.create(request.mandate_id, now)).mandate_id, {
		state: "dispatching",
		tenant_id: request.tenant_id,
		intent: request.intent,
		updated_at: now,
	});
	moveStages(s, mandate, created.changes, now);
	audit(s, "dispatch_requested", mandate, { tenant_id: request.tenant_id }, now);

	const result = await new ObeGeeClient(s.env.OBEGEE_BASE_URL, token).dispatch(mandateBody);
	const at = Date.now();
	const current = s.mandates.get(mandate.mandate_id) ?? mandate;
	const boardNow = s.mandates.board(mandate.mandate_id);

	if (!result.ok) {
		const failure = dispatchFailure(result.error);
		const failed = s.mandates.update(mandate.mandate_id, {
			state: "failed",
			error: failure.message,
			error_code: failure.code,
			error_http: failure.httpStatus,
			updated_at: at,
		});
		const plan = planStageMove(boardNow, 6, "failed");
		if (plan.ok) moveStages(s, failed, plan.changes, at, { 6: { message: failure.message } });
		audit(s, "dispatch_failed", failed, { ...result.error, code: failure.code }, at);
		await flush(s);
		return fail(failure.httpStatus, failure.code, failure.message);
	}

	const { execution_id, status } = result.value;
	const clash = s.mandates.byExecution(execution_id);
	if (clash && clash.mandate_id !== mandate.mandate_id) {
		// ObeGee reused an execution id: tracking both would mix two requests up.
		audit(s, "dispatch_conflict", current, { execution_id, other_mandate_id: clash.mandate_id }, at);
		await flush(s);
		return fail(502, "obegee_conflict", "The execution service answered inconsistently. Please try again.");
	}
	const { pollIntervalMs, executionTimeoutMs } = s.timing;
	let running = s.mandates.update(mandate.mandate_id, {
		state: "running",
		execution_id,
		remote_status: status,
		dispatched_at: at,
		deadline_at: at + executionTimeoutMs,
		next_poll_at: at + pollIntervalMs,
		poll_failures: 0,
		updated_at: at,
	});
	const started = planStageMove(boardNow, 9, "active");
	if (started.ok) moveStages(s, running, started.changes, at);
	running = showProgress(s, running, STATUS.queued, PROGRESS.queued, at);
	audit(s, "dispatched", running, { status }, at);
	recordExecution(s, running, at);
	await flush(s);
	watchAgent(s, running, true);
	return ok({ execution_id, status });
}
