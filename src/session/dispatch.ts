import { claimExecution, claimMandate } from "../d1/owners.ts";
import { log } from "../log.ts";
import { DISPATCH_TIMEOUT_MS, ObeGeeClient } from "../obegee/client.ts";
import { backoffDelay, honourRetryAfter } from "../pipeline/backoff.ts";
import { dispatchFailure, type UserFacingError } from "../pipeline/messages.ts";
import { PROGRESS, STATUS } from "../pipeline/progress.ts";
import { emptyBoard, isFinished, planStageMove } from "../pipeline/stage-machine.ts";
import type { ExecuteRequest, ExecuteResponse, Mandate } from "../protocol/api.ts";
import type { ObeGeeError } from "../protocol/obegee.ts";
import { watchAgent } from "./agent-stream.ts";
import { armAlarm, flush } from "./alarm.ts";
import { audit, recordExecution } from "./audit.ts";
import type { SessionContext } from "./context.ts";
import { moveStages, showProgress } from "./emission.ts";
import type { MandateRecord } from "./mandate-store.ts";
import { admitTenant } from "./owner.ts";
import { schedulePush } from "./push.ts";
import { fail, ok, type RpcResult } from "./rpc-result.ts";

/**
 * `POST /api/mandate/execute` (DESIGN.md, "Execute flow"): stage 4 completes, the mandate is sent to
 * ObeGee, stages 5–8 complete and stage 9 starts. Idempotent per mandate_id: one dispatch, one
 * execution id; a concurrent duplicate waits for the first call instead of racing it.
 *
 * A dispatch always reaches an outcome (DESIGN.md, "Rules that keep it correct"): it is stored before
 * it is sent; an outage (5xx, 429, timeout, network, an unreadable answer) is retried by the alarm with
 * the same Idempotency-Key and backoff until the mandate's deadline, then stage 6 fails; a definite
 * refusal (4xx) fails stage 6 at once; an attempt cut off by an eviction is resumed when its lease
 * runs out. Only definite answers are remembered as the answer.
 */

/** Retries of a dispatch during an ObeGee outage start at this and back off to the cap. */
export const DISPATCH_RETRY_BASE_MS = 1_000;
export const DISPATCH_RETRY_CAP_MS = 30_000;
/** An attempt in flight counts as lost (an eviction) once this has passed, and the alarm sends again. */
export const DISPATCH_LEASE_MS = DISPATCH_TIMEOUT_MS + 5_000;

const PENDING: UserFacingError = {
	httpStatus: 503,
	code: "dispatch_pending",
	message:
		"The service that runs your request isn't reachable yet. We keep trying; this request's progress shows the outcome.",
};

export function execute(s: SessionContext, request: ExecuteRequest): Promise<RpcResult<ExecuteResponse>> {
	return once(s, request.mandate_id, () => startDispatch(s, request));
}

/** The alarm's part: sends again every stored dispatch whose retry (or lost attempt's lease) is due. */
export async function resumeDispatches(s: SessionContext, now: number): Promise<void> {
	const due = s.mandates
		.dispatching()
		.filter((mandate) => mandate.next_dispatch_at !== null && mandate.next_dispatch_at <= now);
	await Promise.all(due.map((mandate) => once(s, mandate.mandate_id, () => sendDispatch(s, mandate, now))));
}

/** One dispatch per mandate at a time: a concurrent caller joins the attempt in flight. */
function once(
	s: SessionContext,
	mandateId: string,
	attempt: () => Promise<RpcResult<ExecuteResponse>>,
): Promise<RpcResult<ExecuteResponse>> {
	const inFlight = s.dispatches.get(mandateId);
	if (inFlight) return inFlight;
	const started = attempt().finally(() => s.dispatches.delete(mandateId));
	s.dispatches.set(mandateId, started);
	return started;
}

/** What execute answers for a mandate that needs no new dispatch, or null when it does. */
function knownAnswer(s: SessionContext, mandate: MandateRecord | null): RpcResult<ExecuteResponse> | null {
	if (!mandate) return null;
	if (mandate.execution_id) {
		return ok({ execution_id: mandate.execution_id, status: mandate.remote_status ?? "QUEUED" });
	}
	if (mandate.error_code) {
		return fail(mandate.error_http ?? 422, mandate.error_code, mandate.error ?? "This request failed.");
	}
	if (mandate.state === "dispatching") return fail(PENDING.httpStatus, PENDING.code, PENDING.message);
	// The pipeline reported a stage 1–5 as failed: the user declined, and it never runs (issue 14).
	if (mandate.state === "failed" || isFinished(s.mandates.board(mandate.mandate_id))) {
		return fail(409, "mandate_declined", "This request was stopped before it was sent, so it will not run.");
	}
	return null;
}

