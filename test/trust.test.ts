import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ANSWER_GAP_MARK, ANSWER_TRUNCATED_NOTICE, MAX_ANSWER_CHARS } from "../src/session/emission.ts";
import {
	api,
	connectPhone,
	connectResponse,
	deliverWebhook,
	execute,
	mandateBody,
	mobileToken,
	Phone,
	phonesClosedAfterEach,
	progressOf,
	refusal,
	reportStage,
	runAlarm,
	runAlarmAt,
	runningMandate,
	SERVICE,
	sessionStub,
	simCalls,
	simComplete,
	uniqueId,
} from "./helpers.ts";

/**
 * Issue 14, the Session DO's side: who owns what, a declined mandate never runs, tokens and sockets,
 * a dispatch always reaches an outcome, and the answer is never silently cut or joined. Each test
 * failed on the code before the fix.
 */

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const errorCode = async (response: Response) =>
	((await response.json()) as { error: { code: string } }).error.code;

describe("who owns what", () => {
	const phones = phonesClosedAfterEach();

	it("a mandate id belongs to the first session: another session's execute gets 409 and nothing is sent", async () => {
		const a = await runningMandate(phones);
		const sessionB = uniqueId("sess");
		const phoneB = await connectPhone(sessionB);
		phones.push(phoneB);
		const before = (await simCalls()).dispatch;

		const stolen = await execute(mandateBody(sessionB, { mandate_id: a.body.mandate_id }));
		expect(stolen.response.status).toBe(409);
		expect((stolen.json as unknown as { error: { code: string } }).error.code).toBe("mandate_conflict");
		expect((await simCalls()).dispatch).toBe(before);
		expect((await progressOf(sessionB)).mandates).toEqual([]);
		// Another session's stage report for it is refused the same way.
		const report = await reportStage(sessionB, a.body.mandate_id, 1, "completed");
		expect(report.status).toBe(409);
		expect((await progressOf(sessionB)).mandates).toEqual([]);

		// ObeGee's outcome still reaches the session that owns the execution, and only it.
		expect((await deliverWebhook(await simComplete(a.executionId))).status).toBe(200);
		await a.phone.waitForStage(a.body.mandate_id, 10, "completed");
		await phoneB.settle();
		expect(phoneB.frames.filter((f) => f.type !== "snapshot")).toEqual([]);
	});

	it("a mandate the user declined (stage 5 failed) is never dispatched", async () => {
		const sessionId = uniqueId("sess");
		const body = mandateBody(sessionId);
		for (const stage of [1, 2, 3, 4])
			expect((await reportStage(sessionId, body.mandate_id, stage)).status).toBe(200);
		expect((await reportStage(sessionId, body.mandate_id, 5, "failed")).status).toBe(200);
		const before = (await simCalls()).dispatch;

		const { response, json } = await execute(body);
		expect(response.status).toBe(409);
		expect((json as unknown as { error: { code: string } }).error.code).toBe("mandate_declined");
		expect((await simCalls()).dispatch).toBe(before);
		const [mandate] = (await progressOf(sessionId)).mandates;
		expect(mandate?.state).toBe("failed");
		expect(mandate?.stages.find((s) => s.stage === 5)?.status).toBe("failed");
		expect(mandate?.stages.find((s) => s.stage === 6)?.status).toBe("pending");
	});

	it("once a mandate is being dispatched, reports of its stages 1–5 are refused and change nothing", async () => {
		const sessionId = uniqueId("sess");
		const body = mandateBody(sessionId, { dimensions: { sim_scenario: "manual", sim_dispatch_errors: 1 } });
		// ObeGee is down for the first attempt: the mandate stays stored for dispatch.
		expect((await execute(body)).response.status).toBe(503);
		const dispatching = await progressOf(sessionId);
		expect(dispatching.mandates[0]?.state).toBe("dispatching");
		const late = await reportStage(sessionId, body.mandate_id, 5, "failed");
		expect(late.status).toBe(409);
		expect(await errorCode(late)).toBe("mandate_dispatched");
		expect(await progressOf(sessionId)).toEqual(dispatching);

		// The retry dispatches it; the refused report did not stop it.
		await runAlarmAt(sessionId, Date.now() + 60_000);
		expect((await progressOf(sessionId)).mandates[0]?.state).toBe("running");
		expect((await reportStage(sessionId, body.mandate_id, 5, "failed")).status).toBe(409);
	});

	it("a session is one user's: a token of another user or tenant is refused", async () => {
		const sessionId = uniqueId("sess");
		const owner = await connectPhone(sessionId, { token: await mobileToken(sessionId, { sub: "user_a" }) });
		phones.push(owner);
		await owner.waitFor((f) => f.type === "snapshot", "snapshot");

		const otherUser = await mobileToken(sessionId, { sub: "user_b" });
		expect((await refusal(await connectResponse(sessionId, "", bearer(otherUser)))).code).toBe(4403);
		const read = await fetchProgress(sessionId, otherUser);
		expect(read.status).toBe(403);

		// The first tenant named binds the session too.
		const tenantToken = await mobileToken(sessionId, { sub: "user_a", tenantId: "tenant_one" });
		expect((await fetchProgress(sessionId, tenantToken)).status).toBe(200);
		const otherTenant = await mobileToken(sessionId, { sub: "user_a", tenantId: "tenant_two" });
		expect((await refusal(await connectResponse(sessionId, "", bearer(otherTenant)))).code).toBe(4403);
		// …and no mandate of another tenant runs in it.
		const before = (await simCalls()).dispatch;
		const foreign = await execute(mandateBody(sessionId, { tenant_id: "tenant_two" }));
		expect(foreign.response.status).toBe(409);
		expect((await simCalls()).dispatch).toBe(before);
		expect((await fetchProgress(sessionId, await mobileToken(sessionId, { sub: "user_a" }))).status).toBe(
			200,
		);
	});
});

