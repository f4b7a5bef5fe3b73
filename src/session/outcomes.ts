import { log } from "../log.ts";
import {
	executionFailedMessage,
	type PollRefusal,
	pollRefusedMessage,
	type RemoteFailureKind,
	timeoutMessage,
} from "../pipeline/messages.ts";
import { type OutcomePlan, planOutcome } from "../pipeline/outcome.ts";
import { PROGRESS, STATUS } from "../pipeline/progress.ts";
import { type DeliveryWebhook, type ExecutionAnswer, isTerminalStatus } from "../protocol/obegee.ts";
import { watchAgent } from "./agent-stream.ts";
import { audit, recordExecution } from "./audit.ts";
import type { SessionContext } from "./context.ts";
import { moveStages, showProgress } from "./emission.ts";
import type { ExecutionResult, MandateRecord } from "./mandate-store.ts";
import { schedulePush } from "./push.ts";
import { fail, ok, type RpcResult } from "./rpc-result.ts";

/**
 * How a run ends (DESIGN.md, "The stage machine"): ObeGee's outcome from the webhook or a poll, or our
 * own timeout. The rules themselves are pure (src/pipeline/outcome.ts); this room stores, audits and
 * shows what they decide.
 */

/** How a delivery webhook was taken: the HTTP answer is 2xx for all but an unknown execution. */
export type WebhookOutcome = "applied" | "late_success" | "already_final" | "duplicate" | "recorded";

/** An ObeGee outcome, whether it came from a poll or a webhook (read by the one parser). */
export type Outcome = Pick<
	ExecutionAnswer,
	"status" | "summary" | "error" | "delivered_to" | "delivered_to_count" | "completed_at" | "clamped"
>;

/** The session's clock for a row written now: the alarm's time in tests, the wall clock when later. */
export function clock(now: number): number {
	return Math.max(now, Date.now());
}

/** Applies ObeGee's terminal status to a mandate, exactly once; returns what became of it. */
export function applyOutcome(
	s: SessionContext,
	mandate: MandateRecord,
	outcome: Outcome,
	source: "poll" | "webhook",
	now: number,
): WebhookOutcome {
	const board = s.mandates.board(mandate.mandate_id);
	const status = outcome.status === "COMPLETED" ? "COMPLETED" : "FAILED";
	const plan = planOutcome(mandate.state, board, { kind: "remote", status });
	// ObeGee's own words and clock go to the audit only (bounded by the parser), never to the phone.
	const reported = {
		source,
		status: outcome.status,
		...(outcome.error !== null ? { reported_error: outcome.error } : {}),
		// The seed's FAILED webhook carries its reason in `summary` (and no `error`): keep that too.
		...(status === "FAILED" && outcome.summary ? { reported_summary: outcome.summary } : {}),
		reported_completed_at: outcome.completed_at,
		...(outcome.clamped.length > 0 ? { clamped: outcome.clamped } : {}),
	};
	if (plan.kind === "ignore") {
		audit(s, "outcome_ignored", mandate, { ...reported, state: mandate.state }, now);
		return "already_final";
	}
	let ended: MandateRecord;
	if (plan.kind === "complete") {
		const result: ExecutionResult = {
			summary: outcome.summary,
			delivered_to: outcome.delivered_to,
			delivered_to_count: outcome.delivered_to_count,
			completed_at: new Date(now).toISOString(),
			reported_completed_at: outcome.completed_at,
		};
		ended = s.mandates.update(mandate.mandate_id, {
			state: "completed",
			error: null,
			result: JSON.stringify(result),
			remote_status: outcome.status,
			updated_at: now,
		});
		ended = showProgress(s, ended, STATUS.done, PROGRESS.done, now);
		moveStages(s, ended, plan.changes, now, {
			10: { ...(result.summary ? { summary: result.summary } : {}), delivered_to: result.delivered_to },
		});
	} else {
		const message = executionFailedMessage(failureKind(outcome.status));
		ended = s.mandates.update(mandate.mandate_id, {
			state: "failed",
			error: message,
			remote_status: outcome.status,
			updated_at: now,
		});
		failStage(s, ended, plan, message, now);
	}
	const late = plan.kind === "complete" && plan.late;
	schedulePush(
		s,
		ended,
		plan.kind === "complete" ? (late ? "late_success" : "completed") : "failed",
		now,
		source,
	);
	audit(s, late ? "late_success" : "outcome", ended, reported, now);
	recordExecution(s, ended, now, outcome.completed_at ?? null);
	watchAgent(s, ended, false);
	return late ? "late_success" : "applied";
}

