import type { PushEnv, PushProvider, PushResult, WebPushTarget } from "./provider.ts";
import {
	base64url,
	concatBytes,
	fittedKey,
	fromBase64url,
	type HttpAnswer,
	signJwt,
	timedCall,
	transientFailure,
	unanswered,
	utf8Bytes,
} from "./wire.ts";

/**
 * Web Push (RFC 8030) to a browser's subscription: the payload encrypted with `aes128gcm` (RFC 8291:
 * an ephemeral ECDH P-256 key against the subscription's `p256dh`, HKDF with its `auth` secret, one
 * AES-128-GCM record), the sender identified with VAPID (RFC 8292: an ES256 JWT with `aud` = the
 * endpoint's origin, `sub` = VAPID_SUBJECT, and `k` = VAPID_PUBLIC_KEY). The service worker receives
 * `{title?, body?, data?}` as JSON.
 *
 * VAPID_PUBLIC_KEY is the uncompressed P-256 point (65 bytes) and VAPID_PRIVATE_KEY the private
 * scalar (32 bytes), both base64url — the format `web-push generate-vapid-keys` prints and the page
 * passes to `pushManager.subscribe({applicationServerKey})`.
 */

/** What a push service must accept (RFC 8291 §4): 4096 bytes of body = 86 of header + record. */
const MAX_BODY_BYTES = 4096;
const RECORD_SIZE = 4096;
const HEADER_BYTES = 86;
const TAG_BYTES = 16;
export const WEBPUSH_MAX_PLAINTEXT = MAX_BODY_BYTES - HEADER_BYTES - TAG_BYTES - 1;
/** VAPID tokens live 12 h (RFC 8292 allows 24) and are reused for an hour per push service. */
const VAPID_LIFETIME_S = 12 * 3600;
const VAPID_REUSE_MS = 3600_000;

export interface VapidKeys {
	publicKey: string;
	jwk: JsonWebKey;
}

export interface WebPushConfig {
	vapid: VapidKeys;
	subject: string;
	timeoutMs: number;
}

/** The VAPID key pair, or null when either half is missing or malformed. */
export function parseVapidKeys(
	env: Pick<PushEnv, "VAPID_PUBLIC_KEY" | "VAPID_PRIVATE_KEY">,
): VapidKeys | null {
	const pub = env.VAPID_PUBLIC_KEY ? fromBase64url(env.VAPID_PUBLIC_KEY) : null;
	const priv = env.VAPID_PRIVATE_KEY ? fromBase64url(env.VAPID_PRIVATE_KEY) : null;
	if (!pub || !priv || pub.length !== 65 || pub[0] !== 4 || priv.length !== 32) return null;
	return {
		publicKey: base64url(pub),
		jwk: {
			kty: "EC",
			crv: "P-256",
			x: base64url(pub.subarray(1, 33)),
			y: base64url(pub.subarray(33, 65)),
			d: base64url(priv),
		},
	};
}

async function hkdf(salt: Uint8Array, ikm: Uint8Array | ArrayBuffer, info: Uint8Array, bytes: number) {
	const key = await crypto.subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
	return new Uint8Array(
		await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, bytes * 8),
	);
}