function fetchProgress(sessionId: string, token: string): Promise<Response> {
	return api(`/api/sessions/${sessionId}/progress`, { headers: bearer(token) });
}

describe("tokens and sockets", () => {
	const phones = phonesClosedAfterEach();

	it("takes the token in the subprotocol and answers only myndlens.v1", async () => {
		const sessionId = uniqueId("sess");
		const token = await mobileToken(sessionId);
		const response = await connectResponse(sessionId, "", {
			"Sec-WebSocket-Protocol": `myndlens.v1, bearer.${token}`,
		});
		expect(response.status).toBe(101);
		expect(response.headers.get("Sec-WebSocket-Protocol")).toBe("myndlens.v1");
		const socket = response.webSocket as WebSocket;
		const phone = new Phone(socket);
		phones.push(phone);
		socket.accept();
		expect((await phone.waitFor((f) => f.type === "snapshot", "snapshot")).session_id).toBe(sessionId);
	});

	it("closes an open socket with 4401 when its token expires, through the alarm", async () => {
		const sessionId = uniqueId("sess");
		const expiresAt = Math.floor(Date.now() / 1000) + 120;
		const shortLived = await connectPhone(sessionId, {
			token: await mobileToken(sessionId, { expiresIn: expiresAt }),
		});
		const longLived = await connectPhone(sessionId);
		phones.push(shortLived, longLived);
		await shortLived.waitFor((f) => f.type === "snapshot", "snapshot");

		await runAlarmAt(sessionId, expiresAt * 1000 + 1);
		await expect.poll(() => shortLived.closed).toEqual({ code: 4401, reason: "token expired" });
		expect(longLived.closed).toBeNull();
	});

	it("measures a phone's frame in bytes: 4,000 × € (12,000 bytes) is too large", async () => {
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		phone.socket.send("€".repeat(4_000));
		await expect.poll(() => phone.closed?.code).toBe(1009);
	});
});

