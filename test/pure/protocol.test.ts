import { describe, expect, it } from "vitest";
import {
	ExecuteRequest,
	ExecuteResponse,
	Mandate,
	ResumeQuery,
	StageReport,
} from "../../src/protocol/api.ts";
import {
	CLOSE_FORBIDDEN,
	CLOSE_FRAME_TOO_LARGE,
	CLOSE_POLICY,
	CLOSE_UNAUTHORIZED,
} from "../../src/protocol/close-codes.ts";
import { ErrorBody, Identifier, IsoTimestamp, text } from "../../src/protocol/common.ts";
import {
	AckFrame,
	ClientFrame,
	ErrorFrame,
	LoggedFrame,
	MandateState,
	PipelineStageFrame,
	PongFrame,
	ProgressFrame,
	ResponseChunkFrame,
	ServerFrame,
	SnapshotFrame,
} from "../../src/protocol/frames.ts";
import {
	PIPELINE_REPORTED_STAGES,
	STAGE_COUNT,
	STAGE_NAMES,
	STAGE_STATUSES,
	STAGES,
	stageName,
} from "../../src/protocol/stages.ts";

/** The wire vocabulary (DESIGN.md, "External contract" and "Mobile wire format"): what is accepted. */

interface Schema {
	safeParse(value: unknown): {
		success: boolean;
		error?: { issues: { message: string; path: PropertyKey[] }[] };
	};
}
const accepts = (schema: Schema, value: unknown) => schema.safeParse(value).success;
/** The messages a 400 answer would carry (src/http.ts `validate`). */
const problems = (schema: Schema, value: unknown) =>
	schema
		.safeParse(value)
		.error?.issues.map((issue) => `${issue.path.join(".") || "body"}: ${issue.message}`) ?? [];

const T = "2026-11-20T10:00:00.000Z";

describe("identifiers from outside", () => {
	it("are 1 to 128 letters, digits, '_', '-', '.' or ':'", () => {
		for (const id of ["a", "mio_abc123", "exec-1.2:3", "A".repeat(128), "tenant_2545f9a0d50d"]) {
			expect(accepts(Identifier, id)).toBe(true);
		}
		for (const id of ["", "A".repeat(129), "a b", "a/b", "é", "a\n", 7, null]) {
			expect(accepts(Identifier, id)).toBe(false);
		}
	});

	it("say which characters are allowed when one is not, anywhere in the id", () => {
		const message = "body: may only contain letters, digits, '_', '-', '.' and ':'";
		expect(problems(Identifier, "bad id")).toEqual([message]);
		expect(problems(Identifier, "!bad")).toEqual([message]);
		expect(problems(Identifier, "bad!")).toEqual([message]);
	});
});

describe("bounded strings", () => {
	it("timestamps are at most 64 characters", () => {
		expect(accepts(IsoTimestamp, T)).toBe(true);
		expect(accepts(IsoTimestamp, "9".repeat(64))).toBe(true);
		expect(accepts(IsoTimestamp, "9".repeat(65))).toBe(false);
	});

	it("text(max) is any string up to max; text(max, min) also needs min characters", () => {
		expect(accepts(text(3), "")).toBe(true);
		expect(accepts(text(3), "abc")).toBe(true);
		expect(accepts(text(3), "abcd")).toBe(false);
		expect(accepts(text(3, 2), "a")).toBe(false);
		expect(accepts(text(3, 2), "ab")).toBe(true);
		expect(accepts(text(3), 3)).toBe(false);
	});
});

describe("the error body", () => {
	it("is {error: {code, message}}", () => {
		expect(accepts(ErrorBody, { error: { code: "not_found", message: "No such session." } })).toBe(true);
		expect(accepts(ErrorBody, { error: { code: "not_found" } })).toBe(false);
		expect(accepts(ErrorBody, { error: { message: "x" } })).toBe(false);
		expect(accepts(ErrorBody, { code: "x", message: "y" })).toBe(false);
	});
});

