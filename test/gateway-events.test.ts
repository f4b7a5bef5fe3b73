import { describe, expect, it } from "vitest";
import {
	connectPhone,
	execute,
	type Frame,
	mandateBody,
	type Phone,
	phonesClosedAfterEach,
	uniqueId,
} from "./helpers.ts";
import { eventually, gatewaySim, gatewayStub } from "./openclaw-helpers.ts";

/**
 * Agent runs on the simulated gateway reach the right phone through the real Worker, Session DO and
 * Gateway DO (issue 3): sub-statuses, a rising progress, the answer once and whole, stage 9 completed.
 */

const ANSWER = "The weekly report was sent to the team. Revenue is up 4%.";

describe("gateway events to the phone", () => {
	const phones = phonesClosedAfterEach();

	async function runningExecutions(count: number) {
		const sessionId = uniqueId("sess");
		const tenantId = uniqueId("tenant");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		const executions: { mandateId: string; executionId: string }[] = [];
		for (let i = 0; i < count; i++) {
			const body = mandateBody(sessionId, { tenant_id: tenantId });
			const { json } = await execute(body);
			await phone.waitForStage(body.mandate_id, 9, "active");
			executions.push({ mandateId: body.mandate_id, executionId: json.execution_id });
		}
		const stub = gatewayStub(tenantId);
		await eventually(
			() => stub.status(),
			(s) => s.connected && s.watched.length === count,
			"gateway watching every execution",
		);
		return { phone, executions, stub };
	}

	const of = (phone: Phone, executionId: string) =>
		phone.frames.filter((f) => f.execution_id === executionId);
	const answerOf = (frames: Frame[]) =>
		frames.flatMap((f) => (f.type === "response_chunk" ? [f.chunk as string] : [])).join("");
	const progressOf = (frames: Frame[]) =>
		frames.flatMap((f) => (f.type === "progress" ? [`${f.progress} ${f.status}`] : []));

	it("routes two concurrent runs of one tenant to the right executions", async () => {
		const { phone, executions } = await runningExecutions(2);
		const [a, b] = executions as [(typeof executions)[0], (typeof executions)[0]];
		await Promise.all([
			gatewaySim("/__sim/runs", { runId: a.executionId, answer: "Answer A, complete." }),
			gatewaySim("/__sim/runs", { runId: b.executionId, answer: ANSWER, tools: [{ name: "browser" }] }),
		]);
		await phone.waitForStage(a.mandateId, 9, "completed");
		await phone.waitForStage(b.mandateId, 9, "completed");
		await phone.settle();
		expect(answerOf(of(phone, a.executionId))).toBe("Answer A, complete.");
		expect(answerOf(of(phone, b.executionId))).toBe(ANSWER);
		expect(progressOf(of(phone, a.executionId))).toEqual(
			expect.arrayContaining(["10 Agent started", "20 Read from REPORT.md", "90 Generating response..."]),
		);
		expect(progressOf(of(phone, b.executionId))).toEqual(
			expect.arrayContaining(["20 Using browser tool..."]),
		);
		const progress = of(phone, b.executionId).flatMap((f) =>
			f.type === "progress" ? [f.progress as number] : [],
		);
		expect(progress).toEqual([...progress].sort((x, y) => x - y));
		expect(progress.at(-1)).toBe(100);
	});

	it("heals a per-run seq gap, drops duplicates and completes from chat final", async () => {
		const { phone, executions } = await runningExecutions(1);
		const [run] = executions as [(typeof executions)[0]];
		await gatewaySim("/__sim/runs", {
			runId: run.executionId,
			answer: ANSWER,
			seqGap: true,
			duplicate: true,
			frameSeqGap: true,
			terminalReply: false,
		});
		await phone.waitForStage(run.mandateId, 9, "completed");
		await eventually(
			async () => answerOf(of(phone, run.executionId)),
			(text) => text === ANSWER,
			"the whole answer",
		);
		await phone.settle();
		expect(answerOf(of(phone, run.executionId))).toBe(ANSWER);
	});

	it("shows a lifecycle error as a sub-status while the run carries on", async () => {
		const { phone, executions } = await runningExecutions(1);
		const [run] = executions as [(typeof executions)[0]];
		await gatewaySim("/__sim/runs", { runId: run.executionId, lifecycleError: true });
		await phone.waitForStage(run.mandateId, 9, "completed");
		const statuses = of(phone, run.executionId).flatMap((f) => (f.type === "progress" ? [f.status] : []));
		expect(statuses).toContain("The agent hit a problem and may retry...");
		expect(phone.stages(run.mandateId).some((s) => s.status === "failed")).toBe(false);
	});

	it("tells the session when the stream drops mid-run, and reconnects", async () => {
		const { executions, stub } = await runningExecutions(1);
		const [run] = executions as [(typeof executions)[0]];
		await gatewaySim("/__sim/runs", { runId: run.executionId, dropMidRun: true });
		const lost = await eventually(
			() => stub.status(),
			(s) => !s.connected,
			"drop noticed",
		);
		expect(lost.reconnectAt).not.toBeNull();
		expect(lost.watched.map((w) => w.executionId)).toEqual([run.executionId]);
	});

	// Issue 19: what the real gateway sends beyond the happy path. Every run also carries the noise a
	// real gateway sends (task, sessions.changed, chat.metadata.changed) and the real payload fields.
	const statusesOf = (frames: Frame[]) => frames.flatMap((f) => (f.type === "progress" ? [f.status] : []));

	it("shows a failing tool (tool events arrive only because the Worker asks for caps tool-events)", async () => {
		const { phone, executions } = await runningExecutions(1);
		const [run] = executions as [(typeof executions)[0]];
		await gatewaySim("/__sim/runs", { runId: run.executionId, toolError: true });
		await phone.waitForStage(run.mandateId, 9, "completed");
		expect(statusesOf(of(phone, run.executionId))).toContain("The read tool reported an error...");
	});

	it("shows a chat error and leaves the outcome to ObeGee", async () => {
		const { phone, executions, stub } = await runningExecutions(1);
		const [run] = executions as [(typeof executions)[0]];
		await gatewaySim("/__sim/runs", { runId: run.executionId, chatEnd: "error" });
		await eventually(
			async () => statusesOf(of(phone, run.executionId)),
			(statuses) => statuses.includes("The agent reported an error..."),
			"the chat error",
		);
		await eventually(
			() => stub.status(),
			(s) => s.delivery.queued === 0,
			"delivered",
		);
		expect(phone.stages(run.mandateId).some((s) => s.status === "failed")).toBe(false);
	});

	it("shows an aborted run", async () => {
		const { phone, executions } = await runningExecutions(1);
		const [run] = executions as [(typeof executions)[0]];
		await gatewaySim("/__sim/runs", { runId: run.executionId, chatEnd: "aborted" });
		await eventually(
			async () => statusesOf(of(phone, run.executionId)),
			(statuses) => statuses.includes("The agent run was stopped"),
			"the abort",
		);
	});

	it("takes a replace: true delta as the whole text, never appends it", async () => {
		const { phone, executions } = await runningExecutions(1);
		const [run] = executions as [(typeof executions)[0]];
		await gatewaySim("/__sim/runs", { runId: run.executionId, answer: ANSWER, replaceDelta: true });
		await phone.waitForStage(run.mandateId, 9, "completed");
		await phone.settle();
		expect(answerOf(of(phone, run.executionId))).toBe(ANSWER);
	});

	it("replays the recorded real run (openclaw-sample-run.jsonl): the phone sees its progress and answer", async () => {
		const { phone, executions } = await runningExecutions(1);
		const [run] = executions as [(typeof executions)[0]];
		const { events } = await gatewaySim<{ events: number }>("/__sim/replay", { runId: run.executionId });
		expect(events).toBeGreaterThan(30);
		await phone.waitForStage(run.mandateId, 9, "completed");
		await eventually(
			async () => answerOf(of(phone, run.executionId)),
			(text) => text === ANSWER,
			"the recorded answer",
		);
		await phone.settle();
		expect(answerOf(of(phone, run.executionId))).toBe(ANSWER);
		expect(progressOf(of(phone, run.executionId))).toEqual(
			expect.arrayContaining(["10 Agent started", "20 Read from REPORT.md", "90 Generating response..."]),
		);
		expect(progressOf(of(phone, run.executionId)).at(-1)).toBe("100 Execution complete");
	});
});
