import { STAGES, type StageNumber, type StageStatus } from "../protocol/stages.ts";

/**
 * The per-mandate stage machine (DESIGN.md, "The stage machine"). Pure: it takes the current
 * statuses and a requested move and answers which stage changes to apply, in order, or why the
 * move is refused. Stages only move forward; reaching stage k completes every earlier stage that
 * was still open, because the pipeline has moved past them even if it never said so.
 */

export type StageBoard = Readonly<Record<StageNumber, StageStatus>>;

export interface StageChange {
	stage: StageNumber;
	status: StageStatus;
}

export type StagePlan =
	| { ok: true; changes: StageChange[] }
	| { ok: false; code: "stage_regression" | "mandate_finished"; message: string };

const RANK: Record<StageStatus, number> = { pending: 0, active: 1, completed: 2, failed: 2 };

export function emptyBoard(): Record<StageNumber, StageStatus> {
	const board = {} as Record<StageNumber, StageStatus>;
	for (const stage of STAGES) board[stage] = "pending";
	return board;
}

/** A mandate is finished once any stage failed or stage 10 completed. */
export function isFinished(board: StageBoard): boolean {
	return board[10] === "completed" || STAGES.some((s) => board[s] === "failed");
}

/** The highest stage that has left `pending`, or 0. */
export function currentStage(board: StageBoard): number {
	let highest = 0;
	for (const stage of STAGES) if (board[stage] !== "pending") highest = stage;
	return highest;
}

export function planStageMove(board: StageBoard, stage: StageNumber, status: StageStatus): StagePlan {
	if (board[stage] === status) return { ok: true, changes: [] };
	if (isFinished(board)) {
		return {
			ok: false,
			code: "mandate_finished",
			message: `This mandate has already finished; stage ${stage} can no longer change.`,
		};
	}
	if (RANK[status] <= RANK[board[stage]]) {
		return {
			ok: false,
			code: "stage_regression",
			message: `Stage ${stage} is already ${board[stage]}; it cannot go back to ${status}.`,
		};
	}
	// A later stage already started: moving an earlier one is only a (late) confirmation that it completed.
	if (currentStage(board) > stage && status !== "completed") {
		return {
			ok: false,
			code: "stage_regression",
			message: `Stage ${currentStage(board)} has already started; stage ${stage} cannot become ${status}.`,
		};
	}
	const changes: StageChange[] = [];
	for (const earlier of STAGES) {
		if (earlier >= stage) break;
		if (board[earlier] === "pending" || board[earlier] === "active") {
			changes.push({ stage: earlier, status: "completed" });
		}
	}
	changes.push({ stage, status });
	return { ok: true, changes };
}

export function applyChanges(board: StageBoard, changes: readonly StageChange[]): StageBoard {
	const next = { ...board };
	for (const change of changes) next[change.stage] = change.status;
	return next;
}

/**
 * The one exception to "only forward": a success that ObeGee reports after our own timeout
 * fired replaces the stale "timed out" failure (DESIGN.md: a late success beats a stale "timed out").
 * The caller must only use it when the failure on stage 9 was that timeout.
 */
export function planLateSuccess(board: StageBoard): StageChange[] {
	const changes: StageChange[] = [];
	if (board[9] !== "completed") changes.push({ stage: 9, status: "completed" });
	if (board[10] !== "completed") changes.push({ stage: 10, status: "completed" });
	return changes;
}