describe("a dispatch always reaches an outcome", () => {
	const phones = phonesClosedAfterEach();

	it("a stored dispatch survives an eviction and the alarm sends it, with the same mandate, once", async () => {
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		const body = mandateBody(sessionId, { dimensions: { sim_scenario: "manual", sim_dispatch_errors: 1 } });
		expect((await execute(body)).response.status).toBe(503);
		await evictDurableObject(sessionStub(sessionId));
		expect(await runAlarmAt(sessionId, Date.now() + 60_000)).toBe(true);
		const [mandate] = (await progressOf(sessionId)).mandates;
		expect(mandate?.state).toBe("running");
		// Asking again answers the execution id the alarm's dispatch got.
		const again = await execute(body);
		expect(again.response.status).toBe(200);
		expect(again.json.execution_id).toBe(mandate?.execution_id);
	});

	it("a definite refusal is not retried", async () => {
		const sessionId = uniqueId("sess");
		const body = mandateBody(sessionId, { tenant_id: "tenant_invalid_7", dimensions: {} });
		const before = (await simCalls()).dispatch;
		expect((await execute(body)).response.status).toBe(422);
		// Nothing is scheduled to send it again (the alarm may still be armed, for retention)...
		const stored = await runInDurableObject(sessionStub(sessionId), (_instance, state) =>
			state.storage.sql
				.exec("SELECT state, next_dispatch_at FROM ml_mandates WHERE mandate_id = ?", body.mandate_id)
				.one(),
		);
		expect(stored).toEqual({ state: "failed", next_dispatch_at: null });
		// ...and whatever the alarm does, it sends nothing.
		await runAlarm(sessionId);
		expect((await simCalls()).dispatch - before).toBe(1);
	});
});

describe("the answer is never silently cut or joined", () => {
	const phones = phonesClosedAfterEach();

	it("marks a hole in the answer and audits it instead of joining over it", async () => {
		const { sessionId, phone, body, executionId, stub } = await runningMandate(phones);
		await stub.applyAgentUpdates(sessionId, executionId, [{ kind: "chunk", text: "Hello, ", offset: 0 }]);
		// "world." starts at 13: the six characters in between never arrived.
		await stub.applyAgentUpdates(sessionId, executionId, [{ kind: "chunk", text: "world.", offset: 13 }]);
		const answer = `Hello, ${ANSWER_GAP_MARK}world.`;
		const [mandate] = (await progressOf(sessionId)).mandates;
		expect(mandate?.answer).toBe(answer);
		await phone.waitFor(
			(f) => f.type === "response_chunk" && f.chunk === `${ANSWER_GAP_MARK}world.`,
			"gap chunk",
		);
		// A re-delivered piece is still appended once.
		await stub.applyAgentUpdates(sessionId, executionId, [{ kind: "chunk", text: "world.", offset: 13 }]);
		expect((await progressOf(sessionId)).mandates[0]?.answer).toBe(answer);
		expect(body.mandate_id).toBe(mandate?.mandate_id);
		const audit = await timeline(executionId);
		expect(audit).toContainEqual(
			expect.objectContaining({ event: "answer_gap", detail: { from: 7, to: 13 } }),
		);
	});

	it("keeps a whole piece after a gap the Gateway DO flags, behind a gap mark", async () => {
		const { sessionId, executionId, stub } = await runningMandate(phones);
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "chunk", text: "Let me check.", offset: 0 },
		]);
		// The offset is only a lower bound after a Gateway DO restart: nothing of the piece may be dropped.
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "chunk", text: "Your report was sent.", offset: 5, gap: true },
		]);
		expect((await progressOf(sessionId)).mandates[0]?.answer).toBe(
			`Let me check.${ANSWER_GAP_MARK}Your report was sent.`,
		);
	});

	it("caps a stored answer and says so", async () => {
		const { sessionId, executionId, stub } = await runningMandate(phones);
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "chunk", text: "a".repeat(MAX_ANSWER_CHARS - 10), offset: 0 },
		]);
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "chunk", text: "b".repeat(50), offset: MAX_ANSWER_CHARS - 10 },
		]);
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "chunk", text: "more", offset: MAX_ANSWER_CHARS + 40 },
		]);
		const answer = (await progressOf(sessionId)).mandates[0]?.answer ?? "";
		expect(answer).toBe(`${"a".repeat(MAX_ANSWER_CHARS - 10)}${"b".repeat(10)}${ANSWER_TRUNCATED_NOTICE}`);
	});
});

async function timeline(executionId: string): Promise<Array<{ event: string; detail: unknown }>> {
	// Each RPC flushes the audit outbox to D1 before it answers.
	const response = await api(`/api/executions/${executionId}`, { headers: SERVICE });
	expect(response.status).toBe(200);
	return ((await response.json()) as { timeline: Array<{ event: string; detail: unknown }> }).timeline;
}