function failureKind(status: string): RemoteFailureKind {
	return status === "CANCELLED" || status === "REJECTED" ? status : "FAILED";
}

/**
 * ObeGee refused a status poll for good (issue 16): our token (401/403) or the execution (404/410).
 * Polling stops and the run fails with a clear message; the error line is what an operator alerts on.
 */
export function refusePoll(
	s: SessionContext,
	mandate: MandateRecord,
	refusal: PollRefusal,
	httpStatus: number,
	now: number,
): void {
	log("error", "obegee status poll refused", {
		code: refusal === "unauthorized" ? "obegee_unauthorized" : "obegee_unknown_execution",
		http_status: httpStatus,
		session_id: s.sessionId(),
		mandate_id: mandate.mandate_id,
		execution_id: mandate.execution_id,
	});
	const plan = planOutcome(mandate.state, s.mandates.board(mandate.mandate_id), {
		kind: "remote",
		status: "FAILED",
	});
	if (plan.kind !== "fail") return;
	const message = pollRefusedMessage(refusal);
	const ended = s.mandates.update(mandate.mandate_id, {
		state: "failed",
		error: message,
		next_poll_at: null,
		updated_at: now,
	});
	failStage(s, ended, plan, message, now);
	schedulePush(s, ended, "failed", now, "poll");
	audit(s, "poll_refused", ended, { refusal, http_status: httpStatus }, now);
	recordExecution(s, ended, now);
	watchAgent(s, ended, false);
}

/** The mandate's deadline passed while it still ran: it ends as timed out (a late success may follow). */
export function timeOut(s: SessionContext, mandate: MandateRecord, alarmTime: number): void {
	// Stamped no earlier than the rows the alarm's polls wrote after their answers (seq order = time order).
	const now = clock(alarmTime);
	const plan = planOutcome(mandate.state, s.mandates.board(mandate.mandate_id), { kind: "timeout" });
	if (plan.kind !== "fail") return;
	const message = timeoutMessage(s.timing.executionTimeoutMs);
	const ended = s.mandates.update(mandate.mandate_id, {
		state: "timed_out",
		error: message,
		updated_at: now,
	});
	failStage(s, ended, plan, message, now);
	schedulePush(s, ended, "timed_out", now, "timeout");
	audit(s, "timeout", ended, { deadline_at: mandate.deadline_at }, now);
	recordExecution(s, ended, now);
	watchAgent(s, ended, false);
}

function failStage(
	s: SessionContext,
	mandate: MandateRecord,
	plan: Extract<OutcomePlan, { kind: "fail" }>,
	message: string,
	now: number,
): void {
	moveStages(s, mandate, plan.changes, now, { [plan.stage]: { message } });
}

/**
 * A verified delivery webhook for an execution of this session: applied once per `webhook-id`, its
 * body kept in D1's `delivery_events`; a non-terminal status is recorded and changes nothing.
 */
export function takeWebhook(
	s: SessionContext,
	webhookId: string,
	payload: DeliveryWebhook,
	rawBody: string,
	now: number,
): RpcResult<{ outcome: WebhookOutcome }> {
	const mandate = s.mandates.byExecution(payload.execution_id);
	if (!mandate) return fail(404, "unknown_execution", "No execution with this id is known.");
	const before = s.webhooks.receive(webhookId, now);
	if (before > 0) {
		// Replays of one signed webhook (within its tolerance) are audited once, not once each.
		if (before === 1) {
			audit(s, "webhook_duplicate", mandate, { webhook_id: webhookId, status: payload.status }, now);
		}
		return ok({ outcome: "duplicate" });
	}
	audit(s, "webhook", mandate, { webhook_id: webhookId, status: payload.status }, now);
	// The same parser as the poll's: a terminal status in any case, display fields already bounded.
	const outcome = isTerminalStatus(payload.status)
		? applyOutcome(s, mandate, payload, "webhook", now)
		: "recorded";
	s.outbox.add({
		kind: "delivery",
		webhook_id: webhookId,
		execution_id: payload.execution_id,
		status: payload.status,
		payload: rawBody,
		outcome,
		at: now,
	});
	return ok({ outcome });
}
