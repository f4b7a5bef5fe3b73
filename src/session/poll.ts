import { ObeGeeClient } from "../obegee/client.ts";
import {
	backoffDelay,
	POLL_BACKOFF_CAP_MS,
	STREAM_QUIET_MS,
	streamingPollInterval,
} from "../pipeline/backoff.ts";
import { subStatusForRemote } from "../pipeline/progress.ts";
import { isTerminalStatus } from "../protocol/obegee.ts";
import { audit } from "./audit.ts";
import type { SessionContext } from "./context.ts";
import { heartbeat, showProgress } from "./emission.ts";
import type { MandateRecord } from "./mandate-store.ts";
import { applyOutcome } from "./outcomes.ts";

/**
 * Polls ObeGee for one running execution (seed-spec.md: every 2 s) — the safety net when the webhook
 * is late or lost. Failures back off with jitter; while the agent's own stream speaks, polling slows.
 */
export async function pollExecution(s: SessionContext, mandate: MandateRecord, now: number): Promise<void> {
	const executionId = mandate.execution_id as string;
	const { pollIntervalMs } = s.timing;
	const token = s.env.OBEGEE_API_TOKEN ?? "";
	const result = await new ObeGeeClient(s.env.OBEGEE_BASE_URL, token).status(executionId);
	// A webhook or a timeout may have finished the execution while we waited.
	const current = s.mandates.get(mandate.mandate_id);
	if (current?.state !== "running" || current.execution_id !== executionId) {
		audit(s, "poll_ignored", mandate, { reason: "execution already finished" }, now);
		return;
	}
	if (!result.ok) {
		const failures = current.poll_failures + 1;
		const retryInMs = backoffDelay(failures, pollIntervalMs, POLL_BACKOFF_CAP_MS);
		const updated = s.mandates.update(current.mandate_id, {
			poll_failures: failures,
			next_poll_at: now + retryInMs,
		});
		audit(s, "poll_failed", current, { ...result.error, failures, retry_in_ms: retryInMs }, now);
		heartbeat(s, updated, now);
		return;
	}
	const status = result.value.status;
	audit(s, "poll", current, { status }, now);
	// While the agent's own stream is speaking, ObeGee polling is only the safety net (issue 3).
	const streaming = current.agent_event_at !== null && now - current.agent_event_at < STREAM_QUIET_MS;
	const updated = s.mandates.update(current.mandate_id, {
		poll_failures: 0,
		next_poll_at: now + (streaming ? streamingPollInterval(pollIntervalMs) : pollIntervalMs),
		remote_status: status,
	});
	if (isTerminalStatus(status)) {
		applyOutcome(s, updated, result.value, "poll", now);
		return;
	}
	// Once the agent's own stream speaks, it says better than ObeGee's coarse status what is going on.
	const sub =
		status !== current.remote_status && current.agent_event_at === null ? subStatusForRemote(status) : null;
	if (sub) showProgress(s, updated, sub.status, sub.progress, now);
	else heartbeat(s, updated, now);
}
