import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { STREAMING_POLL_FACTOR } from "../src/pipeline/backoff.ts";
import { executionFailedMessage } from "../src/pipeline/messages.ts";
import {
	deliverWebhook,
	phonesClosedAfterEach,
	progressOf,
	runAlarmUntilPolled,
	runningMandate,
	sessionStub,
	simComplete,
} from "./helpers.ts";
import { TEST_TIMING } from "./secrets.ts";

const POLL_INTERVAL_MS = Number(TEST_TIMING.POLL_INTERVAL_MS);

// The Session DO's side of issue 3: what it does with the agent updates the Gateway DO hands it.
describe("agent updates from the gateway", () => {
	const phones = phonesClosedAfterEach();

	const running = () => runningMandate(phones);

	const nextPoll = (sessionId: string, mandateId: string) =>
		runInDurableObject(
			sessionStub(sessionId),
			(_i, state) =>
				state.storage.sql
					.exec<{ next_poll_at: number }>(
						"SELECT next_poll_at FROM ml_mandates WHERE mandate_id = ?",
						mandateId,
					)
					.one().next_poll_at,
		);

	it("shows sub-statuses, a rising progress and the answer typing out; lifecycle end completes stage 9", async () => {
		const { sessionId, phone, body, executionId, stub } = await running();
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "status", status: "Agent started", progress: 10 },
			{ kind: "status", status: "Using read tool...", progress: 20 },
		]);
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "status", status: "Generating response...", progress: 90 },
			{ kind: "chunk", text: "The answer " },
			{ kind: "chunk", text: "is " },
		]);
		await stub.applyAgentUpdates(sessionId, executionId, [{ kind: "chunk", text: "42" }, { kind: "end" }]);
		await phone.waitForStage(body.mandate_id, 9, "completed");

		const progress = phone.frames.filter((f) => f.type === "progress");
		expect(progress.map((f) => f.status)).toEqual([
			"Mandate queued",
			"Agent started",
			"Using read tool...",
			"Generating response...",
			"Execution complete",
		]);
		const percents = progress.map((f) => f.progress as number);
		expect(percents).toEqual([5, 10, 20, 90, 100]);
		const chunks = phone.frames.filter((f) => f.type === "response_chunk");
		// Consecutive chunks of one batch travel as one frame.
		expect(chunks.map((f) => f.chunk)).toEqual(["The answer is ", "42"]);
		expect(chunks.every((f) => f.execution_id === executionId && f.mandate_id === body.mandate_id)).toBe(
			true,
		);
		// Stage 10 still waits for ObeGee.
		expect(phone.stages(body.mandate_id).some((s) => s.stage === 10)).toBe(false);

		await deliverWebhook(await simComplete(executionId, { status: "COMPLETED", summary: "Answered" }));
		await phone.waitForStage(body.mandate_id, 10, "completed");
		// A chat delta that arrives after the outcome still completes the answer.
		await stub.applyAgentUpdates(sessionId, executionId, [{ kind: "chunk", text: "!" }]);
		const [mandate] = (await progressOf(sessionId)).mandates;
		expect(mandate).toMatchObject({ state: "completed", answer: "The answer is 42!", progress: 100 });
	});

	it("shows a lifecycle error as a sub-status only; ObeGee's FAILED after the agent ended fails stage 10", async () => {
		const { sessionId, phone, body, executionId, stub } = await running();
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "status", status: "Agent started", progress: 10 },
			{ kind: "error", message: "The model timed out; retrying..." },
		]);
		await phone.waitFor(
			(f) => f.type === "progress" && f.status === "The model timed out; retrying...",
			"error sub-status",
		);
		expect(phone.stages(body.mandate_id).find((s) => s.stage === 9)?.status).toBe("active");

		await stub.applyAgentUpdates(sessionId, executionId, [{ kind: "end" }]);
		await phone.waitForStage(body.mandate_id, 9, "completed");
		await deliverWebhook(await simComplete(executionId, { status: "FAILED", error: "Email bounced" }));
		const failed = await phone.waitForStage(body.mandate_id, 10, "failed");
		// Issue 16: ObeGee's own text never reaches the phone; our words for its FAILED do.
		expect((failed.data as { message: string }).message).toBe(executionFailedMessage("FAILED"));
	});

	it("slows ObeGee polling while the stream speaks and returns to the base pace when it drops", async () => {
		const { sessionId, body, executionId, stub } = await running();
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "status", status: "Agent started", progress: 10 },
		]);
		const before = await nextPoll(sessionId, body.mandate_id);
		await runAlarmUntilPolled(sessionId, body.mandate_id);
		const slowed = await nextPoll(sessionId, body.mandate_id);
		expect(slowed - before).toBe(POLL_INTERVAL_MS * STREAMING_POLL_FACTOR);

		await stub.agentStreamLost(sessionId, [executionId]);
		const restored = await nextPoll(sessionId, body.mandate_id);
		expect(restored).toBeLessThanOrEqual(Date.now() + POLL_INTERVAL_MS);
		await runAlarmUntilPolled(sessionId, body.mandate_id);
		const after = await nextPoll(sessionId, body.mandate_id);
		expect(after - restored).toBe(POLL_INTERVAL_MS);
	});

	it("appends a batch delivered twice only once, using the chunks' offsets", async () => {
		const { sessionId, phone, body, executionId, stub } = await running();
		const batch = [{ kind: "chunk" as const, text: "The answer ", offset: 0 }];
		await stub.applyAgentUpdates(sessionId, executionId, batch);
		// A retried call that had in fact gone through, then an overlapping one.
		await stub.applyAgentUpdates(sessionId, executionId, batch);
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "chunk", text: "answer is 42", offset: 4 },
		]);
		await phone.waitFor((f) => f.type === "response_chunk" && f.chunk === "is 42", "the new part only");
		expect(phone.frames.filter((f) => f.type === "response_chunk").map((f) => f.chunk)).toEqual([
			"The answer ",
			"is 42",
		]);
		const mandate = (await progressOf(sessionId)).mandates.find((m) => m.mandate_id === body.mandate_id);
		expect(mandate?.answer).toBe("The answer is 42");
	});

	it("ignores updates for executions it does not own", async () => {
		const { sessionId, phone, stub } = await running();
		await phone.settle();
		const seen = phone.frames.length;
		await stub.applyAgentUpdates(sessionId, "exec_someone_else", [{ kind: "chunk", text: "leak" }]);
		await phone.settle();
		expect(phone.frames.length).toBe(seen);
	});

	it("a batch of answer pieces alone appends to the log and leaves the alarm as armed (issue 17)", async () => {
		const { sessionId, phone, executionId, stub } = await running();
		// The first batch marks the stream as speaking (that moves the heartbeat: the alarm is re-armed).
		await stub.applyAgentUpdates(sessionId, executionId, [{ kind: "chunk", text: "The answer ", offset: 0 }]);
		type Sink = { applyAgentUpdates: (...args: unknown[]) => Promise<void> };
		const statementsOf = (updates: unknown[]) =>
			runInDurableObject(stub, async (instance, state) => {
				const sql = state.storage.sql;
				const exec = sql.exec.bind(sql);
				const seen: string[] = [];
				Object.assign(sql, {
					exec: (query: string, ...bindings: unknown[]) => {
						seen.push(query.trim().split(/\s+/).slice(0, 3).join(" "));
						return exec(query, ...bindings);
					},
				});
				const armed = await state.storage.getAlarm();
				try {
					await (instance as unknown as Sink).applyAgentUpdates(sessionId, executionId, updates);
				} finally {
					Object.assign(sql, { exec });
				}
				return { seen, armed, after: await state.storage.getAlarm() };
			});
		const pieces = await statementsOf([{ kind: "chunk", text: "is ", offset: 11 }]);
		expect(pieces.seen).toEqual(["SELECT * FROM", "INSERT INTO ml_events"]);
		expect(pieces.after).toBe(pieces.armed);
		// A sub-status moves the heartbeat: the schedule is looked at again.
		const status = await statementsOf([{ kind: "status", status: "Using read tool...", progress: 40 }]);
		expect(status.seen.filter((query) => query.startsWith("SELECT MIN(due_at)"))).toHaveLength(2);
		await phone.waitFor((f) => f.type === "progress" && f.status === "Using read tool...", "the sub-status");
		expect(
			phone.frames
				.filter((f) => f.type === "response_chunk")
				.map((f) => f.chunk)
				.join(""),
		).toBe("The answer is ");
	});
});
