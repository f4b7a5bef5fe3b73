import type { PushResult } from "./provider.ts";

/**
 * What every push provider shares: one HTTP call with a timeout that never outlives the call, the
 * `Retry-After` header, the generic 429/5xx/network → retry rule, base64url, PEM keys and the two
 * JWT signatures (ES256 for APNs and VAPID, RS256 for Google's OAuth assertion) — WebCrypto only.
 */

/** How long one provider call may take, body included, unless the caller says otherwise. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Provider answers are small; anything longer is cut (it is only ever read for an error reason). */
const MAX_ANSWER_CHARS = 64 * 1024;

export interface HttpAnswer {
	status: number;
	headers: Headers;
	text: string;
}

export type CallResult = { ok: true; answer: HttpAnswer } | { ok: false; reason: string };

/**
 * One HTTP call. The timer is an AbortController's, cleared in `finally` the moment the call settles
 * (answer and body read, refusal or abort), so nothing stays pending to keep a Durable Object from
 * hibernating — never `AbortSignal.timeout`, whose timer lives on after the call. A timeout or a
 * network failure is a value, not an exception.
 */
export async function timedCall(url: string, init: RequestInit, timeoutMs: number): Promise<CallResult> {
	const controller = new AbortController();
	let timedOut = false;
	const timer = setTimeout(() => {
		timedOut = true;
		controller.abort();
	}, timeoutMs);
	try {
		const response = await fetch(url, { ...init, signal: controller.signal });
		const text = (await response.text()).slice(0, MAX_ANSWER_CHARS);
		return { ok: true, answer: { status: response.status, headers: response.headers, text } };
	} catch (error) {
		return { ok: false, reason: timedOut ? `timeout after ${timeoutMs} ms` : `network: ${String(error)}` };
	} finally {
		clearTimeout(timer);
	}
}

/**
 * `Retry-After` as milliseconds from `now`: delay-seconds or an HTTP date (RFC 9110 §10.2.3); a date
 * in the past is 0; anything else (absent, negative, garbage) is null.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
	if (value === null) return null;
	const trimmed = value.trim();
	if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
	if (!/[a-z]/i.test(trimmed)) return null;
	const date = Date.parse(trimmed);
	return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/** The classification every provider shares; null when the status needs the provider's own reading. */
export function transientFailure(answer: HttpAnswer, reason: string): PushResult | null {
	if (answer.status === 429 || answer.status >= 500) {
		return {
			outcome: "retry",
			retryAfterMs: parseRetryAfter(answer.headers.get("retry-after")),
			reason,
			status: answer.status,
		};
	}
	return null;
}

/** A call that never got an answer (timeout, connection refused or reset): always worth a retry. */
export function unanswered(reason: string): PushResult {
	return { outcome: "retry", retryAfterMs: null, reason };
}

/** JSON or null, never an exception. */
export function parseJson(text: string): unknown {
	try {
		return JSON.parse(text);
	} catch {
		return null;
	}
}

export function base64url(bytes: ArrayBuffer | Uint8Array): string {
	const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
	let binary = "";
	for (const byte of view) binary += String.fromCharCode(byte);
	return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** base64url (or base64) → bytes; null for anything that is not. */
export function fromBase64url(text: string): Uint8Array | null {
	if (!/^[A-Za-z0-9_\-+/]*={0,2}$/.test(text)) return null;
	try {
		const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/").replace(/=+$/, ""));
		return Uint8Array.from(binary, (c) => c.charCodeAt(0));
	} catch {
		return null;
	}
}

const utf8 = new TextEncoder();

export function utf8Bytes(text: string): Uint8Array {
	return utf8.encode(text);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
	const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
	let offset = 0;
	for (const part of parts) {
		out.set(part, offset);
		offset += part.length;
	}
	return out;
}

/** The DER bytes of a `-----BEGIN PRIVATE KEY-----` (PKCS #8) PEM, or null. */
export function pkcs8Der(pem: string): Uint8Array | null {
	const match = /-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/.exec(pem);
	if (!match?.[1]) return null;
	return fromBase64url(match[1].replace(/\s+/g, ""));
}

/** Only the shape: whether `pem` looks like a PKCS #8 key at all (config checks are synchronous). */
export function looksLikePkcs8(pem: string): boolean {
	const der = pkcs8Der(pem);
	return der !== null && der.length > 32;
}

const keyCache = new Map<string, Promise<CryptoKey>>();

/** The signing key of a PKCS #8 PEM, imported once per isolate. */
export function importSigningKey(pem: string, alg: "ES256" | "RS256"): Promise<CryptoKey> {
	const cacheKey = `${alg}\n${pem}`;
	let key = keyCache.get(cacheKey);
	if (!key) {
		const der = pkcs8Der(pem);
		if (!der) return Promise.reject(new Error("the key is not a PKCS #8 PEM"));
		const algorithm =
			alg === "ES256"
				? { name: "ECDSA", namedCurve: "P-256" }
				: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
		key = crypto.subtle.importKey("pkcs8", der, algorithm, false, ["sign"]);
		key.catch(() => keyCache.delete(cacheKey));
		keyCache.set(cacheKey, key);
	}
	return key;
}

/** A compact JWS: ES256 signatures are WebCrypto's raw r‖s, exactly what JWS wants. */
export async function signJwt(
	header: Record<string, unknown>,
	claims: Record<string, unknown>,
	key: CryptoKey,
): Promise<string> {
	const input = `${base64url(utf8Bytes(JSON.stringify(header)))}.${base64url(utf8Bytes(JSON.stringify(claims)))}`;
	const algorithm =
		header.alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5" };
	const signature = await crypto.subtle.sign(algorithm, key, utf8Bytes(input));
	return `${input}.${base64url(signature)}`;
}

/**
 * A key that fits a provider's limit (apns-collapse-id ≤ 64 bytes, the Web Push Topic ≤ 32 base64url
 * characters): the key itself when it fits, else base64url(SHA-256(key)) cut to the limit — the same
 * key always gives the same value, so replacing and deduplicating still work.
 */
export async function fittedKey(key: string, maxChars: number, allowed: RegExp): Promise<string> {
	if (utf8Bytes(key).length <= maxChars && allowed.test(key)) return key;
	const digest = await crypto.subtle.digest("SHA-256", utf8Bytes(key));
	return base64url(digest).slice(0, maxChars);
}