async function startDispatch(
	s: SessionContext,
	request: ExecuteRequest,
): Promise<RpcResult<ExecuteResponse>> {
	const { session_id: sessionId, ...mandateBody } = request;
	let existing = s.mandates.get(request.mandate_id);
	const known = knownAnswer(s, existing);
	if (known) return known;
	if (!s.env.OBEGEE_API_TOKEN) {
		return fail(503, "not_configured", "Mandate execution is not configured on this service.");
	}
	if (!existing) {
		const claimed = await claim(s, request.mandate_id, sessionId);
		if (claimed) return claimed;
		// A stage report may have created it while the claim was on its way.
		existing = s.mandates.get(request.mandate_id);
		const knownNow = knownAnswer(s, existing);
		if (knownNow) return knownNow;
	}
	if (!admitTenant(s, request.tenant_id)) {
		return fail(409, "tenant_conflict", "This session belongs to another tenant.");
	}
	const board = existing ? s.mandates.board(request.mandate_id) : emptyBoard();
	const created = planStageMove(board, 4, "completed");
	if (!created.ok) return fail(409, created.code, created.message);

	const now = Date.now();
	const mandate = s.mandates.update((existing ?? s.mandates.create(request.mandate_id, now)).mandate_id, {
		state: "dispatching",
		tenant_id: request.tenant_id,
		intent: request.intent,
		dispatch_body: JSON.stringify(mandateBody),
		dispatch_attempts: 0,
		deadline_at: now + s.timing.executionTimeoutMs,
		next_dispatch_at: now + DISPATCH_LEASE_MS,
		updated_at: now,
	});
	moveStages(s, mandate, created.changes, now);
	audit(s, "dispatch_requested", mandate, { tenant_id: request.tenant_id }, now);
	return sendDispatch(s, mandate, now);
}

/**
 * Claims a new mandate for this session in D1 before anything is stored or sent; answers the refusal,
 * or null when the mandate is ours.
 */
export async function claim(
	s: SessionContext,
	mandateId: string,
	sessionId: string,
): Promise<RpcResult<never> | null> {
	let owner: string;
	try {
		owner = await claimMandate(s.env.DB, mandateId, sessionId);
	} catch (error) {
		log("error", "mandate claim failed", {
			session_id: sessionId,
			mandate_id: mandateId,
			error: String(error),
		});
		return fail(503, "storage_unavailable", "We couldn't record this request just now. Please try again.");
	}
	return owner === sessionId
		? null
		: fail(409, "mandate_conflict", "This mandate id already belongs to another session.");
}

