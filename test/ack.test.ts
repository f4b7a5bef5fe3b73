import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { ProgressClient } from "../client/progress-client.ts";
import {
	connectPhone,
	deliverWebhook,
	execute,
	mandateBody,
	mobileToken,
	phonesClosedAfterEach,
	runningMandate,
	sessionStub,
	simComplete,
	uniqueId,
} from "./helpers.ts";
import { testNetwork } from "./sdk-socket.ts";

/**
 * Issue 10: a phone whose app is in the foreground acknowledges the outcomes it shows
 * (`{"type":"ack","seq":N}`), so a completion the user already saw is not also pushed.
 */

function ackedSeq(sessionId: string): Promise<number> {
	return runInDurableObject(sessionStub(sessionId), (_instance, state) => {
		const row = state.storage.sql
			.exec<{ value: string }>("SELECT value FROM ml_meta WHERE key = 'acked_seq'")
			.toArray()[0];
		return row ? Number(row.value) : 0;
	});
}

describe("acknowledgements", () => {
	const phones = phonesClosedAfterEach();
	const clients: ProgressClient[] = [];
	afterEach(() => {
		for (const client of clients.splice(0)) client.close();
	});

	it("keeps the highest seq a phone acknowledged, never beyond the log, and never answers it", async () => {
		const { sessionId, phone } = await runningMandate(phones);
		await phone.settle();
		const last = phone.seqs().at(-1) ?? 0;
		phone.socket.send(JSON.stringify({ type: "ack", seq: last - 2 }));
		phone.socket.send(JSON.stringify({ type: "ack", seq: last - 5 }));
		await expect.poll(() => ackedSeq(sessionId)).toBe(last - 2);
		// An ack of outcomes to come is not believed beyond what the log holds.
		phone.socket.send(JSON.stringify({ type: "ack", seq: last + 1_000 }));
		await expect.poll(() => ackedSeq(sessionId)).toBe(last);
		// A malformed ack is refused like any unknown frame; nothing answers a good one.
		phone.socket.send(JSON.stringify({ type: "ack", seq: -1 }));
		await phone.waitFor((f) => f.type === "error", "bad_frame");
		expect(phone.frames.filter((f) => f.type === "pong" || f.type === "error")).toHaveLength(1);
	});

	it("the SDK acknowledges an outcome it shows while visible, and stays quiet while hidden", async () => {
		const watch = async (visible: boolean) => {
			const sessionId = uniqueId("sess");
			const network = testNetwork();
			const client = new ProgressClient({
				baseUrl: "https://progress.test",
				sessionId,
				token: await mobileToken(sessionId),
				WebSocket: network.WebSocket,
				visible: () => visible,
			});
			clients.push(client);
			return { sessionId, client };
		};
		for (const visible of [true, false]) {
			const { sessionId, client } = await watch(visible);
			await expect.poll(() => client.status).toBe("live");
			const body = mandateBody(sessionId);
			const { json } = await execute(body);
			await deliverWebhook(await simComplete(json.execution_id));
			await expect
				.poll(() => client.session.mandates.find((m) => m.mandate_id === body.mandate_id)?.phase)
				.toBe("completed");
			const seq = client.session.seq ?? 0;
			if (visible) await expect.poll(() => ackedSeq(sessionId)).toBe(seq);
			else {
				// A live phone that is not looking: nothing acknowledged beyond the first snapshot.
				const second = await connectPhone(sessionId);
				phones.push(second);
				await second.settle();
				expect(await ackedSeq(sessionId)).toBe(0);
			}
		}
	});
});
