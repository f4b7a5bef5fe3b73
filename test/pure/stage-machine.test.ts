import { describe, expect, it } from "vitest";
import {
	applyChanges,
	currentStage,
	emptyBoard,
	isFinished,
	planLateSuccess,
	planStageMove,
	type StageBoard,
} from "../../src/pipeline/stage-machine.ts";
import { STAGES, type StageNumber, type StageStatus } from "../../src/protocol/stages.ts";

/** The per-mandate stage machine (DESIGN.md, "The stage machine"): only forward, earlier stages close. */

function board(statuses: Partial<Record<StageNumber, StageStatus>>): StageBoard {
	return { ...emptyBoard(), ...statuses };
}

function completedUpTo(last: number, then: Partial<Record<StageNumber, StageStatus>> = {}): StageBoard {
	const done: Partial<Record<StageNumber, StageStatus>> = {};
	for (const stage of STAGES) if (stage <= last) done[stage] = "completed";
	return board({ ...done, ...then });
}

describe("a new mandate", () => {
	it("has its 10 stages pending, is not finished and has no current stage", () => {
		const empty = emptyBoard();
		expect(Object.keys(empty).map(Number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
		expect(Object.values(empty).every((status) => status === "pending")).toBe(true);
		expect(isFinished(empty)).toBe(false);
		expect(currentStage(empty)).toBe(0);
	});

	it("gives a fresh board each time", () => {
		const first = emptyBoard();
		first[1] = "active";
		expect(emptyBoard()[1]).toBe("pending");
	});
});

describe("the front stages (1–5, reported by the pipeline)", () => {
	it("can become active; the stages before it are completed first, in order", () => {
		expect(planStageMove(emptyBoard(), 3, "active")).toEqual({
			ok: true,
			changes: [
				{ stage: 1, status: "completed" },
				{ stage: 2, status: "completed" },
				{ stage: 3, status: "active" },
			],
		});
	});

	it("can fail straight from pending, and the mandate is then finished", () => {
		const plan = planStageMove(emptyBoard(), 2, "failed");
		expect(plan).toEqual({
			ok: true,
			changes: [
				{ stage: 1, status: "completed" },
				{ stage: 2, status: "failed" },
			],
		});
		if (!plan.ok) throw new Error("unreachable");
		expect(isFinished(applyChanges(emptyBoard(), plan.changes))).toBe(true);
	});

	it("an active stage can complete or fail, and stage 1 needs nothing before it", () => {
		const active = board({ 1: "active" });
		expect(planStageMove(emptyBoard(), 1, "active")).toEqual({
			ok: true,
			changes: [{ stage: 1, status: "active" }],
		});
		expect(planStageMove(active, 1, "completed")).toEqual({
			ok: true,
			changes: [{ stage: 1, status: "completed" }],
		});
		expect(planStageMove(active, 1, "failed")).toEqual({
			ok: true,
			changes: [{ stage: 1, status: "failed" }],
		});
	});

	it("an active earlier stage is completed, not left active, when a later one moves", () => {
		expect(planStageMove(board({ 1: "completed", 2: "active" }), 4, "active")).toEqual({
			ok: true,
			changes: [
				{ stage: 2, status: "completed" },
				{ stage: 3, status: "completed" },
				{ stage: 4, status: "active" },
			],
		});
	});

	it("a late confirmation that an earlier stage completed is accepted", () => {
		const later = board({ 1: "completed", 2: "active", 3: "active" });
		expect(planStageMove(later, 2, "completed")).toEqual({
			ok: true,
			changes: [{ stage: 2, status: "completed" }],
		});
	});
});

describe("moves that are refused", () => {
	it("a stage never goes back, with a message that says which stage and why", () => {
		expect(planStageMove(board({ 2: "completed" }), 2, "active")).toEqual({
			ok: false,
			code: "stage_regression",
			message: "Stage 2 is already completed; it cannot go back to active.",
		});
		expect(planStageMove(board({ 1: "completed", 2: "active" }), 2, "pending")).toEqual({
			ok: false,
			code: "stage_regression",
			message: "Stage 2 is already active; it cannot go back to pending.",
		});
	});

	it("completed and failed are both final for a stage", () => {
		expect(planStageMove(board({ 3: "completed" }), 3, "failed")).toMatchObject({
			ok: false,
			code: "stage_regression",
		});
	});

	it("an earlier stage cannot start or fail once a later one started", () => {
		const later = board({ 1: "completed", 2: "active", 3: "active" });
		expect(planStageMove(later, 2, "failed")).toEqual({
			ok: false,
			code: "stage_regression",
			message: "Stage 3 has already started; stage 2 cannot become failed.",
		});
		expect(planStageMove(board({ 4: "active" }), 1, "active")).toEqual({
			ok: false,
			code: "stage_regression",
			message: "Stage 4 has already started; stage 1 cannot become active.",
		});
	});

	it("nothing changes once a stage failed or stage 10 completed, and the message says so", () => {
		expect(planStageMove(board({ 1: "completed", 2: "failed" }), 3, "active")).toEqual({
			ok: false,
			code: "mandate_finished",
			message: "This mandate has already finished; stage 3 can no longer change.",
		});
		expect(planStageMove(completedUpTo(10), 9, "failed")).toMatchObject({
			ok: false,
			code: "mandate_finished",
		});
	});

	it("repeating the current status is a no-op, even on a finished mandate", () => {
		const finished = completedUpTo(5, { 6: "failed" });
		expect(planStageMove(finished, 6, "failed")).toEqual({ ok: true, changes: [] });
		expect(planStageMove(emptyBoard(), 7, "pending")).toEqual({ ok: true, changes: [] });
	});
});

describe("where a mandate is", () => {
	it("is finished once any stage failed, wherever it is", () => {
		for (const stage of STAGES) expect(isFinished(board({ [stage]: "failed" }))).toBe(true);
	});

	it("is finished when stage 10 completed, and not by any other stage completing", () => {
		expect(isFinished(board({ 10: "completed" }))).toBe(true);
		expect(isFinished(completedUpTo(9, { 10: "active" }))).toBe(false);
		for (const stage of STAGES.filter((s) => s < 10))
			expect(isFinished(board({ [stage]: "completed" }))).toBe(false);
	});

	it("its current stage is the highest that left pending", () => {
		expect(currentStage(board({ 1: "completed", 2: "active" }))).toBe(2);
		expect(currentStage(completedUpTo(8, { 9: "failed" }))).toBe(9);
		expect(currentStage(board({ 10: "completed" }))).toBe(10);
	});
});

describe("applying changes", () => {
	it("sets each stage named, in order, and leaves the board it was given alone", () => {
		const before = emptyBoard();
		const after = applyChanges(before, [
			{ stage: 1, status: "active" },
			{ stage: 1, status: "completed" },
			{ stage: 2, status: "active" },
		]);
		expect(after).toEqual(board({ 1: "completed", 2: "active" }));
		expect(before).toEqual(emptyBoard());
	});
});

describe("a late success after our timeout", () => {
	it("completes stage 9 (failed by the timeout) and stage 10", () => {
		expect(planLateSuccess(completedUpTo(8, { 9: "failed" }))).toEqual([
			{ stage: 9, status: "completed" },
			{ stage: 10, status: "completed" },
		]);
	});

	it("completes only stage 10 when the agent had already ended (stage 9 completed)", () => {
		expect(planLateSuccess(completedUpTo(9, { 10: "failed" }))).toEqual([{ stage: 10, status: "completed" }]);
	});

	it("changes nothing on a board that is already delivered", () => {
		expect(planLateSuccess(completedUpTo(10))).toEqual([]);
	});
});