/** One attempt at sending a stored dispatch; `now` is the time it is due (the alarm's clock in tests). */
async function sendDispatch(
	s: SessionContext,
	stored: MandateRecord,
	now: number,
): Promise<RpcResult<ExecuteResponse>> {
	const mandateId = stored.mandate_id;
	const before = s.mandates.get(mandateId);
	if (before?.state !== "dispatching" || before.dispatch_body === null) {
		return knownAnswer(s, before) ?? fail(409, "mandate_finished", "This mandate has already finished.");
	}
	const attempt = before.dispatch_attempts + 1;
	// The lease: if this object dies while the request is out, the alarm sends it again after this.
	s.mandates.update(mandateId, { dispatch_attempts: attempt, next_dispatch_at: now + DISPATCH_LEASE_MS });
	armAlarm(s);
	const body = JSON.parse(before.dispatch_body) as Mandate;
	const result = await new ObeGeeClient(s.env.OBEGEE_BASE_URL, s.env.OBEGEE_API_TOKEN ?? "").dispatch(body);
	const at = Math.max(Date.now(), now);
	const current = s.mandates.get(mandateId);
	if (current?.state !== "dispatching") {
		return knownAnswer(s, current) ?? fail(409, "mandate_finished", "This mandate has already finished.");
	}
	if (!result.ok) {
		if (isOutage(result.error) && at < (current.deadline_at ?? at)) {
			const retryAfterMs = result.error.kind === "unavailable" ? result.error.retryAfterMs : null;
			return retryLater(s, current, attempt, at, { ...result.error }, retryAfterMs);
		}
		if (result.error.kind === "unauthorized") {
			// The failure message says "we've been alerted": this line is what an operator alerts on.
			log("error", "obegee dispatch refused", {
				code: "obegee_unauthorized",
				http_status: result.error.httpStatus,
				session_id: s.sessionId(),
				mandate_id: mandateId,
			});
		}
		return failDispatch(s, current, dispatchFailure(result.error), { ...result.error }, at);
	}

	const { execution_id, status } = result.value;
	const sessionId = s.sessionId() ?? "";
	let owner: Awaited<ReturnType<typeof claimExecution>>;
	try {
		// The owner is stored before execute answers, so a webhook never depends on the audit flush.
		owner = await claimExecution(s.env.DB, {
			execution_id,
			session_id: sessionId,
			mandate_id: mandateId,
			tenant_id: current.tenant_id ?? "",
			intent: current.intent,
			at,
		});
	} catch (error) {
		// ObeGee has the execution; the retry sends the same key and gets the same id back.
		return retryLater(s, current, attempt, at, { kind: "owner_not_stored", error: String(error) });
	}
	const afterClaim = s.mandates.get(mandateId);
	if (afterClaim?.state !== "dispatching") {
		return knownAnswer(s, afterClaim) ?? fail(409, "mandate_finished", "This mandate has already finished.");
	}
	const clash = s.mandates.byExecution(execution_id);
	if (
		owner.session_id !== sessionId ||
		owner.mandate_id !== mandateId ||
		(clash && clash.mandate_id !== mandateId)
	) {
		// ObeGee reused an execution id: tracking both would mix two requests up.
		const conflict: UserFacingError = {
			httpStatus: 502,
			code: "obegee_conflict",
			message: "The execution service answered inconsistently. Please try again.",
		};
		return failDispatch(s, afterClaim, conflict, { kind: "conflict", execution_id }, at);
	}

	const board = s.mandates.board(mandateId);
	let running = s.mandates.update(mandateId, {
		state: "running",
		execution_id,
		remote_status: status,
		dispatched_at: at,
		deadline_at: at + s.timing.executionTimeoutMs,
		next_poll_at: at + s.timing.pollIntervalMs,
		poll_failures: 0,
		dispatch_body: null,
		next_dispatch_at: null,
		updated_at: at,
	});
	const started = planStageMove(board, 9, "active");
	if (started.ok) moveStages(s, running, started.changes, at);
	running = showProgress(s, running, STATUS.queued, PROGRESS.queued, at);
	audit(s, "dispatched", running, { status, attempt }, at);
	recordExecution(s, running, at);
	// In the same turn as "running": an outcome that lands during the flush below unwatches after this.
	watchAgent(s, running, true);
	await flush(s);
	return ok({ execution_id, status });
}

/**
 * Network errors, timeouts, 5xx, 408, 409 (ObeGee still busy with this Idempotency-Key), 429 and
 * unreadable answers: ObeGee may still take it.
 */
function isOutage(error: ObeGeeError): boolean {
	return error.kind === "unavailable" || error.kind === "bad_response";
}

async function retryLater(
	s: SessionContext,
	mandate: MandateRecord,
	attempt: number,
	at: number,
	detail: Record<string, unknown>,
	retryAfterMs: number | null = null,
): Promise<RpcResult<never>> {
	const deadline = mandate.deadline_at ?? at;
	// ObeGee's Retry-After (429/503) is honoured, capped, and never past the mandate's deadline.
	const backoff = backoffDelay(attempt, DISPATCH_RETRY_BASE_MS, DISPATCH_RETRY_CAP_MS);
	const retryAt = Math.min(deadline, at + honourRetryAfter(backoff, retryAfterMs));
	const updated = s.mandates.update(mandate.mandate_id, { next_dispatch_at: retryAt, updated_at: at });
	audit(s, "dispatch_retry", updated, { ...detail, attempt, retry_in_ms: retryAt - at }, at);
	await flush(s);
	return fail(PENDING.httpStatus, PENDING.code, PENDING.message);
}

async function failDispatch(
	s: SessionContext,
	mandate: MandateRecord,
	failure: UserFacingError,
	detail: Record<string, unknown>,
	at: number,
): Promise<RpcResult<never>> {
	const board = s.mandates.board(mandate.mandate_id);
	const failed = s.mandates.update(mandate.mandate_id, {
		state: "failed",
		error: failure.message,
		error_code: failure.code,
		error_http: failure.httpStatus,
		dispatch_body: null,
		next_dispatch_at: null,
		updated_at: at,
	});
	const plan = planStageMove(board, 6, "failed");
	if (plan.ok) moveStages(s, failed, plan.changes, at, { 6: { message: failure.message } });
	schedulePush(s, failed, "failed", at, "dispatch");
	audit(s, "dispatch_failed", failed, { ...detail, code: failure.code }, at);
	await flush(s);
	return fail(failure.httpStatus, failure.code, failure.message);
}
