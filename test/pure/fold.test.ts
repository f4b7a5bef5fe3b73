import { describe, expect, it } from "vitest";
import {
	currentStage,
	emptyMandate,
	emptySession,
	foldFrame,
	fromSnapshot,
	fromState,
	isDuplicate,
	phaseOf,
} from "../../client/fold.ts";
import type { MandateView, SessionView } from "../../client/view.ts";
import type { MandateState, ServerFrame } from "../../src/protocol/frames.ts";
import { STAGE_NAMES, type StageStatus } from "../../src/protocol/stages.ts";

/** The SDK's pure fold of server frames into what a phone shows (DESIGN.md, "Mobile wire format"). */

const T = "2026-11-20T10:00:00.000Z";

function stage(
	seq: number,
	n: number,
	status: StageStatus,
	extra: Record<string, unknown> = {},
): ServerFrame {
	return {
		event: "pipeline_stage",
		seq,
		data: { stage: n, status, timestamp: T, stage_name: `Stage ${n}`, mandate_id: "mio_1", ...extra },
	};
}
function progress(seq: number, value: number, status = "Working", mandateId = "mio_1"): ServerFrame {
	return {
		type: "progress",
		seq,
		execution_id: "exec_1",
		mandate_id: mandateId,
		status,
		progress: value,
		timestamp: T,
	};
}
function chunk(seq: number, text: string, mandateId = "mio_1"): ServerFrame {
	return { type: "response_chunk", seq, execution_id: "exec_1", mandate_id: mandateId, chunk: text };
}
function fold(frames: ServerFrame[], from: SessionView = emptySession()): SessionView {
	return frames.reduce(foldFrame, from);
}
function mandate(view: SessionView, id = "mio_1"): MandateView {
	const found = view.mandates.find((m) => m.mandate_id === id);
	if (!found) throw new Error(`no mandate ${id}`);
	return found;
}
function state(overrides: Partial<MandateState> = {}): MandateState {
	return {
		mandate_id: "mio_2",
		execution_id: "exec_2",
		tenant_id: "t",
		intent: "Book a table",
		state: "running",
		stages: [],
		sub_status: null,
		progress: 0,
		answer: "",
		error: null,
		result: null,
		updated_at: T,
		...overrides,
	};
}

describe("a session before any frame", () => {
	it("knows no session, seq or mandate", () => {
		expect(emptySession()).toEqual({ session_id: null, seq: null, mandates: [] });
	});

	it("takes any first frame, even seq 0, as new", () => {
		expect(isDuplicate(emptySession(), 0)).toBe(false);
		expect(fold([chunk(0, "a")]).seq).toBe(0);
	});
});

describe("a mandate first seen in a live frame", () => {
	it("starts with 10 named pending stages, in progress, with nothing known yet", () => {
		expect(emptyMandate("mio_9")).toEqual({
			mandate_id: "mio_9",
			execution_id: null,
			intent: null,
			stages: Object.entries(STAGE_NAMES).map(([n, name]) => ({
				stage: Number(n),
				stage_name: name,
				status: "pending",
				timestamp: null,
			})),
			phase: "in_progress",
			sub_status: null,
			progress: 0,
			answer: "",
			error: null,
			result: null,
		});
	});

	it("from a progress frame: in progress, with its sub-status, progress and execution", () => {
		expect(mandate(fold([progress(1, 10, "Agent started")]))).toMatchObject({
			phase: "in_progress",
			execution_id: "exec_1",
			sub_status: "Agent started",
			progress: 10,
		});
	});

	it("mandates are kept in the order the session first saw them", () => {
		const view = fold([chunk(1, "a", "mio_b"), chunk(2, "b", "mio_a"), chunk(3, "c", "mio_b")]);
		expect(view.mandates.map((m) => [m.mandate_id, m.answer])).toEqual([
			["mio_b", "ac"],
			["mio_a", "b"],
		]);
	});
});