describe("the 10 stages", () => {
	it("carry the names the app shows, in order", () => {
		expect(STAGES).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
		expect(STAGE_COUNT).toBe(10);
		expect(STAGES.map(stageName)).toEqual([
			"Intent captured",
			"Enriched with Digital Self",
			"Dimensions extracted",
			"Mandate created",
			"Oral approval received",
			"Agents assigned",
			"Skills & tools defined",
			"Authorization granted",
			"OpenClaw executing",
			"Results delivered",
		]);
		expect(stageName(9)).toBe(STAGE_NAMES[9]);
	});

	it("have the seed's four statuses; the pipeline reports stages 1–5", () => {
		expect(STAGE_STATUSES).toEqual(["pending", "active", "completed", "failed"]);
		expect(PIPELINE_REPORTED_STAGES).toEqual([1, 2, 3, 4, 5]);
	});
});

describe("WebSocket close codes", () => {
	it("are the ones the SDK stops retrying on", () => {
		expect([CLOSE_UNAUTHORIZED, CLOSE_FORBIDDEN, CLOSE_FRAME_TOO_LARGE, CLOSE_POLICY]).toEqual([
			4401, 4403, 1009, 1008,
		]);
	});
});

describe("a stage report (POST /api/sessions/:id/stages)", () => {
	const report = { mandate_id: "mio_1", stage: 3, status: "active" };

	it("names a mandate, a stage 1–5 and a status, and may carry a message of up to 500 characters", () => {
		expect(StageReport.safeParse(report).data).toEqual(report);
		expect(accepts(StageReport, { ...report, stage: 1, status: "failed", message: "m".repeat(500) })).toBe(
			true,
		);
		expect(accepts(StageReport, { ...report, stage: 5, status: "completed" })).toBe(true);
	});

	it("refuses other stages, statuses, long messages, bad ids and unknown fields", () => {
		for (const bad of [
			{ ...report, stage: 0 },
			{ ...report, stage: 6 },
			{ ...report, stage: 2.5 },
			{ ...report, status: "approved" },
			{ ...report, message: "m".repeat(501) },
			{ ...report, mandate_id: "bad id" },
			{ ...report, extra: true },
			{ stage: 3, status: "active" },
		]) {
			expect(accepts(StageReport, bad)).toBe(false);
		}
	});
});

describe("a mandate to execute (POST /api/mandate/execute)", () => {
	const mandate = {
		mandate_id: "mio_1",
		tenant_id: "tenant_1",
		intent: "Send weekly report to team",
		dimensions: { who: "team" },
		generated_skills: [{ name: "email" }],
		delivery_channels: ["email"],
	};

	it("is the seed's mandate plus the session that watches it", () => {
		expect(ExecuteRequest.safeParse({ ...mandate, session_id: "sess_1" }).data).toEqual({
			...mandate,
			session_id: "sess_1",
		});
		expect(accepts(ExecuteRequest, mandate)).toBe(false);
		expect(accepts(Mandate, { mandate_id: "mio_1", tenant_id: "t", intent: "x" })).toBe(true);
	});

	it("bounds every field", () => {
		expect(accepts(Mandate, { ...mandate, intent: "" })).toBe(false);
		expect(accepts(Mandate, { ...mandate, intent: "i".repeat(2000) })).toBe(true);
		expect(accepts(Mandate, { ...mandate, intent: "i".repeat(2001) })).toBe(false);
		expect(accepts(Mandate, { ...mandate, tenant_id: "a tenant" })).toBe(false);
		expect(accepts(Mandate, { ...mandate, generated_skills: Array(50).fill(1) })).toBe(true);
		expect(accepts(Mandate, { ...mandate, generated_skills: Array(51).fill(1) })).toBe(false);
		expect(accepts(Mandate, { ...mandate, delivery_channels: Array(10).fill("email") })).toBe(true);
		expect(accepts(Mandate, { ...mandate, delivery_channels: Array(11).fill("email") })).toBe(false);
		expect(accepts(Mandate, { ...mandate, delivery_channels: [""] })).toBe(false);
		expect(accepts(Mandate, { ...mandate, delivery_channels: ["c".repeat(65)] })).toBe(false);
		expect(accepts(Mandate, { ...mandate, dimensions: { ["k".repeat(129)]: 1 } })).toBe(false);
		expect(accepts(Mandate, { ...mandate, dimensions: [] })).toBe(false);
	});

	it("is answered with ObeGee's execution id and status", () => {
		expect(accepts(ExecuteResponse, { execution_id: "exec_1", status: "QUEUED" })).toBe(true);
		expect(accepts(ExecuteResponse, { execution_id: "exec_1" })).toBe(false);
		expect(accepts(ExecuteResponse, { status: "QUEUED" })).toBe(false);
	});
});