/** RFC 8291 `aes128gcm`: one record, the sender's ephemeral public key as the key id. */
export async function encryptPayload(
	plaintext: Uint8Array,
	p256dh: string,
	auth: string,
): Promise<Uint8Array | { invalid: string }> {
	const uaPublic = fromBase64url(p256dh);
	const authSecret = fromBase64url(auth);
	if (uaPublic?.length !== 65 || uaPublic[0] !== 4) return { invalid: "p256dh is not a P-256 point" };
	if (authSecret?.length !== 16) return { invalid: "auth is not 16 bytes" };
	if (plaintext.length > WEBPUSH_MAX_PLAINTEXT)
		return { invalid: `payload over ${WEBPUSH_MAX_PLAINTEXT} bytes` };
	let uaKey: CryptoKey;
	try {
		uaKey = await crypto.subtle.importKey("raw", uaPublic, { name: "ECDH", namedCurve: "P-256" }, false, []);
	} catch {
		return { invalid: "p256dh is not on the curve" };
	}
	const sender = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, [
		"deriveBits",
	])) as CryptoKeyPair;
	const asPublic = new Uint8Array((await crypto.subtle.exportKey("raw", sender.publicKey)) as ArrayBuffer);
	// workers-types spell the standard `public` member `$public`; workerd reads `public`.
	const ecdh = { name: "ECDH", public: uaKey } as unknown as SubtleCryptoDeriveKeyAlgorithm;
	const shared = await crypto.subtle.deriveBits(ecdh, sender.privateKey, 256);
	const ikm = await hkdf(
		authSecret,
		shared,
		concatBytes(utf8Bytes("WebPush: info\0"), uaPublic, asPublic),
		32,
	);
	const salt = crypto.getRandomValues(new Uint8Array(16));
	const cek = await hkdf(salt, ikm, utf8Bytes("Content-Encoding: aes128gcm\0"), 16);
	const nonce = await hkdf(salt, ikm, utf8Bytes("Content-Encoding: nonce\0"), 12);
	const aesKey = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["encrypt"]);
	const record = new Uint8Array(
		await crypto.subtle.encrypt(
			{ name: "AES-GCM", iv: nonce },
			aesKey,
			concatBytes(plaintext, new Uint8Array([2])),
		),
	);
	const header = new Uint8Array(HEADER_BYTES);
	header.set(salt, 0);
	new DataView(header.buffer).setUint32(16, RECORD_SIZE);
	header[20] = 65;
	header.set(asPublic, 21);
	return concatBytes(header, record);
}

export function webPushProvider(config: WebPushConfig): PushProvider<WebPushTarget> {
	const tokens = new Map<string, { header: string; until: number }>();
	let signingKey: Promise<CryptoKey> | null = null;
	const vapidHeader = async (audience: string, now = Date.now()) => {
		const hit = tokens.get(audience);
		if (hit && hit.until > now) return hit.header;
		signingKey ??= crypto.subtle.importKey(
			"jwk",
			config.vapid.jwk,
			{ name: "ECDSA", namedCurve: "P-256" },
			false,
			["sign"],
		);
		const jwt = await signJwt(
			{ typ: "JWT", alg: "ES256" },
			{ aud: audience, exp: Math.floor(now / 1000) + VAPID_LIFETIME_S, sub: config.subject },
			await signingKey,
		);
		const header = `vapid t=${jwt}, k=${config.vapid.publicKey}`;
		tokens.set(audience, { header, until: now + VAPID_REUSE_MS });
		return header;
	};
	return {
		async send(target, message) {
			let audience: string;
			try {
				audience = new URL(target.endpoint).origin;
			} catch {
				return { outcome: "rejected", reason: "invalid_subscription: endpoint is not a URL" };
			}
			const payload = {
				...(message.title !== undefined && { title: message.title }),
				...(message.body !== undefined && { body: message.body }),
				...(message.data && { data: message.data }),
			};
			const body = await encryptPayload(utf8Bytes(JSON.stringify(payload)), target.p256dh, target.auth);
			if ("invalid" in body) return { outcome: "rejected", reason: `invalid_subscription: ${body.invalid}` };
			let authorization: string;
			try {
				authorization = await vapidHeader(audience);
			} catch (error) {
				return { outcome: "rejected", reason: `vapid: ${String(error)}` };
			}
			const headers: Record<string, string> = {
				authorization,
				ttl: String(message.ttlSeconds),
				urgency: message.priority === "high" ? "high" : "normal",
				"content-encoding": "aes128gcm",
				"content-type": "application/octet-stream",
			};
			if (message.collapseKey !== undefined) {
				headers.topic = await fittedKey(message.collapseKey, 32, /^[A-Za-z0-9_-]+$/);
			}
			const call = await timedCall(target.endpoint, { method: "POST", headers, body }, config.timeoutMs);
			if (!call.ok) return unanswered(call.reason);
			return classifyWebPush(call.answer);
		},
	};
}

/** 2xx → sent (Location); 404/410 → unregistered (the subscription is gone); 429/5xx → retry; other 4xx → rejected. */
export function classifyWebPush(answer: HttpAnswer): PushResult {
	if (answer.status >= 200 && answer.status < 300) {
		const location = answer.headers.get("location");
		return location ? { outcome: "sent", providerId: location } : { outcome: "sent" };
	}
	const reason = `HTTP ${answer.status}${answer.text ? `: ${answer.text.slice(0, 200)}` : ""}`;
	if (answer.status === 404 || answer.status === 410)
		return { outcome: "unregistered", reason, status: answer.status };
	return transientFailure(answer, reason) ?? { outcome: "rejected", reason, status: answer.status };
}
