import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
	auditSettled,
	connectPhone,
	execute,
	mandateBody,
	phonesClosedAfterEach,
	phoneTokenExpiry,
	runAlarm,
	sessionStub,
	simCalls,
	simComplete,
	uniqueId,
} from "./helpers.ts";
import { TEST_TIMING } from "./secrets.ts";

const POLL_INTERVAL_MS = Number(TEST_TIMING.POLL_INTERVAL_MS);

// Seed-spec Test 2: a 30 s+ run keeps stage 9 active and the phone keeps hearing from it.
describe("long execution", () => {
	const phones = phonesClosedAfterEach();

	it("polls on one alarm every POLL_INTERVAL_MS, shows signs of life, and completes from a poll", async () => {
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		const body = mandateBody(sessionId);
		const { json } = await execute(body);
		await phone.waitForStage(body.mandate_id, 9, "active");

		const scheduled = () =>
			runInDurableObject(sessionStub(sessionId), async (_instance, state) => ({
				alarm: await state.storage.getAlarm(),
				nextPoll: state.storage.sql
					.exec<{ next_poll_at: number }>(
						"SELECT next_poll_at FROM ml_mandates WHERE mandate_id = ?",
						body.mandate_id,
					)
					.one().next_poll_at,
			}));
		// The audit copy to D1 runs after execute answered (issue 16); the alarm covers it until then.
		await auditSettled(sessionId);
		const first = await scheduled();
		expect(first.alarm).toBe(first.nextPoll);

		// 50 s of polls while ObeGee says EXECUTING: each alarm run is one poll interval later.
		const polls = Math.ceil(50_000 / POLL_INTERVAL_MS);
		let previous = first.nextPoll;
		for (let i = 0; i < polls; i++) {
			expect(await runAlarm(sessionId)).toBe(true);
			const next = await scheduled();
			expect(next.nextPoll - previous).toBe(POLL_INTERVAL_MS);
			previous = next.nextPoll;
		}
		expect((await simCalls()).status[json.execution_id]).toBe(polls);

		await phone.waitFor((f) => f.type === "progress" && f.status === "Agent started", "agent started");
		await phone.waitFor(
			(f) => f.type === "progress" && String(f.status).startsWith("Still working"),
			"heartbeat",
		);
		const progress = phone.frames.filter((f) => f.type === "progress");
		// At least one sign of life per 10 s of run, and the percentage never went down.
		expect(progress.length).toBeGreaterThanOrEqual(5);
		const percents = progress.map((f) => f.progress as number);
		expect(percents).toEqual([...percents].sort((a, b) => a - b));
		const elapsed = progress.map((f) => f.elapsed_ms as number);
		expect(Math.max(...elapsed)).toBeGreaterThanOrEqual(40_000);
		// Stage 9 stayed active the whole time.
		expect(phone.stages(body.mandate_id).filter((s) => s.stage === 9)).toEqual([
			expect.objectContaining({ status: "active" }),
		]);

		// ObeGee finishes but its webhook never arrives: the next poll completes the mandate.
		await simComplete(json.execution_id, { status: "COMPLETED", summary: "Report sent" });
		await runAlarm(sessionId);
		await phone.waitForStage(body.mandate_id, 10, "completed");
		await phone.waitFor((f) => f.type === "progress" && f.progress === 100, "100 %");
		// Polling ended with the execution: once the audit trail is in D1, the only alarm left is the
		// phone's token expiry (issue 14).
		await auditSettled(sessionId);
		expect((await scheduled()).alarm).toBe(await phoneTokenExpiry(sessionId));
	});
});
