import type {
	MandateState,
	PipelineStageFrame,
	ProgressFrame,
	ResponseChunkFrame,
	ServerFrame,
	SnapshotFrame,
} from "./protocol/frames.ts";
import { STAGE_NAMES, STAGES, type StageNumber, type StageStatus } from "./protocol/stages.ts";
import type { MandatePhase, MandateView, SessionView, StageView } from "./view.ts";

/**
 * The pure fold of server frames into what a phone shows (issue 5). No I/O and no clock, so it is
 * tested directly and behaves the same in the app, the web page and the tests.
 *
 * Rules, from DESIGN.md "Mobile wire format" and "The stage machine":
 * - a logged frame whose seq is not above the last one seen is a duplicate and changes nothing;
 * - a snapshot is the server's whole truth at its seq and replaces everything;
 * - a stage never moves back (pending < active < completed | failed), whatever arrives.
 */

const RANK: Record<StageStatus, number> = { pending: 0, active: 1, completed: 2, failed: 2 };

export function emptySession(): SessionView {
	return { session_id: null, seq: null, mandates: [] };
}

export function emptyMandate(mandateId: string): MandateView {
	return {
		mandate_id: mandateId,
		execution_id: null,
		intent: null,
		stages: STAGES.map((stage) => ({
			stage,
			stage_name: STAGE_NAMES[stage],
			status: "pending",
			timestamp: null,
		})),
		phase: "in_progress",
		sub_status: null,
		progress: 0,
		answer: "",
		error: null,
		result: null,
	};
}

/** True when a frame with this seq would be dropped as already seen. */
export function isDuplicate(session: SessionView, seq: number): boolean {
	return session.seq !== null && seq <= session.seq;
}

/** Folds one frame in; returns the same object when the frame changes nothing (a duplicate, a pong). */
export function foldFrame(session: SessionView, frame: ServerFrame): SessionView {
	if ("event" in frame) {
		if (isDuplicate(session, frame.seq)) return session;
		return withMandate(session, frame.seq, frame.data.mandate_id, (m) => applyStage(m, frame));
	}
	switch (frame.type) {
		case "snapshot":
			return fromSnapshot(frame);
		case "progress":
			if (isDuplicate(session, frame.seq)) return session;
			return withMandate(session, frame.seq, frame.mandate_id, (m) => applyProgress(m, frame));
		case "response_chunk":
			if (isDuplicate(session, frame.seq)) return session;
			return withMandate(session, frame.seq, frame.mandate_id, (m) => applyChunk(m, frame));
		default:
			// pong and error frames carry no pipeline state.
			return session;
	}
}

export function fromSnapshot(snapshot: SnapshotFrame): SessionView {
	return { session_id: snapshot.session_id, seq: snapshot.seq, mandates: snapshot.mandates.map(fromState) };
}

/** A mandate as the server's snapshot (and `GET /progress`) describes it. */
export function fromState(state: MandateState): MandateView {
	const stages: StageView[] = emptyMandate(state.mandate_id).stages.map((empty) => {
		const known = state.stages.find((s) => s.stage === empty.stage);
		if (!known) return empty;
		return {
			...empty,
			status: known.status,
			timestamp: known.timestamp,
			...(known.message ? { message: known.message } : {}),
		};
	});
	return {
		mandate_id: state.mandate_id,
		execution_id: state.execution_id,
		intent: state.intent,
		stages,
		phase: phaseOf(stages),
		sub_status: state.sub_status,
		progress: state.progress,
		answer: state.answer,
		error: state.error,
		result: state.result ? { summary: state.result.summary, delivered_to: state.result.delivered_to } : null,
	};
}

export function phaseOf(stages: readonly StageView[]): MandatePhase {
	if (stages.some((s) => s.status === "failed")) return "failed";
	return stages[9]?.status === "completed" ? "completed" : "in_progress";
}

/** The highest stage that has left `pending` (0 when none has): the one the card highlights. */
export function currentStage(mandate: MandateView): number {
	let current = 0;
	for (const stage of mandate.stages) if (stage.status !== "pending") current = stage.stage;
	return current;
}

function withMandate(
	session: SessionView,
	seq: number,
	mandateId: string,
	change: (mandate: MandateView) => MandateView,
): SessionView {
	const index = session.mandates.findIndex((m) => m.mandate_id === mandateId);
	const mandates = [...session.mandates];
	if (index === -1) mandates.push(change(emptyMandate(mandateId)));
	else mandates[index] = change(mandates[index] as MandateView);
	return { ...session, seq, mandates };
}

function applyStage(mandate: MandateView, frame: PipelineStageFrame): MandateView {
	const { data } = frame;
	const stage = data.stage as StageNumber;
	const before = mandate.stages[stage - 1] as StageView;
	// Only forward; a failed stage 9 may still become completed (a late success beats a stale timeout).
	if (RANK[data.status] < RANK[before.status]) return mandate;
	const after: StageView = {
		stage,
		stage_name: data.stage_name,
		status: data.status,
		timestamp: data.timestamp,
		...(data.message ? { message: data.message } : {}),
	};
	const stages = mandate.stages.map((s) => (s.stage === stage ? after : s));
	let { error, result } = mandate;
	// The same texts the server keeps for the mandate, so a folded view equals its snapshot.
	if (data.status === "failed") error = data.message ?? `Stopped at "${data.stage_name}".`;
	if (stage === 10 && data.status === "completed") {
		error = null;
		result = { summary: data.summary ?? null, delivered_to: data.delivered_to ?? [] };
	}
	return {
		...mandate,
		execution_id: data.execution_id ?? mandate.execution_id,
		intent: data.intent ?? mandate.intent,
		stages,
		phase: phaseOf(stages),
		error,
		result,
	};
}

function applyProgress(mandate: MandateView, frame: ProgressFrame): MandateView {
	return {
		...mandate,
		execution_id: frame.execution_id,
		sub_status: frame.status,
		progress: Math.max(mandate.progress, frame.progress),
	};
}

function applyChunk(mandate: MandateView, frame: ResponseChunkFrame): MandateView {
	return { ...mandate, execution_id: frame.execution_id, answer: mandate.answer + frame.chunk };
}
