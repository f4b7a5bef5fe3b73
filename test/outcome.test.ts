import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	forwardChanges,
	type MandateLifecycle,
	type OutcomeSignal,
	planOutcome,
} from "../src/pipeline/outcome.ts";
import {
	applyChanges,
	emptyBoard,
	isFinished,
	planStageMove,
	type StageBoard,
} from "../src/pipeline/stage-machine.ts";
import { STAGES } from "../src/protocol/stages.ts";

/** The outcome rules (src/pipeline/outcome.ts): one terminal outcome, whatever order the signals come in. */

/** A mandate just dispatched: stages 1–8 completed, stage 9 active. */
function dispatched(): StageBoard {
	const plan = planStageMove(emptyBoard(), 9, "active");
	if (!plan.ok) throw new Error("unreachable");
	return applyChanges(emptyBoard(), plan.changes);
}

type Signal = OutcomeSignal | { kind: "gateway_end" };
const signal: fc.Arbitrary<Signal> = fc.oneof(
	fc.constant<Signal>({ kind: "remote", status: "COMPLETED" }),
	fc.constant<Signal>({ kind: "remote", status: "FAILED" }),
	fc.constant<Signal>({ kind: "timeout" }),
	fc.constant<Signal>({ kind: "gateway_end" }),
);

/** Plays signals the way the Session DO applies them; counts the outcomes it applied. */
function play(signals: readonly Signal[]) {
	let state: MandateLifecycle = "running";
	let board = dispatched();
	const applied: string[] = [];
	for (const next of signals) {
		if (next.kind === "gateway_end") {
			// The agent's lifecycle end completes stage 9 only while the run is still ours to show.
			if (state === "running") board = applyChanges(board, forwardChanges(board, 9, "completed"));
			continue;
		}
		const plan = planOutcome(state, board, next);
		if (plan.kind === "ignore") continue;
		board = applyChanges(board, plan.changes);
		state = plan.kind === "complete" ? "completed" : plan.state;
		applied.push(plan.kind === "complete" ? (plan.late ? "late_success" : "completed") : plan.state);
	}
	return { state, board, applied };
}

describe("outcome rules", () => {
	it("apply exactly one terminal outcome, and at most one late success after a timeout", () => {
		fc.assert(
			fc.property(fc.array(signal, { maxLength: 12 }), (signals) => {
				const { state, board, applied } = play(signals);
				const terminal = signals.filter((s) => s.kind !== "gateway_end");
				if (terminal.length === 0) {
					expect(applied).toEqual([]);
					expect(state).toBe("running");
					return;
				}
				const first = terminal[0] as OutcomeSignal;
				const expectedFirst =
					first.kind === "timeout" ? "timed_out" : first.status === "COMPLETED" ? "completed" : "failed";
				expect(applied[0]).toBe(expectedFirst);
				const lateSuccessPossible =
					first.kind === "timeout" && terminal.some((s) => s.kind === "remote" && s.status === "COMPLETED");
				expect(applied).toEqual(lateSuccessPossible ? ["timed_out", "late_success"] : [expectedFirst]);
				expect(isFinished(board)).toBe(true);
				// One end shows on the card: stage 10 completed, or exactly one failed stage.
				const failed = STAGES.filter((stage) => board[stage] === "failed");
				if (state === "completed") {
					expect(board[9]).toBe("completed");
					expect(board[10]).toBe("completed");
					expect(failed).toEqual([]);
				} else expect(failed.length).toBe(1);
			}),
			{ numRuns: 500 },
		);
	});

	it("fails stage 10, not stage 9, when the agent had already ended", () => {
		const ended = applyChanges(dispatched(), forwardChanges(dispatched(), 9, "completed"));
		expect(planOutcome("running", ended, { kind: "remote", status: "FAILED" })).toMatchObject({
			kind: "fail",
			state: "failed",
			stage: 10,
			changes: [{ stage: 10, status: "failed" }],
		});
		expect(planOutcome("running", dispatched(), { kind: "timeout" })).toMatchObject({
			kind: "fail",
			state: "timed_out",
			stage: 9,
			changes: [{ stage: 9, status: "failed" }],
		});
	});

	it("lets a late success replace a timeout, but never a real failure", () => {
		const timedOut = applyChanges(dispatched(), [{ stage: 9, status: "failed" }]);
		expect(planOutcome("timed_out", timedOut, { kind: "remote", status: "COMPLETED" })).toEqual({
			kind: "complete",
			late: true,
			changes: [
				{ stage: 9, status: "completed" },
				{ stage: 10, status: "completed" },
			],
		});
		expect(planOutcome("failed", timedOut, { kind: "remote", status: "COMPLETED" })).toEqual({
			kind: "ignore",
			reason: "already_final",
		});
		expect(planOutcome("timed_out", timedOut, { kind: "remote", status: "FAILED" })).toEqual({
			kind: "ignore",
			reason: "already_final",
		});
		expect(planOutcome("completed", dispatched(), { kind: "timeout" })).toEqual({
			kind: "ignore",
			reason: "not_running",
		});
	});
});