describe("the resume query (?since=N)", () => {
	it("is an optional whole number from 0 to 2^53 - 1, read from the query string", () => {
		expect(ResumeQuery.safeParse({}).data).toEqual({});
		expect(ResumeQuery.safeParse({ since: "42" }).data).toEqual({ since: 42 });
		expect(ResumeQuery.safeParse({ since: "0" }).data).toEqual({ since: 0 });
		expect(accepts(ResumeQuery, { since: String(Number.MAX_SAFE_INTEGER) })).toBe(true);
		for (const since of ["-1", "1.5", "abc", String(2 ** 53)])
			expect(accepts(ResumeQuery, { since })).toBe(false);
	});
});

describe("frames the server sends", () => {
	const stage = {
		event: "pipeline_stage",
		seq: 12,
		data: {
			stage: 9,
			status: "active",
			timestamp: T,
			stage_name: "OpenClaw executing",
			mandate_id: "mio_1",
			execution_id: "exec_1",
		},
	};
	const progress = {
		type: "progress",
		seq: 13,
		execution_id: "exec_1",
		mandate_id: "mio_1",
		status: "Using browser tool...",
		progress: 30,
		timestamp: T,
	};
	const chunk = {
		type: "response_chunk",
		seq: 14,
		execution_id: "exec_1",
		mandate_id: "mio_1",
		chunk: "The ",
	};
	const mandate = {
		mandate_id: "mio_1",
		execution_id: null,
		tenant_id: null,
		intent: null,
		state: "reporting",
		stages: [{ stage: 1, stage_name: "Intent captured", status: "completed", timestamp: T }],
		sub_status: null,
		progress: 0,
		answer: "",
		error: null,
		result: null,
		updated_at: T,
	};
	const snapshot = { type: "snapshot", seq: 0, session_id: "sess_1", mandates: [mandate] };

	it("are DESIGN.md's shapes, each with its seq", () => {
		expect(PipelineStageFrame.safeParse(stage).data).toEqual(stage);
		expect(ProgressFrame.safeParse(progress).data).toEqual(progress);
		expect(ResponseChunkFrame.safeParse(chunk).data).toEqual(chunk);
		expect(SnapshotFrame.safeParse(snapshot).data).toEqual(snapshot);
		expect(accepts(PongFrame, { type: "pong" })).toBe(true);
		expect(accepts(ErrorFrame, { type: "error", code: "bad_frame", message: "Unknown frame." })).toBe(true);
	});

	it("a failed or delivered stage may carry its message, summary and recipients", () => {
		const delivered = { ...stage, data: { ...stage.data, stage: 10, status: "completed", summary: "Sent" } };
		expect(
			accepts(PipelineStageFrame, { ...delivered, data: { ...delivered.data, delivered_to: ["email"] } }),
		).toBe(true);
		expect(accepts(PipelineStageFrame, { ...stage, data: { ...stage.data, message: "Too slow" } })).toBe(
			true,
		);
		expect(accepts(ProgressFrame, { ...progress, elapsed_ms: 0 })).toBe(true);
	});

	it("a stage frame may carry what the user asked for", () => {
		const withIntent = { ...stage, data: { ...stage.data, intent: "Send weekly report to team" } };
		expect(PipelineStageFrame.safeParse(withIntent).data).toEqual(withIntent);
		expect(accepts(PipelineStageFrame, { ...stage, data: { ...stage.data, intent: 7 } })).toBe(false);
	});

	it("refuse a seq, stage, status or progress out of range", () => {
		for (const seq of [-1, 1.5, "1"]) {
			expect(accepts(PipelineStageFrame, { ...stage, seq })).toBe(false);
			expect(accepts(ProgressFrame, { ...progress, seq })).toBe(false);
			expect(accepts(ResponseChunkFrame, { ...chunk, seq })).toBe(false);
			expect(accepts(SnapshotFrame, { ...snapshot, seq })).toBe(false);
		}
		for (const n of [0, 11, 2.5]) {
			expect(accepts(PipelineStageFrame, { ...stage, data: { ...stage.data, stage: n } })).toBe(false);
		}
		expect(accepts(PipelineStageFrame, { ...stage, data: { ...stage.data, status: "created" } })).toBe(false);
		expect(
			accepts(PipelineStageFrame, { ...stage, data: { ...stage.data, timestamp: "9".repeat(65) } }),
		).toBe(false);
		expect(accepts(ProgressFrame, { ...progress, progress: 101 })).toBe(false);
		expect(accepts(ProgressFrame, { ...progress, progress: -1 })).toBe(false);
		expect(accepts(ProgressFrame, { ...progress, progress: 100 })).toBe(true);
		expect(accepts(ProgressFrame, { ...progress, elapsed_ms: -1 })).toBe(false);
		expect(accepts(ProgressFrame, { ...progress, elapsed_ms: 1.5 })).toBe(false);
	});

	it("refuse a frame of one kind labelled as another", () => {
		expect(accepts(PipelineStageFrame, { ...stage, event: "stage" })).toBe(false);
		expect(accepts(ProgressFrame, { ...progress, type: "response_chunk" })).toBe(false);
		expect(accepts(ResponseChunkFrame, { ...chunk, type: "progress" })).toBe(false);
		expect(accepts(SnapshotFrame, { ...snapshot, type: "progress" })).toBe(false);
		expect(accepts(PongFrame, { type: "ping" })).toBe(false);
		expect(accepts(ErrorFrame, { type: "pong", code: "x", message: "y" })).toBe(false);
	});

	it("a snapshot's mandate carries its lifecycle, stages, progress, answer and result", () => {
		const done = {
			...mandate,
			state: "completed",
			progress: 100,
			result: { summary: null, delivered_to: [], completed_at: null },
		};
		expect(MandateState.safeParse(done).data).toEqual(done);
		for (const state of ["reporting", "dispatching", "running", "completed", "failed", "timed_out"]) {
			expect(accepts(MandateState, { ...mandate, state })).toBe(true);
		}
		expect(accepts(MandateState, { ...mandate, state: "queued" })).toBe(false);
		expect(accepts(MandateState, { ...mandate, progress: 101 })).toBe(false);
		expect(accepts(MandateState, { ...mandate, progress: -1 })).toBe(false);
		expect(accepts(MandateState, { ...mandate, stages: [{ ...mandate.stages[0], stage: 11 }] })).toBe(false);
		expect(accepts(MandateState, { ...mandate, result: { summary: null } })).toBe(false);
		expect(accepts(MandateState, { ...mandate, updated_at: undefined })).toBe(false);
	});

	it("only stage, progress and chunk frames are logged (and replayed); the server sends all six kinds", () => {
		for (const frame of [stage, progress, chunk]) {
			expect(accepts(LoggedFrame, frame)).toBe(true);
			expect(accepts(ServerFrame, frame)).toBe(true);
		}
		for (const frame of [snapshot, { type: "pong" }, { type: "error", code: "x", message: "y" }]) {
			expect(accepts(LoggedFrame, frame)).toBe(false);
			expect(accepts(ServerFrame, frame)).toBe(true);
		}
		expect(accepts(ServerFrame, { type: "hello" })).toBe(false);
	});
});

describe("frames a phone may send", () => {
	it("are ping, and ack with the seq it has shown", () => {
		expect(ClientFrame.safeParse({ type: "ping" }).data).toEqual({ type: "ping" });
		expect(ClientFrame.safeParse({ type: "ack", seq: 7 }).data).toEqual({ type: "ack", seq: 7 });
		expect(accepts(ClientFrame, { type: "ack", seq: 0 })).toBe(true);
		expect(accepts(AckFrame, { type: "ack", seq: Number.MAX_SAFE_INTEGER })).toBe(true);
	});

	it("anything else is refused, and an ack is strict", () => {
		for (const frame of [
			{ type: "pong" },
			{ type: "ack" },
			{ type: "ack", seq: -1 },
			{ type: "ack", seq: 1.5 },
			{ type: "ack", seq: 2 ** 53 },
			{ type: "ack", seq: 1, extra: true },
			{ seq: 1 },
		]) {
			expect(accepts(ClientFrame, frame)).toBe(false);
		}
		expect(accepts(AckFrame, { type: "ping", seq: 1 })).toBe(false);
	});
});
