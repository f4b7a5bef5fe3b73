import { describe, expect, it } from "vitest";
import { executionFailedMessage } from "../src/pipeline/messages.ts";
import {
	deliverWebhook,
	execute,
	mandateBody,
	reportStage,
	runAlarm,
	simComplete,
	uniqueId,
} from "./helpers.ts";
import {
	clientsClosedAfterEach,
	closeServerSockets,
	expectEqualsServer,
	expectNoStageWentBack,
	mandateOf,
	stageIs,
	watch,
} from "./sdk-watch.ts";

// issue 5: the SDK against the real Worker in workerd — a connection dropped mid-run, events while
// it is away, then resume: the folded state equals the server's /progress and no stage goes back.

clientsClosedAfterEach();

describe("ProgressClient against the Worker", () => {
	it("starts from the snapshot and folds a whole run, live", async () => {
		const sessionId = uniqueId("sess");
		const body = mandateBody(sessionId);
		await reportStage(sessionId, body.mandate_id, 1, "completed");
		const phone = await watch(sessionId);
		await phone.until((v) => stageIs(v, body.mandate_id, 1, "completed"), "the snapshot");
		expect(phone.client.status).toBe("live");

		const { json } = await execute(body);
		await phone.until((v) => stageIs(v, body.mandate_id, 9, "active"), "stage 9 active");
		await deliverWebhook(
			await simComplete(json.execution_id, { status: "COMPLETED", summary: "Report sent" }),
		);
		const view = await phone.until((v) => stageIs(v, body.mandate_id, 10, "completed"), "stage 10");
		expect(mandateOf(view, body.mandate_id)).toMatchObject({
			phase: "completed",
			progress: 100,
			result: { summary: "Report sent", delivered_to: ["email"] },
		});
		await expectEqualsServer(phone, sessionId);
		expectNoStageWentBack(phone.history);
		expect(phone.network.urls).toHaveLength(1);
		expect(phone.network.urls[0]).not.toContain("since=");
		// Issue 14: the token travels in the subprotocol, never in the (logged) URL.
		expect(phone.network.urls[0]).not.toContain("token");
		expect(phone.network.protocols[0]).toEqual(["myndlens.v1", expect.stringMatching(/^bearer\.ey/)]);
	});

	it("resumes with ?since after the server closes the socket mid-run and events happen while away", async () => {
		const sessionId = uniqueId("sess");
		const body = mandateBody(sessionId);
		const phone = await watch(sessionId);
		await phone.until((v) => v.seq !== null, "the first snapshot");
		for (const stage of [1, 2, 3]) await reportStage(sessionId, body.mandate_id, stage);
		await phone.until((v) => stageIs(v, body.mandate_id, 3, "completed"), "stage 3");
		const seenBeforeDrop = phone.client.session.seq as number;

		// The network goes away and the server closes the socket (a deploy restarts the object).
		phone.network.offline = true;
		await closeServerSockets(sessionId);
		await phone.until(() => phone.client.status === "reconnecting", "the drop to be noticed");

		// Meanwhile the mandate is dispatched and keeps running.
		const { json } = await execute(body);
		await runAlarm(sessionId);
		await runAlarm(sessionId);
		expect(phone.client.session.seq).toBe(seenBeforeDrop);

		phone.network.offline = false;
		await phone.until((v) => stageIs(v, body.mandate_id, 9, "active"), "the missed stages", 5_000);
		const resumedFrom = phone.network.urls.filter((url) => url.includes(`since=${seenBeforeDrop}`));
		expect(resumedFrom.length).toBeGreaterThan(0);
		await expectEqualsServer(phone, sessionId);

		await deliverWebhook(await simComplete(json.execution_id));
		await phone.until((v) => stageIs(v, body.mandate_id, 10, "completed"), "stage 10");
		await expectEqualsServer(phone, sessionId);
		expectNoStageWentBack(phone.history);
	});

	it("resumes after the phone's own network drops, with nothing twice", async () => {
		const sessionId = uniqueId("sess");
		const first = mandateBody(sessionId);
		const second = mandateBody(sessionId, { dimensions: { sim_scenario: "manual" } });
		const phone = await watch(sessionId);
		await phone.until((v) => v.seq !== null, "the first snapshot");
		const { json } = await execute(first);
		await phone.until((v) => stageIs(v, first.mandate_id, 9, "active"), "stage 9 of the first mandate");

		phone.network.offline = true;
		phone.network.drop();
		const { json: secondRun } = await execute(second);
		await deliverWebhook(await simComplete(json.execution_id, { status: "FAILED", error: "Mailbox full" }));
		phone.network.offline = false;

		const view = await phone.until(
			(v) => mandateOf(v, first.mandate_id)?.phase === "failed" && stageIs(v, second.mandate_id, 9, "active"),
			"both mandates after the resume",
		);
		// Issue 16: ObeGee's own text never reaches the phone; the SDK shows our words.
		expect(mandateOf(view, first.mandate_id)?.error).toBe(executionFailedMessage("FAILED"));
		await expectEqualsServer(phone, sessionId);

		// A second drop while the other mandate finishes.
		phone.network.drop();
		await deliverWebhook(await simComplete(secondRun.execution_id));
		await phone.until((v) => stageIs(v, second.mandate_id, 10, "completed"), "the second mandate");
		await expectEqualsServer(phone, sessionId);
		expectNoStageWentBack(phone.history);
		// Seqs folded in only ever grew.
		const seqs = phone.history.map((v) => v.seq ?? 0);
		expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
	});

	it("stops reconnecting once closed", async () => {
		const sessionId = uniqueId("sess");
		const phone = await watch(sessionId);
		await phone.until(() => phone.client.status === "live", "live");
		phone.client.close();
		expect(phone.client.status).toBe("closed");
		await new Promise((resolve) => setTimeout(resolve, 200));
		expect(phone.network.urls).toHaveLength(1);
	});
});
