import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	applyChanges,
	emptyBoard,
	isFinished,
	planLateSuccess,
	planStageMove,
	type StageBoard,
} from "../src/pipeline/stage-machine.ts";
import { STAGE_STATUSES, STAGES, type StageNumber } from "../src/protocol/stages.ts";

const RANK = { pending: 0, active: 1, completed: 2, failed: 2 } as const;

describe("stage machine", () => {
	it("completes every earlier open stage when a later one starts", () => {
		const plan = planStageMove(emptyBoard(), 4, "completed");
		expect(plan).toEqual({
			ok: true,
			changes: [
				{ stage: 1, status: "completed" },
				{ stage: 2, status: "completed" },
				{ stage: 3, status: "completed" },
				{ stage: 4, status: "completed" },
			],
		});
	});

	it("treats a repeated report as a no-op", () => {
		const board = applyChanges(emptyBoard(), [{ stage: 1, status: "active" }]);
		expect(planStageMove(board, 1, "active")).toEqual({ ok: true, changes: [] });
	});

	it("refuses to move a stage backwards", () => {
		const board = applyChanges(emptyBoard(), [{ stage: 2, status: "completed" }]);
		expect(planStageMove(board, 2, "active")).toMatchObject({ ok: false, code: "stage_regression" });
	});

	it("refuses to start an earlier stage once a later one has started", () => {
		const board = applyChanges(emptyBoard(), [{ stage: 4, status: "active" }]);
		expect(planStageMove(board, 3, "active")).toMatchObject({ ok: false, code: "stage_regression" });
		expect(planStageMove(board, 3, "completed")).toMatchObject({ ok: true });
	});

	it("refuses any change once the mandate has finished", () => {
		const failed = applyChanges(emptyBoard(), [{ stage: 6, status: "failed" }]);
		expect(isFinished(failed)).toBe(true);
		expect(planStageMove(failed, 9, "active")).toMatchObject({ ok: false, code: "mandate_finished" });
		const delivered = applyChanges(
			emptyBoard(),
			STAGES.map((stage) => ({ stage, status: "completed" as const })),
		);
		expect(planStageMove(delivered, 10, "failed")).toMatchObject({ ok: false, code: "mandate_finished" });
	});

	it("lets a late success replace a timed-out stage 9", () => {
		const timedOut = applyChanges(emptyBoard(), [
			...STAGES.filter((s) => s < 9).map((stage) => ({ stage, status: "completed" as const })),
			{ stage: 9, status: "failed" },
		]);
		expect(planLateSuccess(timedOut)).toEqual([
			{ stage: 9, status: "completed" },
			{ stage: 10, status: "completed" },
		]);
	});

	it("never moves any stage backwards, whatever sequence of moves is requested", () => {
		const move = fc.record({
			stage: fc.constantFrom(...STAGES),
			status: fc.constantFrom(...STAGE_STATUSES),
		});
		fc.assert(
			fc.property(fc.array(move, { maxLength: 40 }), (moves) => {
				let board: StageBoard = emptyBoard();
				for (const { stage, status } of moves) {
					const plan = planStageMove(board, stage as StageNumber, status);
					if (!plan.ok || plan.changes.length === 0) continue;
					const next = applyChanges(board, plan.changes);
					for (const s of STAGES) {
						expect(RANK[next[s]]).toBeGreaterThanOrEqual(RANK[board[s]]);
						if (board[s] === "completed" || board[s] === "failed") expect(next[s]).toBe(board[s]);
					}
					// Stages before the one moved are never left open.
					for (const s of STAGES) if (s < stage) expect(["completed", "failed"]).toContain(next[s]);
					board = next;
				}
			}),
			{ numRuns: 2_000 },
		);
	});
});
