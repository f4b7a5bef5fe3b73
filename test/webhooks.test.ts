import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { executionFailedMessage } from "../src/pipeline/messages.ts";
import {
	deliverWebhook,
	phonesClosedAfterEach,
	progressOf,
	runAlarm,
	runningMandate,
	simComplete,
	uniqueId,
} from "./helpers.ts";
import { TEST_SECRETS } from "./secrets.ts";

function signed(body: object, id = uniqueId("msg"), at = new Date()) {
	const text = JSON.stringify(body);
	return {
		id,
		timestamp: String(Math.floor(at.getTime() / 1000)),
		signature: new Webhook(TEST_SECRETS.WEBHOOK_SECRET).sign(id, at, text),
		body: text,
	};
}

describe("delivery webhook", () => {
	const phones = phonesClosedAfterEach();

	const running = () => runningMandate(phones);

	it("a duplicate webhook (same webhook-id) is answered 2xx and changes nothing", async () => {
		const { sessionId, phone, executionId } = await running();
		const webhook = await simComplete(executionId);
		expect(await (await deliverWebhook(webhook)).json()).toEqual({ outcome: "applied" });
		await phone.settle();
		const seen = phone.frames.length;
		const state = await progressOf(sessionId);

		const again = await deliverWebhook(webhook);
		expect(again.status).toBe(200);
		expect(await again.json()).toEqual({ outcome: "duplicate" });
		await phone.settle();
		expect(phone.frames.length).toBe(seen);
		expect(await progressOf(sessionId)).toEqual(state);
		const deliveries = await env.DB.prepare(
			"SELECT COUNT(*) AS n FROM delivery_events WHERE execution_id = ?",
		)
			.bind(executionId)
			.first<{ n: number }>();
		expect(deliveries?.n).toBe(1);
	});

	it("a late webhook after a poll already completed the mandate changes nothing visible", async () => {
		const { sessionId, phone, body, executionId } = await running();
		const webhook = await simComplete(executionId, { status: "COMPLETED", summary: "Done" });
		await runAlarm(sessionId);
		await phone.waitForStage(body.mandate_id, 10, "completed");
		await phone.settle();
		const seen = phone.frames.length;

		const late = await deliverWebhook(webhook);
		expect(late.status).toBe(200);
		expect(await late.json()).toEqual({ outcome: "already_final" });
		await phone.settle();
		expect(phone.frames.length).toBe(seen);
		// …but the audit trail records it.
		const audit = await env.DB.prepare("SELECT event FROM audit_log WHERE execution_id = ? ORDER BY seq")
			.bind(executionId)
			.all<{ event: string }>();
		expect(audit.results.map((r) => r.event)).toContain("outcome_ignored");
	});

	// Issue 16 changes this: ObeGee's reason goes to the audit; the phone reads our own words.
	it("a FAILED webhook fails stage 9 with our own message, ObeGee's reason kept for the audit", async () => {
		const { phone, body, executionId } = await running();
		await deliverWebhook(await simComplete(executionId, { status: "FAILED", error: "Mailbox is full" }));
		const failed = await phone.waitForStage(body.mandate_id, 9, "failed");
		expect((failed.data as { message: string }).message).toBe(executionFailedMessage("FAILED"));
	});

	it("refuses bad, missing and stale signatures with 401 and changes nothing", async () => {
		const { sessionId, phone, executionId } = await running();
		await phone.settle();
		const seen = phone.frames.length;
		const state = await progressOf(sessionId);
		const payload = { execution_id: executionId, status: "COMPLETED" };
		const good = signed(payload);

		const attempts = [
			deliverWebhook({ ...good, signature: signed(payload, "msg_other").signature }),
			deliverWebhook({ ...good, body: JSON.stringify({ ...payload, status: "FAILED" }) }),
			deliverWebhook(good, { "webhook-signature": "" }),
			deliverWebhook(good, { "webhook-id": "" }),
			deliverWebhook(signed(payload, uniqueId("msg"), new Date(Date.now() - 10 * 60_000))),
			deliverWebhook(signed(payload, uniqueId("msg"), new Date(Date.now() + 10 * 60_000))),
		];
		for (const response of await Promise.all(attempts)) {
			expect(response.status).toBe(401);
			expect(((await response.json()) as { error: { code: string } }).error.code).toBe("invalid_signature");
		}
		await phone.settle();
		expect(phone.frames.length).toBe(seen);
		expect(await progressOf(sessionId)).toEqual(state);
	});

	it("answers 404 for an unknown execution and 400 for a signed but malformed body", async () => {
		const unknown = await deliverWebhook(signed({ execution_id: "exec_nope", status: "COMPLETED" }));
		expect(unknown.status).toBe(404);
		const malformed = await deliverWebhook(signed({ execution: 1 }));
		expect(malformed.status).toBe(400);
		const notJson = signed({});
		const badJson = await deliverWebhook({
			...notJson,
			body: "{",
			signature: new Webhook(TEST_SECRETS.WEBHOOK_SECRET).sign(
				notJson.id,
				new Date(Number(notJson.timestamp) * 1000),
				"{",
			),
		});
		expect(badJson.status).toBe(400);
	});
});
