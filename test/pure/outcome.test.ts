import { describe, expect, it } from "vitest";
import { forwardChanges, planOutcome } from "../../src/pipeline/outcome.ts";
import { applyChanges, emptyBoard, type StageBoard } from "../../src/pipeline/stage-machine.ts";

/** The outcome rules (DESIGN.md, "The stage machine"): ObeGee owns the outcome, applied once. */

function completedUpTo(last: number, then: Partial<StageBoard> = {}): StageBoard {
	const board = emptyBoard();
	for (let stage = 1; stage <= last; stage++) board[stage as keyof StageBoard] = "completed";
	return { ...board, ...then };
}
const running = () => completedUpTo(8, { 9: "active" });

describe("an outcome for a running mandate", () => {
	it("ObeGee's COMPLETED completes stages 9 and 10", () => {
		expect(planOutcome("running", running(), { kind: "remote", status: "COMPLETED" })).toEqual({
			kind: "complete",
			late: false,
			changes: [
				{ stage: 9, status: "completed" },
				{ stage: 10, status: "completed" },
			],
		});
	});

	it("ObeGee's FAILED fails stage 9 while the agent runs", () => {
		expect(planOutcome("running", running(), { kind: "remote", status: "FAILED" })).toEqual({
			kind: "fail",
			state: "failed",
			stage: 9,
			changes: [{ stage: 9, status: "failed" }],
		});
	});

	it("our timeout fails stage 10 when the agent had already ended", () => {
		expect(planOutcome("running", completedUpTo(9), { kind: "timeout" })).toEqual({
			kind: "fail",
			state: "timed_out",
			stage: 10,
			changes: [{ stage: 10, status: "failed" }],
		});
	});
});

describe("signals after the outcome", () => {
	it("a timeout after the mandate left `running` is ignored as not running", () => {
		for (const state of ["reporting", "dispatching", "completed", "failed", "timed_out"] as const) {
			expect(planOutcome(state, running(), { kind: "timeout" })).toEqual({
				kind: "ignore",
				reason: "not_running",
			});
		}
	});

	it("a second COMPLETED is already final", () => {
		expect(planOutcome("completed", completedUpTo(10), { kind: "remote", status: "COMPLETED" })).toEqual({
			kind: "ignore",
			reason: "already_final",
		});
	});

	it("a late success after a timeout that failed stage 10 completes only stage 10", () => {
		expect(
			planOutcome("timed_out", completedUpTo(9, { 10: "failed" }), { kind: "remote", status: "COMPLETED" }),
		).toEqual({ kind: "complete", late: true, changes: [{ stage: 10, status: "completed" }] });
	});
});

describe("forward changes (moves the caller knows are legal)", () => {
	it("yield the stage machine's changes on an open board", () => {
		expect(forwardChanges(running(), 9, "completed")).toEqual([{ stage: 9, status: "completed" }]);
	});

	it("yield nothing on a finished board", () => {
		expect(forwardChanges(completedUpTo(10), 10, "failed")).toEqual([]);
		expect(forwardChanges(completedUpTo(8, { 9: "failed" }), 9, "completed")).toEqual([]);
	});

	it("yield nothing for a move the stage machine refuses", () => {
		// Stage 9 already completed (the agent ended): a failure can no longer land on it.
		const ended = applyChanges(running(), [{ stage: 9, status: "completed" }]);
		expect(forwardChanges(ended, 9, "failed")).toEqual([]);
	});
});
