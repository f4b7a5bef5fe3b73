import { countWork } from "../durable/work-meter.ts";
import { HEARTBEAT_INTERVAL_MS } from "../pipeline/backoff.ts";
import { nextProgress, stillWorkingStatus } from "../pipeline/progress.ts";
import type { StageChange } from "../pipeline/stage-machine.ts";
import type { SnapshotFrame } from "../protocol/frames.ts";
import { type StageNumber, stageName } from "../protocol/stages.ts";
import { stagePoint } from "./analytics.ts";
import { answerOf, keepPiece, unsavedAnswers } from "./answer.ts";
import { audit } from "./audit.ts";
import type { SessionContext } from "./context.ts";
import type { UnsequencedFrame } from "./event-log.ts";
import { noteLiveChange } from "./live.ts";
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

/** Write to the log first, then send; returns the frame's seq. */
export function emit(
	s: SessionContext,
	frame: UnsequencedFrame,
	answer?: { chars: number; truncated: number },
): number {
	const { seq, text } = s.log.append(frame, answer);
	const sent = broadcast(s.ctx, text);
	if (s.meter.enabled) {
		countWork("events");
		countWork("frames_sent", sent);
	}
	return seq;
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
		stagePoint(s, mandate, stage, status, now);
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
				// Issue 15: a phone that joined before the mandate started learns the request from its frames.
				...(mandate.intent ? { intent: mandate.intent } : {}),
				...extra,
			},
		});
	}
	noteLiveChange(s, mandate.mandate_id, now, changes);
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
	noteLiveChange(s, mandate.mandate_id, now);
	return updated;
}

/** A long run shows it is alive at least every HEARTBEAT_INTERVAL_MS (seed-spec.md, Test 2). */
export function heartbeat(s: SessionContext, mandate: MandateRecord, now: number): void {
	// The agent speaking (its answer typing out) is a sign of life too.
	const last = Math.max(mandate.heartbeat_at ?? mandate.dispatched_at ?? now, mandate.agent_event_at ?? 0);
	if (now - last < HEARTBEAT_INTERVAL_MS) return;
	const elapsed = now - (mandate.dispatched_at ?? now);
	showProgress(s, mandate, stillWorkingStatus(elapsed), mandate.progress, now);
}

/**
 * The longest answer kept and shown (UTF-16 units): a row stays far below SQLite's 2 MB value limit
 * and a snapshot far below the WebSocket message limit. What comes after is dropped, and the answer
 * ends with ANSWER_TRUNCATED_NOTICE (README, "Mobile wire format").
 */
export const MAX_ANSWER_CHARS = 100_000;
export const ANSWER_TRUNCATED_NOTICE = "\n\n[The answer is longer than this app shows; the rest was cut.]";
/** Marks where part of the answer could not be delivered, so the text is never silently joined. */
export const ANSWER_GAP_MARK = " […] ";

/**
 * The next piece of the agent's answer: logged with the mandate and streamed to the phones (the
 * mandate's row catches up now and then: answer.ts). `offset` is where the piece starts in the whole
 * answer, so a batch delivered twice is appended once, and a piece that starts beyond what arrived —
 * or that the Gateway DO flags as following lost text — shows a gap mark (and is audited) instead of
 * being joined over the hole.
 */
export function appendChunk(
	s: SessionContext,
	mandate: MandateRecord,
	text: string,
	offset: number | undefined,
	now: number,
	gap = false,
): void {
	const executionId = mandate.execution_id;
	if (!executionId) return;
	const answer = answerOf(s, mandate);
	if (answer.truncated) return;
	const received = answer.chars;
	// After a gap the offset is only a lower bound: the whole piece is new, behind a gap mark.
	const start = gap ? Math.max(offset ?? received, received) : (offset ?? received);
	const fresh = start >= received ? text : text.slice(received - start);
	if (fresh.length === 0) return;
	let shown = fresh;
	if (start > received || gap) {
		audit(s, "answer_gap", mandate, { from: received, to: start }, now);
		shown = ANSWER_GAP_MARK + fresh;
	}
	let truncated = 0;
	const room = MAX_ANSWER_CHARS - answer.text.length;
	if (shown.length > room) {
		let kept = shown.slice(0, Math.max(0, room));
		// Never end on half of a surrogate pair (an emoji cut in two).
		if (/[\uD800-\uDBFF]$/.test(kept)) kept = kept.slice(0, -1);
		shown = kept + ANSWER_TRUNCATED_NOTICE;
		truncated = 1;
		audit(s, "answer_truncated", mandate, { kept: MAX_ANSWER_CHARS }, now);
	}
	const chars = Math.max(received, start) + fresh.length;
	const seq = emit(
		s,
		{ type: "response_chunk", execution_id: executionId, mandate_id: mandate.mandate_id, chunk: shown },
		{ chars, truncated },
	);
	keepPiece(s, mandate, answer, { shown, chars, truncated, seq });
	noteLiveChange(s, mandate.mandate_id, now);
}

/** The full current state of every mandate; its seq is the last event it reflects. */
export function snapshot(s: SessionContext): SnapshotFrame {
	const unsaved = unsavedAnswers(s);
	return {
		type: "snapshot",
		seq: s.log.lastSeq(),
		session_id: s.sessionId() ?? "",
		// A mandate's row holds its answer up to a checkpoint; the pieces after it come from the log.
		mandates: s.mandates.states().map((state) => {
			const answer = unsaved.get(state.mandate_id);
			return answer ? { ...state, answer: answer.text } : state;
		}),
	};
}
