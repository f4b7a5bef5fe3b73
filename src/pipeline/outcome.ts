import type { MandateState } from "../protocol/frames.ts";
import {
	isFinished,
	planLateSuccess,
	planStageMove,
	type StageBoard,
	type StageChange,
} from "./stage-machine.ts";

/**
 * The outcome rules (DESIGN.md, "The stage machine"), pure like the stage machine: ObeGee owns the
 * outcome, and it is applied exactly once, whichever of the webhook and a poll brings it first; our
 * own timeout ends a run that never reports; later signals change nothing — except that a success
 * after our timeout replaces the stale "timed out". The caller stores what the plan says, audits
 * every signal and tells the phones.
 */

export type MandateLifecycle = MandateState["state"];

/** What ended (or tried to end) a run. */
export type OutcomeSignal =
	| { kind: "remote"; status: "COMPLETED" | "FAILED" }
	/** The mandate's deadline passed while it was still running. */
	| { kind: "timeout" };

export type OutcomePlan =
	/** Stage 10 completes (and, for a late success, stage 9 too); the mandate is `completed`. */
	| { kind: "complete"; late: boolean; changes: StageChange[] }
	/** The first open stage of ObeGee's part fails; the mandate is `failed` or `timed_out`. */
	| { kind: "fail"; state: "failed" | "timed_out"; stage: 9 | 10; changes: StageChange[] }
	/** Already decided: audited, nothing changes. */
	| { kind: "ignore"; reason: "already_final" | "not_running" };

export function planOutcome(state: MandateLifecycle, board: StageBoard, signal: OutcomeSignal): OutcomePlan {
	if (signal.kind === "timeout") {
		if (state !== "running") return { kind: "ignore", reason: "not_running" };
		return failOpenStage(board, "timed_out");
	}
	const succeeded = signal.status === "COMPLETED";
	if (state === "timed_out" && succeeded)
		return { kind: "complete", late: true, changes: planLateSuccess(board) };
	if (state !== "running") return { kind: "ignore", reason: "already_final" };
	if (succeeded) return { kind: "complete", late: false, changes: forwardChanges(board, 10, "completed") };
	return failOpenStage(board, "failed");
}

/**
 * A failure lands on the first stage of ObeGee's part that is still open: stage 9, or stage 10 when
 * the agent had already finished (lifecycle end) but ObeGee reports that the delivery failed.
 */
function failOpenStage(board: StageBoard, state: "failed" | "timed_out"): OutcomePlan {
	const stage = board[9] === "completed" ? 10 : 9;
	return { kind: "fail", state, stage, changes: forwardChanges(board, stage, "failed") };
}

/** A move the caller knows is legal from `board`; once the board is finished it yields no change. */
export function forwardChanges(
	board: StageBoard,
	stage: 9 | 10,
	status: "completed" | "failed",
): StageChange[] {
	if (isFinished(board)) return [];
	const plan = planStageMove(board, stage, status);
	return plan.ok ? plan.changes : [];
}
