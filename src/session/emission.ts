import { HEARTBEAT_INTERVAL_MS } from "../pipeline/backoff.ts";
import { nextProgress, stillWorkingStatus } from "../pipeline/progress.ts";
import type { StageChange } from "../pipeline/stage-machine.ts";
import type { SnapshotFrame } from "../protocol/frames.ts";
import { type StageNumber, stageName } from "../protocol/stages.ts";
import { audit } from "./audit.ts";
import type { SessionContext } from "./context.ts";
import type { UnsequencedFrame } from "./event-log.ts";
import type { MandateRecord } from "./mandate-store.ts";
import { broadcast } from "./sockets.ts";

/**
 * What the phones see (DESIGN.md, "Mobile wire format"): every change is stored, written to the
 * event log with the next seq and only then sent — the log is the truth, the send is best effort.
 */

/** Details shown on a stage's frame when it changes. */
export interface StageDetails {
	message?: string;
	summary?: string;
	delivered_to?: string[];
}

/** Write to the log first, then send. */
export function emit(s: SessionContext, frame: UnsequencedFrame): void {
	const { text } = s.log.append(frame);
	s.metrics.event(broadcast(s.ctx, text));
}

/** Stores, audits, logs and broadcasts each stage change, in order. */
export function moveStages(
	s: SessionContext,
	mandate: MandateRecord,
	changes: readonly StageChange[],
	now: number,
	details: Partial<Record<StageNumber, StageDetails>> = {},
): void {
	const executionId = mandate.execution_id;
	for (const { stage, status } of changes) {
		const extra = details[stage] ?? {};
		const message = extra.message ?? null;
		s.mandates.setStage(mandate.mandate_id, stage, status, message, now);
		s.outbox.add({ kind: "stage", mandate_id: mandate.mandate_id, stage, status, message, at: now });
		audit(s, "stage", mandate, { stage, status, message }, now);
		emit(s, {
			event: "pipeline_stage",
			data: {
				stage,
				status,
				timestamp: new Date(now).toISOString(),
				stage_name: stageName(stage),
				mandate_id: mandate.mandate_id,
				...(executionId ? { execution_id: executionId } : {}),
				...extra,
			},
		});
	}
}

/**
 * The sub-status line and bar under stage 9. Progress never goes down; saying the same thing twice
 * (the agent's end, then ObeGee's outcome) is no news to the phone. Returns the mandate as stored.
 */
export function showProgress(
	s: SessionContext,
	mandate: MandateRecord,
	status: string,
	candidate: number,
	now: number,
): MandateRecord {
	const executionId = mandate.execution_id;
	if (!executionId) return mandate;
	const progress = nextProgress(mandate.progress, candidate);
	if (status === mandate.sub_status && progress === mandate.progress) return mandate;
	const updated = s.mandates.update(mandate.mandate_id, { sub_status: status, progress, heartbeat_at: now });
	emit(s, {
		type: "progress",
		execution_id: executionId,
		mandate_id: mandate.mandate_id,
		status,
		progress,
		timestamp: new Date(now).toISOString(),
		elapsed_ms: Math.max(0, now - (mandate.dispatched_at ?? now)),
	});
	return updated;
}

/** A long run shows it is alive at least every HEARTBEAT_INTERVAL_MS (seed-spec.md, Test 2). */
export function heartbeat(s: SessionContext, mandate: MandateRecord, now: number): void {
	const last = mandate.heartbeat_at ?? mandate.dispatched_at ?? now;
	if (now - last < HEARTBEAT_INTERVAL_MS) return;
	const elapsed = now - (mandate.dispatched_at ?? now);
	showProgress(s, mandate, stillWorkingStatus(elapsed), mandate.progress, now);
}

/**
 * The next piece of the agent's answer: kept with the mandate and streamed to the phones. With an
 * offset, only what lies beyond the answer already kept is new, so a batch delivered twice is
 * appended once. Returns the mandate as stored.
 */
export function appendChunk(
	s: SessionContext,
	mandate: MandateRecord,
	text: string,
	offset: number | undefined,
	now: number,
): MandateRecord {
	const executionId = mandate.execution_id;
	if (!executionId) return mandate;
	const fresh = offset === undefined ? text : text.slice(Math.max(0, mandate.answer.length - offset));
	if (fresh.length === 0) return mandate;
	const updated = s.mandates.update(mandate.mandate_id, {
		answer: mandate.answer + fresh,
		heartbeat_at: now,
	});
	emit(s, {
		type: "response_chunk",
		execution_id: executionId,
		mandate_id: mandate.mandate_id,
		chunk: fresh,
	});
	return updated;
}

/** The full current state of every mandate; its seq is the last event it reflects. */
export function snapshot(s: SessionContext): SnapshotFrame {
	return {
		type: "snapshot",
		seq: s.log.lastSeq(),
		session_id: s.sessionId() ?? "",
		mandates: s.mandates.states(),
	};
}