describe("the resume point (seq)", () => {
	it("follows every logged frame folded in", () => {
		expect(fold([stage(1, 1, "active")]).seq).toBe(1);
		expect(fold([stage(1, 1, "active"), progress(4, 10)]).seq).toBe(4);
		expect(fold([stage(1, 1, "active"), progress(4, 10), chunk(7, "x")]).seq).toBe(7);
	});

	it("is never rewound by a replayed older progress frame, and nothing else changes", () => {
		const view = fold([progress(5, 40, "Read from REPORT.md")]);
		for (const old of [progress(3, 60, "Agent started"), progress(5, 60, "Agent started")]) {
			const after = foldFrame(view, old);
			expect(after).toBe(view);
			expect(after.seq).toBe(5);
			expect(mandate(after)).toMatchObject({ sub_status: "Read from REPORT.md", progress: 40 });
		}
	});

	it("is never rewound by a replayed older stage or chunk", () => {
		const view = fold([stage(1, 1, "active"), chunk(6, "a")]);
		expect(foldFrame(view, stage(2, 2, "active"))).toBe(view);
		expect(foldFrame(view, chunk(6, "a"))).toBe(view);
		expect(foldFrame(view, chunk(4, "b"))).toBe(view);
	});

	it("pong and error frames change nothing", () => {
		const view = fold([chunk(3, "a")]);
		expect(foldFrame(view, { type: "pong" })).toBe(view);
		expect(foldFrame(view, { type: "error", code: "bad_frame", message: "no" })).toBe(view);
	});
});

describe("stage frames", () => {
	it("set the stage's status, name, time and message, and the execution id when they carry one", () => {
		const view = fold([stage(1, 9, "active", { execution_id: "exec_9", message: "Running" })]);
		expect(mandate(view).execution_id).toBe("exec_9");
		expect(mandate(view).stages[8]).toEqual({
			stage: 9,
			stage_name: "Stage 9",
			status: "active",
			timestamp: T,
			message: "Running",
		});
		expect(mandate(fold([stage(2, 10, "active")], view)).execution_id).toBe("exec_9");
	});

	it("carry what the user asked for once the mandate has it, and a frame without it keeps it", () => {
		expect(mandate(fold([stage(1, 1, "active")])).intent).toBeNull();
		const view = fold([stage(1, 1, "active", { intent: "Send the report" }), stage(2, 2, "active")]);
		expect(mandate(view).intent).toBe("Send the report");
	});

	it("never move a stage back", () => {
		const view = fold([stage(1, 3, "completed"), stage(2, 3, "active"), stage(3, 3, "pending")]);
		expect(mandate(view).stages[2]?.status).toBe("completed");
	});

	it("a failed stage makes the mandate failed with its message as the error", () => {
		const view = fold([stage(1, 6, "failed", { message: "That workspace does not exist." })]);
		expect(mandate(view)).toMatchObject({
			phase: "failed",
			error: "That workspace does not exist.",
			result: null,
		});
	});

	it("a failed stage without a message says where it stopped", () => {
		expect(mandate(fold([stage(1, 9, "failed")])).error).toBe('Stopped at "Stage 9".');
	});

	it("an active or completed stage before 10 sets no error and no result", () => {
		const view = fold([
			stage(1, 5, "active", { message: "x" }),
			stage(2, 9, "completed", { summary: "not yet" }),
		]);
		expect(mandate(view)).toMatchObject({ phase: "in_progress", error: null, result: null });
	});

	it("stage 10 completed makes the mandate completed with ObeGee's summary and recipients", () => {
		const view = fold([stage(1, 10, "completed", { summary: "Sent", delivered_to: ["email"] })]);
		expect(mandate(view)).toMatchObject({
			phase: "completed",
			error: null,
			result: { summary: "Sent", delivered_to: ["email"] },
		});
	});

	it("stage 10 completed without a summary or recipients still has a result", () => {
		expect(mandate(fold([stage(1, 10, "completed")])).result).toEqual({ summary: null, delivered_to: [] });
	});

	it("stage 10 failing is a failure, not a result", () => {
		const view = fold([stage(1, 10, "failed", { summary: "Sent", message: "Delivery failed." })]);
		expect(mandate(view)).toMatchObject({ phase: "failed", error: "Delivery failed.", result: null });
	});

	it("a late success clears the stale timeout error", () => {
		const view = fold([
			stage(1, 9, "failed", { message: "Taking longer than expected" }),
			stage(2, 9, "completed"),
			stage(3, 10, "completed", { summary: "Done" }),
		]);
		expect(mandate(view)).toMatchObject({ phase: "completed", error: null, result: { summary: "Done" } });
	});
});

