import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { verifyWebhook, WEBHOOK_TOLERANCE_SECONDS } from "../../src/auth/webhook-signature.ts";

/**
 * Standard Webhooks verification (SECURITY.md): `v1,<base64 HMAC-SHA256>` over `id.timestamp.body`
 * with the base64 secret (`whsec_` prefix optional), several secrets during a rotation, 5 minutes of
 * tolerance. Signatures are made here with WebCrypto, so any header, label or timestamp can be tried.
 */

const KEY_A = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const KEY_B = "QWxhZGRpbjpvcGVuIHNlc2FtZWFsYWRkaW4hIQ==";
const SECRET_A = `whsec_${KEY_A}`;
const SECRET_B = `whsec_${KEY_B}`;
const NOW = 1_790_000_000;
const BODY = JSON.stringify({ execution_id: "exec_1", status: "COMPLETED" });

function bytes(base64: string): Uint8Array<ArrayBuffer> {
	return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

/** The base64 HMAC a sender with this key computes for `id.timestamp.body`. */
async function hmac(key: string, id: string, timestamp: string, body = BODY): Promise<string> {
	const imported = await crypto.subtle.importKey(
		"raw",
		bytes(key),
		{ name: "HMAC", hash: "SHA-256" },
		false,
		["sign"],
	);
	const mac = await crypto.subtle.sign(
		"HMAC",
		imported,
		new TextEncoder().encode(`${id}.${timestamp}.${body}`),
	);
	return btoa(String.fromCharCode(...new Uint8Array(mac)));
}

async function signed(options: { key?: string; id?: string; timestamp?: string; label?: string } = {}) {
	const { key = KEY_A, id = "msg_1", timestamp = String(NOW), label = "v1" } = options;
	return { id, timestamp, signature: `${label},${await hmac(key, id, timestamp)}` };
}

const OK = { ok: true, webhookId: "msg_1" };
const MISSING = { ok: false, reason: "missing_headers" };
const STALE = { ok: false, reason: "stale_timestamp" };
const BAD = { ok: false, reason: "bad_signature" };

describe("a correctly signed webhook", () => {
	it("is accepted, and its id is handed back", async () => {
		expect(await verifyWebhook(await signed(), BODY, SECRET_A, NOW)).toEqual(OK);
	});

	it("is accepted when signed by the standardwebhooks package (an independent implementation)", async () => {
		const at = new Date(NOW * 1000);
		const signature = new Webhook(SECRET_A).sign("msg_1", at, BODY);
		expect(
			await verifyWebhook({ id: "msg_1", timestamp: String(NOW), signature }, BODY, SECRET_A, NOW),
		).toEqual(OK);
	});

	it("is verified against the current time when no clock is given", async () => {
		const now = String(Math.floor(Date.now() / 1000));
		expect(await verifyWebhook(await signed({ timestamp: now }), BODY, SECRET_A)).toEqual(OK);
	});
});

describe("the secret", () => {
	it("may be given without its whsec_ prefix", async () => {
		expect(await verifyWebhook(await signed(), BODY, KEY_A, NOW)).toEqual(OK);
		expect(await verifyWebhook(await signed({ key: KEY_B }), BODY, KEY_B, NOW)).toEqual(OK);
	});

	it("may be several, space- or comma-separated, during a rotation: any one of them verifies", async () => {
		for (const secrets of [
			`${SECRET_B} ${SECRET_A}`,
			`${SECRET_B},${SECRET_A}`,
			`${SECRET_B}, ${SECRET_A}`,
			`  ${SECRET_B}\n${KEY_A} `,
		]) {
			expect(await verifyWebhook(await signed(), BODY, secrets, NOW)).toEqual(OK);
			expect(await verifyWebhook(await signed({ key: KEY_B }), BODY, secrets, NOW)).toEqual(OK);
		}
	});

	it("that did not sign is refused, whatever else the list holds", async () => {
		expect(await verifyWebhook(await signed({ key: KEY_B }), BODY, SECRET_A, NOW)).toEqual(BAD);
	});
});

describe("the signature header", () => {
	it("may hold several signatures (the sender rotating): one valid one is enough", async () => {
		const good = await signed();
		const other = await hmac(KEY_B, "msg_1", String(NOW));
		const both = { ...good, signature: `v1,${other} ${good.signature}` };
		expect(await verifyWebhook(both, BODY, SECRET_A, NOW)).toEqual(OK);
	});

	it("counts only the v1 label: a valid HMAC under any other label is refused", async () => {
		for (const label of ["v2", "V1", "v1a", ""]) {
			expect(await verifyWebhook(await signed({ label }), BODY, SECRET_A, NOW)).toEqual(BAD);
		}
	});

	it("refuses a signature with more than one comma, even if its middle is the right HMAC", async () => {
		const good = await signed();
		expect(await verifyWebhook({ ...good, signature: `${good.signature},x` }, BODY, SECRET_A, NOW)).toEqual(
			BAD,
		);
	});

	it("refuses signatures that are not base64, or not an HMAC-SHA256", async () => {
		const good = await signed();
		for (const signature of ["v1,not-base64!!", "v1,abc", "v1,", `v1,${btoa("x".repeat(31))}`]) {
			expect(await verifyWebhook({ ...good, signature }, BODY, SECRET_A, NOW)).toEqual(BAD);
		}
	});

	it("refuses a changed body, id or timestamp", async () => {
		const good = await signed();
		expect(await verifyWebhook(good, `${BODY} `, SECRET_A, NOW)).toEqual(BAD);
		expect(await verifyWebhook({ ...good, id: "msg_2" }, BODY, SECRET_A, NOW)).toEqual(BAD);
		expect(await verifyWebhook({ ...good, timestamp: String(NOW + 1) }, BODY, SECRET_A, NOW)).toEqual(BAD);
	});
});

describe("the timestamp", () => {
	it("has a 5-minute tolerance", () => {
		expect(WEBHOOK_TOLERANCE_SECONDS).toBe(300);
	});

	it("is accepted up to 300 s away, in either direction, and refused from 301 s", async () => {
		for (const offset of [-300, -299, -1, 0, 1, 299, 300]) {
			const timestamp = String(NOW + offset);
			expect(await verifyWebhook(await signed({ timestamp }), BODY, SECRET_A, NOW)).toEqual(OK);
		}
		for (const offset of [-301, 301, -86_400]) {
			const timestamp = String(NOW + offset);
			expect(await verifyWebhook(await signed({ timestamp }), BODY, SECRET_A, NOW)).toEqual(STALE);
		}
	});

	it("must be 1 to 12 digits and nothing else, even when the signature covers it", async () => {
		for (const timestamp of [`${NOW}x`, `x${NOW}`, ` ${NOW}`, `${NOW}.0`, "-1", "1".repeat(13)]) {
			expect(await verifyWebhook(await signed({ timestamp }), BODY, SECRET_A, 1)).toEqual(MISSING);
		}
	});
});

describe("missing or oversized headers", () => {
	it("are refused before any signature is checked", async () => {
		const good = await signed();
		for (const headers of [
			{ ...good, id: null },
			{ ...good, id: "" },
			{ ...good, timestamp: null },
			{ ...good, timestamp: "" },
			{ ...good, signature: null },
			{ ...good, signature: "" },
		]) {
			expect(await verifyWebhook(headers, BODY, SECRET_A, NOW)).toEqual(MISSING);
		}
	});

	it("an id up to 256 characters is read; a longer one is refused", async () => {
		const id256 = "i".repeat(256);
		expect(await verifyWebhook(await signed({ id: id256 }), BODY, SECRET_A, NOW)).toEqual({
			ok: true,
			webhookId: id256,
		});
		expect(await verifyWebhook(await signed({ id: "i".repeat(257) }), BODY, SECRET_A, NOW)).toEqual(MISSING);
	});

	it("a signature header up to 4096 characters is read; a longer one is refused", async () => {
		const good = await signed();
		const padded = (length: number) => {
			const filler = `v1,${"A".repeat(length - good.signature.length - 4)}`;
			const signature = `${filler} ${good.signature}`;
			expect(signature).toHaveLength(length);
			return { ...good, signature };
		};
		expect(await verifyWebhook(padded(4096), BODY, SECRET_A, NOW)).toEqual(OK);
		expect(await verifyWebhook(padded(4097), BODY, SECRET_A, NOW)).toEqual(MISSING);
	});
});
