import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MetaStore } from "../src/durable/meta.ts";
import { EventLog, RETAINED_EVENTS } from "../src/session/event-log.ts";
import {
	connectPhone,
	connectResponse,
	deliverWebhook,
	execute,
	mandateBody,
	mobileToken,
	phonesClosedAfterEach,
	reportStage,
	sessionStub,
	simComplete,
	uniqueId,
} from "./helpers.ts";

// DESIGN.md, "Mobile wire format": replay when you can, snapshot when you must; on every
// connection each frame's seq is larger than the one before.
describe("resume with ?since", () => {
	const phones = phonesClosedAfterEach();

	it("replays exactly what a phone missed while away, then continues live, with nothing twice", async () => {
		const sessionId = uniqueId("sess");
		const body = mandateBody(sessionId);
		const first = await connectPhone(sessionId);
		phones.push(first);
		await reportStage(sessionId, body.mandate_id, 1, "completed");
		await first.waitForStage(body.mandate_id, 1, "completed");
		const lastSeen = Math.max(...first.seqs());
		first.close();

		// While the phone is away, the mandate is dispatched.
		const { json } = await execute(body);
		const resumed = await connectPhone(sessionId, { since: lastSeen });
		phones.push(resumed);
		await resumed.waitForStage(body.mandate_id, 9, "active");
		expect(resumed.frames.some((f) => f.type === "snapshot")).toBe(false);
		expect(resumed.seqs()[0]).toBe(lastSeen + 1);

		await deliverWebhook(await simComplete(json.execution_id));
		await resumed.waitForStage(body.mandate_id, 10, "completed");
		const seqs = resumed.seqs();
		expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => lastSeen + 1 + i));
		// Together, the two connections saw every stage exactly once.
		const all = [...first.stages(body.mandate_id), ...resumed.stages(body.mandate_id)].map(
			(s) => `${s.stage}:${s.status}`,
		);
		expect(new Set(all).size).toBe(all.length);
		expect(all.filter((s) => s.endsWith(":completed"))).toHaveLength(10);
	});

	it("sends nothing old when the phone is already up to date", async () => {
		const sessionId = uniqueId("sess");
		const mandateId = uniqueId("mio");
		await reportStage(sessionId, mandateId, 1, "active");
		const phone = await connectPhone(sessionId, { since: 1 });
		phones.push(phone);
		await phone.settle();
		expect(phone.frames).toEqual([]);
		await reportStage(sessionId, mandateId, 1, "completed");
		const live = await phone.waitForStage(mandateId, 1, "completed");
		expect(live.seq).toBe(2);
	});

	it("sends a snapshot when since is ahead of the log (a phone from another session's numbering)", async () => {
		const sessionId = uniqueId("sess");
		const mandateId = uniqueId("mio");
		await reportStage(sessionId, mandateId, 2, "active");
		const phone = await connectPhone(sessionId, { since: 999 });
		phones.push(phone);
		await phone.waitFor((f) => f.type === "snapshot", "snapshot");
		expect(phone.snapshot()).toMatchObject({ seq: 2, mandates: [{ mandate_id: mandateId }] });
	});

	it("sends a snapshot when the log has been pruned past since, and keeps the log bounded", async () => {
		const sessionId = uniqueId("sess");
		const mandateId = uniqueId("mio");
		await reportStage(sessionId, mandateId, 1, "active");
		const retained = await runInDurableObject(sessionStub(sessionId), (_instance, state) => {
			const log = new EventLog(state.storage.sql, new MetaStore(state.storage.sql, "ml_meta"));
			for (let i = 0; i < RETAINED_EVENTS + 500; i++) {
				log.append({ type: "response_chunk", execution_id: "exec_x", mandate_id: mandateId, chunk: `${i}` });
			}
			return state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM ml_events").one().n;
		});
		expect(retained).toBeLessThanOrEqual(RETAINED_EVENTS + 200);
		// The object keeps its newest seq in memory; a fresh instance reads what was appended beside it.
		await evictDurableObject(sessionStub(sessionId));

		const phone = await connectPhone(sessionId, { since: 1 });
		phones.push(phone);
		await phone.waitFor((f) => f.type === "snapshot", "snapshot");
		expect(phone.snapshot().seq).toBe(RETAINED_EVENTS + 501);
		expect(phone.frames).toHaveLength(1);
	});

	it("refuses a malformed since with 400", async () => {
		const sessionId = uniqueId("sess");
		const token = await mobileToken(sessionId);
		for (const since of ["-1", "abc", "1.5", "1e400"]) {
			const response = await connectResponse(sessionId, `?since=${since}`, {
				Authorization: `Bearer ${token}`,
			});
			expect(response.status).toBe(400);
		}
	});
});
