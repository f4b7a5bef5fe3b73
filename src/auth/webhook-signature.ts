/**
 * Standard Webhooks verification (https://www.standardwebhooks.com): HMAC-SHA256 with the
 * base64 `whsec_` secret over `${webhook-id}.${webhook-timestamp}.${body}`, signatures sent as a
 * space-separated list of `v1,<base64>` (several during secret rotation), timestamps within a
 * 5-minute tolerance. WebCrypto's HMAC verify compares in constant time.
 */

export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;

export interface WebhookHeaders {
	id: string | null;
	timestamp: string | null;
	signature: string | null;
}

export type WebhookVerification =
	| { ok: true; webhookId: string }
	| { ok: false; reason: "missing_headers" | "stale_timestamp" | "bad_signature" };

const keyCache = new Map<string, Promise<CryptoKey[]>>();

/** One or more secrets (space or comma separated), so a rotation can accept old and new at once. */
function importKeys(secrets: string): Promise<CryptoKey[]> {
	let keys = keyCache.get(secrets);
	if (!keys) {
		keys = Promise.all(
			secrets
				.split(/[\s,]+/)
				.filter(Boolean)
				.map((secret) =>
					crypto.subtle.importKey(
						"raw",
						base64ToBytes(secret.startsWith("whsec_") ? secret.slice(6) : secret),
						{ name: "HMAC", hash: "SHA-256" },
						false,
						["verify"],
					),
				),
		);
		keyCache.set(secrets, keys);
	}
	return keys;
}

export async function verifyWebhook(
	headers: WebhookHeaders,
	body: string,
	secrets: string,
	nowSeconds = Math.floor(Date.now() / 1000),
): Promise<WebhookVerification> {
	const { id, timestamp, signature } = headers;
	if (!id || !timestamp || !signature || id.length > 256 || signature.length > 4096) {
		return { ok: false, reason: "missing_headers" };
	}
	if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: "missing_headers" };
	if (Math.abs(nowSeconds - Number(timestamp)) > WEBHOOK_TOLERANCE_SECONDS) {
		return { ok: false, reason: "stale_timestamp" };
	}
	const signed = new TextEncoder().encode(`${id}.${timestamp}.${body}`);
	const candidates = signature
		.split(" ")
		.map((part) => part.split(","))
		.filter((pair): pair is [string, string] => pair.length === 2 && pair[0] === "v1")
		.map(([, value]) => safeBase64ToBytes(value))
		.filter((bytes): bytes is Uint8Array<ArrayBuffer> => bytes !== null && bytes.length === 32);
	const keys = await importKeys(secrets);
	for (const key of keys) {
		for (const candidate of candidates) {
			if (await crypto.subtle.verify("HMAC", key, candidate, signed)) return { ok: true, webhookId: id };
		}
	}
	return { ok: false, reason: "bad_signature" };
}

function base64ToBytes(value: string): Uint8Array<ArrayBuffer> {
	const binary = atob(value);
	const bytes = new Uint8Array(binary.length);
	for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
	return bytes;
}

function safeBase64ToBytes(value: string): Uint8Array<ArrayBuffer> | null {
	try {
		return base64ToBytes(value);
	} catch {
		return null;
	}
}
