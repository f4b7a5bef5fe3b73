import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { verifyWebhook } from "../src/auth/webhook-signature.ts";
import { TEST_SECRETS } from "./secrets.ts";

// Our WebCrypto verifier against signatures made by an independent implementation (the
// `standardwebhooks` package), running here in workerd.
describe("Standard Webhooks verification", () => {
	const secret: string = TEST_SECRETS.WEBHOOK_SECRET;
	const body = JSON.stringify({ execution_id: "exec_1", status: "COMPLETED" });
	const now = new Date();
	const nowSeconds = Math.floor(now.getTime() / 1000);
	const sign = (key = secret, id = "msg_1", at = now) => new Webhook(key).sign(id, at, body);
	const headers = (signature: string, id = "msg_1", timestamp = String(nowSeconds)) => ({
		id,
		timestamp,
		signature,
	});

	it("accepts a signature made by the standardwebhooks package", async () => {
		expect(await verifyWebhook(headers(sign()), body, secret)).toEqual({ ok: true, webhookId: "msg_1" });
	});

	it("accepts any one of several signatures, and any one of several secrets (rotation)", async () => {
		const other = "whsec_QWxhZGRpbjpvcGVuIHNlc2FtZWFsYWRkaW4hIQ==";
		const both = `${sign(other)} ${sign()}`;
		expect((await verifyWebhook(headers(both), body, secret)).ok).toBe(true);
		expect((await verifyWebhook(headers(sign(other)), body, `${secret} ${other}`)).ok).toBe(true);
	});

	it("refuses a tampered body, a wrong id or a wrong secret", async () => {
		expect(await verifyWebhook(headers(sign()), `${body} `, secret)).toEqual({
			ok: false,
			reason: "bad_signature",
		});
		expect(await verifyWebhook(headers(sign(), "msg_2"), body, secret)).toEqual({
			ok: false,
			reason: "bad_signature",
		});
		const wrong = "whsec_QWxhZGRpbjpvcGVuIHNlc2FtZWFsYWRkaW4hIQ==";
		expect(await verifyWebhook(headers(sign(wrong)), body, secret)).toEqual({
			ok: false,
			reason: "bad_signature",
		});
	});

	it("refuses timestamps outside the 5-minute tolerance, either way, and accepts its edge", async () => {
		// The clock is passed in, so the test never depends on how long it took to get here.
		const verifyAt = (offset: number) =>
			verifyWebhook(
				headers(
					sign(secret, "msg_1", new Date((nowSeconds + offset) * 1000)),
					"msg_1",
					String(nowSeconds + offset),
				),
				body,
				secret,
				nowSeconds,
			);
		for (const offset of [-301, 301])
			expect(await verifyAt(offset)).toEqual({ ok: false, reason: "stale_timestamp" });
		for (const offset of [-300, 300])
			expect(await verifyAt(offset)).toEqual({ ok: true, webhookId: "msg_1" });
	});

	it("refuses missing or malformed headers", async () => {
		expect(await verifyWebhook({ id: null, timestamp: "1", signature: "v1,x" }, body, secret)).toMatchObject({
			ok: false,
		});
		expect(await verifyWebhook(headers(sign(), "msg_1", "soon"), body, secret)).toEqual({
			ok: false,
			reason: "missing_headers",
		});
		expect(await verifyWebhook(headers("v1,not-base64!!"), body, secret)).toEqual({
			ok: false,
			reason: "bad_signature",
		});
		expect(await verifyWebhook(headers("v2,abc"), body, secret)).toEqual({
			ok: false,
			reason: "bad_signature",
		});
	});
});
