import { describe, expect, it } from "vitest";
import { executionFailedMessage } from "../src/pipeline/messages.ts";
import {
	connectPhone,
	deliverWebhook,
	execute,
	mandateBody,
	phonesClosedAfterEach,
	postJson,
	progressOf,
	runAlarm,
	simCalls,
	simComplete,
	uniqueId,
} from "./helpers.ts";

// Seed-spec Test 4: two mandates of one user run side by side with no cross-contamination.
describe("concurrent mandates", () => {
	const phones = phonesClosedAfterEach();

	it("tracks two mandates of one session independently", async () => {
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		const first = mandateBody(sessionId, { intent: "Send weekly report to team" });
		const second = mandateBody(sessionId, { intent: "Book a table for two" });
		const [a, b] = await Promise.all([execute(first), execute(second)]);
		expect(a.json.execution_id).not.toBe(b.json.execution_id);

		// The first completes by webhook, the second fails by poll.
		await deliverWebhook(
			await simComplete(a.json.execution_id, { status: "COMPLETED", summary: "Report sent" }),
		);
		await simComplete(b.json.execution_id, { status: "FAILED", error: "No table available" });
		await runAlarm(sessionId);

		await phone.waitForStage(first.mandate_id, 10, "completed");
		const failed = await phone.waitForStage(second.mandate_id, 9, "failed");
		// Issue 16: ObeGee's own text never reaches the phone; our words for its FAILED do.
		expect(failed.data).toMatchObject({
			execution_id: b.json.execution_id,
			message: executionFailedMessage("FAILED"),
		});
		expect(phone.stages(first.mandate_id).some((s) => s.status === "failed")).toBe(false);
		expect(phone.stages(second.mandate_id).some((s) => s.stage === 10)).toBe(false);
		for (const frame of phone.frames.filter((f) => f.type === "progress")) {
			const pair = [frame.mandate_id, frame.execution_id];
			expect([
				[first.mandate_id, a.json.execution_id],
				[second.mandate_id, b.json.execution_id],
			]).toContainEqual(pair);
		}

		const { mandates } = await progressOf(sessionId);
		expect(mandates.map((m) => [m.mandate_id, m.state])).toEqual([
			[first.mandate_id, "completed"],
			[second.mandate_id, "failed"],
		]);
	});

	it("dispatches a mandate once even when execute is called twice at the same moment", async () => {
		const sessionId = uniqueId("sess");
		const body = mandateBody(sessionId);
		const before = await simCalls();
		const [a, b] = await Promise.all([execute(body), execute(body)]);
		const c = await execute(body);
		expect(a.response.status).toBe(200);
		expect(new Set([a.json.execution_id, b.json.execution_id, c.json.execution_id]).size).toBe(1);
		expect((await simCalls()).dispatch - before.dispatch).toBe(1);
	});

	it("never shows one session's events to another session's phone", async () => {
		const sessionA = uniqueId("sess");
		const sessionB = uniqueId("sess");
		const phoneA = await connectPhone(sessionA);
		const phoneB = await connectPhone(sessionB);
		phones.push(phoneA, phoneB);
		const body = mandateBody(sessionA);
		const { json } = await execute(body);
		await deliverWebhook(await simComplete(json.execution_id));
		await phoneA.waitForStage(body.mandate_id, 10, "completed");
		await phoneB.settle();
		expect(phoneB.frames).toEqual([{ type: "snapshot", seq: 0, session_id: sessionB, mandates: [] }]);
		expect((await progressOf(sessionB)).mandates).toEqual([]);

		// A mandate id reported to session B does not touch session A's mandate of the same id: since
		// issue 14 the id is A's, and B's report is refused with nothing changed.
		expect(
			(
				await postJson(`/api/sessions/${sessionB}/stages`, {
					mandate_id: body.mandate_id,
					stage: 1,
					status: "active",
				})
			).status,
		).toBe(409);
		expect((await progressOf(sessionB)).mandates).toEqual([]);
		const [inA] = (await progressOf(sessionA)).mandates;
		expect(inA?.state).toBe("completed");
		expect((await simCalls()).status[json.execution_id] ?? 0).toBe(0);
	});
});
