import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { emptySession, foldFrame } from "../client/fold.ts";
import type { SessionView } from "../client/view.ts";
import type { LoggedFrame, ServerFrame, SnapshotFrame } from "../src/protocol/frames.ts";
import { STAGE_STATUSES } from "../src/protocol/stages.ts";

// issue 5: the SDK's pure fold — seq dedup, snapshots, no stage ever moving back.

const T = "2026-11-20T10:00:00.000Z";
const RANK = { pending: 0, active: 1, completed: 2, failed: 2 } as const;

function stage(seq: number, n: number, status: (typeof STAGE_STATUSES)[number], extra = {}): ServerFrame {
	return {
		event: "pipeline_stage",
		seq,
		data: { stage: n, status, timestamp: T, stage_name: `Stage ${n}`, mandate_id: "mio_1", ...extra },
	};
}

function foldAll(frames: ServerFrame[], from: SessionView = emptySession()): SessionView {
	return frames.reduce(foldFrame, from);
}

describe("foldFrame", () => {
	it("folds stages, progress and chunks into the mandate, in order", () => {
		const view = foldAll([
			stage(1, 1, "completed"),
			stage(2, 9, "active", { execution_id: "exec_1" }),
			{
				type: "progress",
				seq: 3,
				execution_id: "exec_1",
				mandate_id: "mio_1",
				status: "Agent started",
				progress: 10,
				timestamp: T,
			},
			{ type: "response_chunk", seq: 4, execution_id: "exec_1", mandate_id: "mio_1", chunk: "The answer " },
			{ type: "response_chunk", seq: 5, execution_id: "exec_1", mandate_id: "mio_1", chunk: "is 42." },
			stage(6, 10, "completed", { summary: "Sent", delivered_to: ["email"] }),
		]);
		expect(view.seq).toBe(6);
		const [mandate] = view.mandates;
		expect(mandate).toMatchObject({
			mandate_id: "mio_1",
			execution_id: "exec_1",
			phase: "completed",
			sub_status: "Agent started",
			progress: 10,
			answer: "The answer is 42.",
			error: null,
			result: { summary: "Sent", delivered_to: ["email"] },
		});
		expect(mandate?.stages.map((s) => s.status)).toEqual([
			"completed",
			"pending",
			"pending",
			"pending",
			"pending",
			"pending",
			"pending",
			"pending",
			"active",
			"completed",
		]);
	});

	it("drops a frame whose seq was already seen, returning the same object", () => {
		const once = foldAll([
			stage(1, 1, "active"),
			{ type: "response_chunk", seq: 2, execution_id: "e", mandate_id: "mio_1", chunk: "a" },
		]);
		expect(
			foldFrame(once, { type: "response_chunk", seq: 2, execution_id: "e", mandate_id: "mio_1", chunk: "a" }),
		).toBe(once);
		expect(foldFrame(once, stage(1, 1, "active"))).toBe(once);
		expect(once.mandates[0]?.answer).toBe("a");
	});

	it("keeps the friendly failure message as the mandate's error", () => {
		const view = foldAll([stage(1, 6, "failed", { message: "That workspace does not exist." })]);
		expect(view.mandates[0]).toMatchObject({ phase: "failed", error: "That workspace does not exist." });
		expect(view.mandates[0]?.stages[5]?.message).toBe("That workspace does not exist.");
	});

	it("replaces everything with a snapshot, which sets the seq to resume from", () => {
		const snapshot: SnapshotFrame = {
			type: "snapshot",
			seq: 40,
			session_id: "s1",
			mandates: [
				{
					mandate_id: "mio_2",
					execution_id: "exec_2",
					tenant_id: "t",
					intent: "Book a table",
					state: "running",
					stages: [{ stage: 4, stage_name: "Mandate created", status: "completed", timestamp: T }],
					sub_status: "Still working... (20 s)",
					progress: 10,
					answer: "",
					error: null,
					result: null,
					updated_at: T,
				},
			],
		};
		const view = foldAll([stage(1, 1, "active"), snapshot]);
		expect(view.seq).toBe(40);
		expect(view.session_id).toBe("s1");
		expect(view.mandates.map((m) => m.mandate_id)).toEqual(["mio_2"]);
		expect(view.mandates[0]?.stages).toHaveLength(10);
		expect(view.mandates[0]?.stages[3]?.status).toBe("completed");
		expect(view.mandates[0]?.intent).toBe("Book a table");
	});

	it("takes the intent from the stage frames that carry it, and keeps it when later ones do not (issue 15)", () => {
		const view = foldAll([
			stage(1, 1, "completed"),
			stage(2, 4, "completed", { intent: "Book a table for two" }),
			stage(3, 6, "active"),
		]);
		expect(view.mandates[0]?.intent).toBe("Book a table for two");
		expect(foldAll([stage(1, 1, "completed")]).mandates[0]?.intent).toBeNull();
	});

	it("lets a late success replace a timed-out stage 9 (same rank), but never moves a stage back", () => {
		const view = foldAll([
			stage(1, 9, "failed", { message: "Taking longer than expected" }),
			stage(2, 9, "completed"),
			stage(3, 10, "completed", { summary: "Done" }),
			stage(4, 9, "active"),
		]);
		expect(view.mandates[0]).toMatchObject({ phase: "completed", error: null, result: { summary: "Done" } });
		expect(view.mandates[0]?.stages[8]?.status).toBe("completed");
	});

	it("property: whatever frames arrive, in whatever order, no stage ever moves back and no seq is applied twice", () => {
		const frameArb = fc.record({
			seq: fc.integer({ min: 1, max: 30 }),
			mandate: fc.constantFrom("mio_a", "mio_b"),
			stage: fc.integer({ min: 1, max: 10 }),
			status: fc.constantFrom(...STAGE_STATUSES),
			chunk: fc.string({ maxLength: 3 }),
			kind: fc.constantFrom("stage", "chunk"),
		});
		fc.assert(
			fc.property(fc.array(frameArb, { maxLength: 60 }), (raw) => {
				let view = emptySession();
				const appliedChunks: Record<string, string> = { mio_a: "", mio_b: "" };
				for (const r of raw) {
					const frame: LoggedFrame =
						r.kind === "stage"
							? {
									event: "pipeline_stage",
									seq: r.seq,
									data: {
										stage: r.stage,
										status: r.status,
										timestamp: T,
										stage_name: "s",
										mandate_id: r.mandate,
									},
								}
							: {
									type: "response_chunk",
									seq: r.seq,
									execution_id: "e",
									mandate_id: r.mandate,
									chunk: r.chunk,
								};
					const before = view;
					view = foldFrame(view, frame);
					const fresh = before.seq === null || r.seq > before.seq;
					if (!fresh) expect(view).toBe(before);
					if (fresh && r.kind === "chunk") appliedChunks[r.mandate] += r.chunk;
					for (const after of view.mandates) {
						const was = before.mandates.find((m) => m.mandate_id === after.mandate_id);
						after.stages.forEach((s, i) => {
							expect(RANK[s.status]).toBeGreaterThanOrEqual(RANK[was?.stages[i]?.status ?? "pending"]);
						});
					}
				}
				for (const mandate of view.mandates) expect(mandate.answer).toBe(appliedChunks[mandate.mandate_id]);
			}),
		);
	});
});
