import { gatewayObjects } from "../durable/placement.ts";
import { log } from "../log.ts";
import { type AgentUpdate, coalesceChunks, type GatewayWatcher } from "../openclaw/contract.ts";
import { hasGateway } from "../openclaw/registry.ts";
import { forwardChanges } from "../pipeline/outcome.ts";
import { PROGRESS, STATUS } from "../pipeline/progress.ts";
import { gatewayDropPoint } from "./analytics.ts";
import { audit } from "./audit.ts";
import type { SessionContext } from "./context.ts";
import { appendChunk, moveStages, showProgress } from "./emission.ts";
import type { MandateRecord } from "./mandate-store.ts";

/**
 * The tenant's OpenClaw agent, as its Gateway DO streams it to this session (issue 3): sub-statuses,
 * the answer typing out, the run's end. ObeGee still owns the outcome; the stream only makes stage 9
 * come alive, and ObeGee polling slows while it speaks.
 */

/** How stale the stored "the agent last spoke" time may get (a quarter of STREAM_QUIET_MS). */
export const AGENT_EVENT_MARK_MS = 2_500;

/**
 * Applies one ordered batch of updates for an execution of this session. The answer's chunks are
 * always kept (the last one may arrive after ObeGee's outcome); sub-statuses and the lifecycle only
 * count while the execution runs.
 *
 * Returns whether the batch may have moved a job of the alarm (a poll, a heartbeat, a stage). A
 * batch of answer pieces alone only appends to the log (and may catch the stored answer up): no job
 * becomes due sooner, so the alarm stays as armed — most batches of a streamed answer then run two
 * statements instead of recomputing the schedule (issue 17).
 */
export function applyAgentUpdates(
	s: SessionContext,
	executionId: string,
	updates: readonly AgentUpdate[],
	now: number,
): boolean {
	let mandate = s.mandates.byExecution(executionId);
	if (!mandate) return false;
	let moved = false;
	if (mandate.agent_event_at === null) audit(s, "agent_stream", mandate, { event: "started" }, now);
	// Only "has the stream spoken lately" matters (STREAM_QUIET_MS, and the heartbeat's sign of life),
	// so a write every AGENT_EVENT_MARK_MS is enough.
	if (mandate.agent_event_at === null || now - mandate.agent_event_at >= AGENT_EVENT_MARK_MS) {
		mandate = s.mandates.update(mandate.mandate_id, { agent_event_at: now });
		moved = true;
	}
	for (const update of coalesceChunks(updates)) {
		if (update.kind === "chunk") {
			appendChunk(s, mandate, update.text, update.offset, now, update.gap === true);
			continue;
		}
		if (mandate.state !== "running") continue;
		moved = true;
		switch (update.kind) {
			case "status":
				mandate = showProgress(s, mandate, update.status, update.progress, now);
				break;
			case "error":
				mandate = showProgress(s, mandate, update.message, 0, now);
				audit(s, "agent_error", mandate, { message: update.message }, now);
				break;
			case "end":
				mandate = showProgress(s, mandate, STATUS.done, PROGRESS.done, now);
				moveStages(s, mandate, forwardChanges(s.mandates.board(mandate.mandate_id), 9, "completed"), now);
				audit(s, "agent_end", mandate, {}, now);
				break;
		}
	}
	return moved;
}

/** The gateway stream of these executions dropped: ObeGee polling returns to its base pace now. */
export function agentStreamLost(s: SessionContext, executionIds: readonly string[], now: number): void {
	const { pollIntervalMs } = s.timing;
	let affected = 0;
	let tenant: string | null = null;
	for (const executionId of executionIds) {
		const mandate = s.mandates.byExecution(executionId);
		if (mandate?.state !== "running") continue;
		affected += 1;
		tenant = mandate.tenant_id;
		s.mandates.update(mandate.mandate_id, {
			agent_event_at: null,
			next_poll_at: Math.min(mandate.next_poll_at ?? now, now + pollIntervalMs),
		});
		audit(s, "agent_stream", mandate, { event: "lost" }, now);
	}
	if (affected > 0) gatewayDropPoint(s, tenant, affected);
}

/**
 * Asks the tenant's Gateway DO to stream this execution's agent events to us (or to stop). Best
 * effort and off the caller's path: ObeGee polling remains the safety net if it fails.
 */
export function watchAgent(s: SessionContext, mandate: MandateRecord, watch: boolean): void {
	const sessionId = s.sessionId();
	const { execution_id: executionId, tenant_id: tenantId } = mandate;
	if (!sessionId || !executionId || !tenantId) return;
	const call = async () => {
		// A tenant without a gateway: nothing to watch, and its Gateway DO is never woken for it.
		if (!(await hasGateway(s.env, tenantId))) return;
		const gateway: Pick<GatewayWatcher, "watch" | "unwatch"> = gatewayObjects(s.env).getByName(tenantId);
		await (watch
			? gateway.watch(tenantId, { executionId, sessionId, mandateId: mandate.mandate_id })
			: gateway.unwatch(tenantId, executionId));
	};
	s.waitUntil(
		call().catch((error: unknown) =>
			log("warn", "gateway watch failed", {
				session_id: sessionId,
				execution_id: executionId,
				mandate_id: mandate.mandate_id,
				tenant_id: tenantId,
				watch,
				error: String(error),
			}),
		),
	);
}
