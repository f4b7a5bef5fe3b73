import { ObeGeeClient } from "../obegee/client.ts";
import { pollRetryDelay, STREAM_QUIET_MS, streamingPollInterval } from "../pipeline/backoff.ts";
import { remoteStatusRank, subStatusForRemote } from "../pipeline/progress.ts";
import { isTerminalStatus, type ObeGeeError } from "../protocol/obegee.ts";
import { audit } from "./audit.ts";
import type { SessionContext } from "./context.ts";
import { heartbeat, showProgress } from "./emission.ts";
import type { MandateRecord } from "./mandate-store.ts";
import { applyOutcome, clock, refusePoll } from "./outcomes.ts";

/**
 * Polls ObeGee for one running execution (seed-spec.md: every 2 s) — the safety net when the webhook
 * is late or lost. Everything after the answer is timed from when it arrived (a slow ObeGee is not
 * polled back to back, and audit rows keep seq order in time). Failures back off with jitter, never
 * sooner than the healthy interval and never before ObeGee's `Retry-After` (capped, and never past the
 * deadline); 401/403/404 end the run for good; while the agent's own stream speaks, polling slows.
 */
export async function pollExecution(s: SessionContext, mandate: MandateRecord, now: number): Promise<void> {
	const executionId = mandate.execution_id as string;
	const { pollIntervalMs } = s.timing;
	const token = s.env.OBEGEE_API_TOKEN ?? "";
	const result = await new ObeGeeClient(s.env.OBEGEE_BASE_URL, token).status(executionId);
	const at = clock(now);
	// A webhook or a timeout may have finished the execution while we waited.
	const current = s.mandates.get(mandate.mandate_id);
	if (current?.state !== "running" || current.execution_id !== executionId) {
		audit(s, "poll_ignored", mandate, { reason: "execution already finished" }, at);
		return;
	}
	const deadline = current.deadline_at ?? Number.POSITIVE_INFINITY;
	if (!result.ok) {
		const refusal = finalRefusal(result.error);
		if (refusal) {
			refusePoll(s, current, refusal.kind, refusal.httpStatus, at);
			return;
		}
		const failures = current.poll_failures + 1;
		const retryAfterMs = result.error.kind === "unavailable" ? result.error.retryAfterMs : null;
		const retryAt = Math.min(deadline, at + pollRetryDelay(failures, pollIntervalMs, retryAfterMs));
		const updated = s.mandates.update(current.mandate_id, { poll_failures: failures, next_poll_at: retryAt });
		audit(s, "poll_failed", current, { ...result.error, failures, retry_in_ms: retryAt - at }, at);
		heartbeat(s, updated, at);
		return;
	}
	const { status } = result.value;
	// A poll that learns nothing new is not audited (issue 17: four D1 rows every 2 s of a run); the
	// trail keeps every status ObeGee moved to, every failure and every reply it had to clamp.
	if (status !== current.remote_status || result.value.clamped.length > 0) {
		audit(
			s,
			"poll",
			current,
			{ status, ...(result.value.clamped.length ? { clamped: result.value.clamped } : {}) },
			at,
		);
	}
	// While the agent's own stream is speaking, ObeGee polling is only the safety net (issue 3).
	const streaming = current.agent_event_at !== null && at - current.agent_event_at < STREAM_QUIET_MS;
	// A running status never moves back: a stale QUEUED after EXECUTING changes nothing.
	const forward =
		isTerminalStatus(status) || remoteStatusRank(status) >= remoteStatusRank(current.remote_status);
	const updated = s.mandates.update(current.mandate_id, {
		poll_failures: 0,
		next_poll_at: at + (streaming ? streamingPollInterval(pollIntervalMs) : pollIntervalMs),
		...(forward ? { remote_status: status } : {}),
	});
	if (isTerminalStatus(status)) {
		applyOutcome(s, updated, result.value, "poll", at);
		return;
	}
	// Once the agent's own stream speaks, it says better than ObeGee's coarse status what is going on.
	const sub =
		forward && status !== current.remote_status && current.agent_event_at === null
			? subStatusForRemote(status)
			: null;
	if (sub) showProgress(s, updated, sub.status, sub.progress, at);
	else heartbeat(s, updated, at);
}

/** 401/403 (our token refused) and 404/410 (no such execution) will not change by asking again. */
function finalRefusal(
	error: ObeGeeError,
): { kind: "unauthorized" | "unknown_execution"; httpStatus: number } | null {
	if (error.kind === "unauthorized") return { kind: "unauthorized", httpStatus: error.httpStatus };
	if (error.kind === "rejected" && (error.httpStatus === 404 || error.httpStatus === 410)) {
		return { kind: "unknown_execution", httpStatus: error.httpStatus };
	}
	return null;
}
