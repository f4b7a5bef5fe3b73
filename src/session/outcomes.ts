import { executionFailedMessage, timeoutMessage } from "../pipeline/messages.ts";
import { type OutcomePlan, planOutcome } from "../pipeline/outcome.ts";
import { PROGRESS, STATUS } from "../pipeline/progress.ts";
import { type DeliveryWebhook, type ExecutionStatus, isTerminalStatus } from "../protocol/obegee.ts";
import { watchAgent } from "./agent-stream.ts";
import { audit, recordExecution } from "./audit.ts";
import type { SessionContext } from "./context.ts";
import { moveStages, showProgress } from "./emission.ts";
import type { ExecutionResult, MandateRecord } from "./mandate-store.ts";
import { fail, ok, type RpcResult } from "./rpc-result.ts";

/**
 * How a run ends (DESIGN.md, "The stage machine"): ObeGee's outcome from the webhook or a poll, or our
 * own timeout. The rules themselves are pure (src/pipeline/outcome.ts); this room stores, audits and
 * shows what they decide.
 */

/** How a delivery webhook was taken: the HTTP answer is 2xx for all but an unknown execution. */
export type WebhookOutcome = "applied" | "late_success" | "already_final" | "duplicate" | "recorded";

/** An ObeGee outcome, whether it came from a poll or a webhook. */
export type Outcome = Pick<ExecutionStatus, "status" | "summary" | "error" | "delivered_to" | "completed_at">;

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
	if (plan.kind === "ignore") {
		audit(s, "outcome_ignored", mandate, { source, status: outcome.status, state: mandate.state }, now);
		return "already_final";
	}
	let ended: MandateRecord;
	if (plan.kind === "complete") {
		const result: ExecutionResult = {
			summary: outcome.summary ?? null,
			delivered_to: outcome.delivered_to ?? [],
			completed_at: outcome.completed_at ?? new Date(now).toISOString(),
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
		const message = executionFailedMessage(outcome.error ?? outcome.summary);
		ended = s.mandates.update(mandate.mandate_id, {
			state: "failed",
			error: message,
			remote_status: outcome.status,
			updated_at: now,
		});
		failStage(s, ended, plan, message, now);
	}
	const late = plan.kind === "complete" && plan.late;
	audit(s, late ? "late_success" : "outcome", ended, { source, status: outcome.status }, now);
	recordExecution(s, ended, now);
	watchAgent(s, ended, false);
	return late ? "late_success" : "applied";
}

/** The mandate's deadline passed while it still ran: it ends as timed out (a late success may follow). */
export function timeOut(s: SessionContext, mandate: MandateRecord, now: number): void {
	const plan = planOutcome(mandate.state, s.mandates.board(mandate.mandate_id), { kind: "timeout" });
	if (plan.kind !== "fail") return;
	const message = timeoutMessage(s.timing.executionTimeoutMs);
	const ended = s.mandates.update(mandate.mandate_id, {
		state: "timed_out",
		error: message,
		updated_at: now,
	});
	failStage(s, ended, plan, message, now);
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
	if (s.webhooks.seen(webhookId)) {
		audit(s, "webhook_duplicate", mandate, { webhook_id: webhookId, status: payload.status }, now);
		return ok({ outcome: "duplicate" });
	}
	s.webhooks.record(webhookId, now);
	audit(s, "webhook", mandate, { webhook_id: webhookId, status: payload.status }, now);
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