describe("progress and chunks", () => {
	it("progress never goes down, while the sub-status follows the latest frame", () => {
		const view = fold([progress(1, 50, "Read from REPORT.md"), progress(2, 20, "Still working... (20 s)")]);
		expect(mandate(view)).toMatchObject({ progress: 50, sub_status: "Still working... (20 s)" });
	});

	it("chunks append to the answer in seq order", () => {
		expect(mandate(fold([chunk(1, "The answer "), chunk(2, "is 42.")])).answer).toBe("The answer is 42.");
	});
});

describe("a snapshot", () => {
	it("replaces everything: the session, its resume point and its mandates", () => {
		const before = fold([stage(1, 1, "active"), chunk(50, "x")]);
		const view = foldFrame(before, { type: "snapshot", seq: 40, session_id: "s1", mandates: [state()] });
		expect(view.session_id).toBe("s1");
		expect(view.seq).toBe(40);
		expect(view.mandates.map((m) => m.mandate_id)).toEqual(["mio_2"]);
	});

	it("places each stage it knows on its own card line, with its message; the others stay pending", () => {
		const view = fromState(
			state({
				stages: [
					{ stage: 9, stage_name: "OpenClaw executing", status: "failed", timestamp: T, message: "Too slow" },
					{ stage: 4, stage_name: "Mandate created", status: "completed", timestamp: T },
				],
			}),
		);
		expect(view.stages).toHaveLength(10);
		expect(view.stages[3]).toEqual({
			stage: 4,
			stage_name: "Mandate created",
			status: "completed",
			timestamp: T,
		});
		expect(view.stages[8]).toEqual({
			stage: 9,
			stage_name: "OpenClaw executing",
			status: "failed",
			timestamp: T,
			message: "Too slow",
		});
		expect(view.stages[0]).toEqual({
			stage: 1,
			stage_name: "Intent captured",
			status: "pending",
			timestamp: null,
		});
		expect(view.phase).toBe("failed");
	});

	it("carries the mandate's fields as the server kept them", () => {
		const view = fromSnapshot({
			type: "snapshot",
			seq: 7,
			session_id: "s1",
			mandates: [
				state({
					stages: [{ stage: 10, stage_name: "Results delivered", status: "completed", timestamp: T }],
					sub_status: "Execution complete",
					progress: 100,
					answer: "Done.",
					result: { summary: "Sent", delivered_to: ["email"], completed_at: T },
				}),
			],
		});
		expect(view.mandates[0]).toMatchObject({
			mandate_id: "mio_2",
			execution_id: "exec_2",
			intent: "Book a table",
			phase: "completed",
			sub_status: "Execution complete",
			progress: 100,
			answer: "Done.",
			error: null,
			result: { summary: "Sent", delivered_to: ["email"] },
		});
		expect(view.mandates[0]?.result).toEqual({ summary: "Sent", delivered_to: ["email"] });
	});

	it("a mandate without a result or error has none", () => {
		expect(fromState(state({ error: "Oops" }))).toMatchObject({
			result: null,
			error: "Oops",
			phase: "in_progress",
		});
	});
});

describe("where the card is", () => {
	it("the phase of a card without stages is in progress", () => {
		expect(phaseOf([])).toBe("in_progress");
	});

	it("the current stage is the highest that left pending, 0 when none has", () => {
		expect(currentStage(emptyMandate("m"))).toBe(0);
		const view = fold([stage(1, 2, "completed"), stage(2, 4, "active")]);
		expect(currentStage(mandate(view))).toBe(4);
	});
});
