import { secretValues } from "./secret-values.ts";

/**
 * Tenant gateway tokens encrypted at rest (issue 12, DESIGN.md "Operations"): AES-256-GCM (WebCrypto)
 * under GATEWAY_TOKEN_KEY — base64 32-byte keys, space-separated during a rotation: the first
 * encrypts, any decrypts. A stored token reads `v1:<key id>:<iv>:<ciphertext>` (base64), where the key
 * id is the first 8 hex digits of the key's SHA-256 (it names the key, never reveals it), the IV is
 * 96 random bits per value and the tenant id is the additional data, so a ciphertext copied to another
 * tenant's row does not decrypt. Nothing here logs a token or a key.
 */

export const GATEWAY_TOKEN_KEY = "GATEWAY_TOKEN_KEY";
const FORMAT = "v1";
const SEALED = /^v1:([0-9a-f]{8}):([A-Za-z0-9+/]{16}):([A-Za-z0-9+/]+={0,2})$/;

export interface GatewayKey {
	/** First 8 hex digits of SHA-256 of the raw key. */
	id: string;
	key: CryptoKey;
}

/** The keys of GATEWAY_TOKEN_KEY, the first encrypting; or why there are none (naming no value). */
export type GatewayKeyring =
	| { ok: true; keys: [GatewayKey, ...GatewayKey[]] }
	| { ok: false; problem: string };

const keyrings = new Map<string, Promise<GatewayKeyring>>();

/** GATEWAY_TOKEN_KEY parsed (cached per value): missing, or any value not base64 of 32 bytes, is not ok. */
export function gatewayKeyring(setting: string | undefined | null): Promise<GatewayKeyring> {
	const values = secretValues(setting);
	if (values.length === 0) return Promise.resolve({ ok: false, problem: `${GATEWAY_TOKEN_KEY} is not set` });
	const cacheKey = values.join(" ");
	let keyring = keyrings.get(cacheKey);
	if (!keyring) {
		keyring = importKeyring(values);
		keyrings.set(cacheKey, keyring);
	}
	return keyring;
}

async function importKeyring(values: string[]): Promise<GatewayKeyring> {
	const keys: GatewayKey[] = [];
	for (const [index, value] of values.entries()) {
		const raw = decodeBase64(value);
		if (raw?.length !== 32) {
			return {
				ok: false,
				problem: `${GATEWAY_TOKEN_KEY} value ${index + 1} of ${values.length} is not base64 of 32 bytes`,
			};
		}
		const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
		const id = Array.from(digest.slice(0, 4), (byte) => byte.toString(16).padStart(2, "0")).join("");
		const key = await crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
		keys.push({ id, key });
	}
	const [first, ...rest] = keys;
	if (!first) return { ok: false, problem: `${GATEWAY_TOKEN_KEY} is not set` };
	return { ok: true, keys: [first, ...rest] };
}

/** Encrypts a tenant's gateway token under the first key: `v1:<key id>:<iv>:<ciphertext>`. */
export async function sealGatewayToken(
	keys: readonly [GatewayKey, ...GatewayKey[]],
	tenantId: string,
	token: string,
): Promise<string> {
	const [current] = keys;
	const iv = crypto.getRandomValues(new Uint8Array(12));
	const ciphertext = await crypto.subtle.encrypt(
		{ name: "AES-GCM", iv, additionalData: encode(tenantId) },
		current.key,
		encode(token),
	);
	return `${FORMAT}:${current.id}:${encodeBase64(iv)}:${encodeBase64(new Uint8Array(ciphertext))}`;
}

export type OpenedGatewayToken =
	| { ok: true; token: string; keyId: string; current: boolean }
	| { ok: false; reason: string };

/**
 * Decrypts a stored token for `tenantId`. `current` is false when it was sealed under a key that is
 * no longer the first (re-encrypt it). Fails, naming no secret, when it is malformed, was sealed
 * under a key GATEWAY_TOKEN_KEY no longer lists, or does not decrypt for this tenant.
 */
export async function openGatewayToken(
	keys: readonly [GatewayKey, ...GatewayKey[]],
	tenantId: string,
	sealed: string,
): Promise<OpenedGatewayToken> {
	const match = SEALED.exec(sealed);
	const [, keyId = "", ivText = "", ciphertextText = ""] = match ?? [];
	const iv = match ? decodeBase64(ivText) : null;
	const ciphertext = match ? decodeBase64(ciphertextText) : null;
	if (iv?.length !== 12 || !ciphertext) return { ok: false, reason: "the stored token is malformed" };
	const candidates = keys.filter((key) => key.id === keyId);
	if (candidates.length === 0) {
		return {
			ok: false,
			reason: `the stored token was sealed under key ${keyId}, which ${GATEWAY_TOKEN_KEY} no longer lists`,
		};
	}
	for (const candidate of candidates) {
		try {
			const plain = await crypto.subtle.decrypt(
				{ name: "AES-GCM", iv, additionalData: encode(tenantId) },
				candidate.key,
				ciphertext,
			);
			return { ok: true, token: new TextDecoder().decode(plain), keyId, current: keyId === keys[0].id };
		} catch {
			// Wrong tenant (additional data), a tampered value, or another key with the same id.
		}
	}
	return { ok: false, reason: "the stored token does not decrypt for this tenant" };
}

function encode(text: string): Uint8Array {
	return new TextEncoder().encode(text);
}

function encodeBase64(bytes: Uint8Array): string {
	let binary = "";
	for (const byte of bytes) binary += String.fromCharCode(byte);
	return btoa(binary);
}

/** Standard or URL-safe base64, padded or not; null when it is not base64. */
function decodeBase64(value: string): Uint8Array<ArrayBuffer> | null {
	if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) return null;
	try {
		const binary = atob(value.replaceAll("-", "+").replaceAll("_", "/"));
		const bytes = new Uint8Array(binary.length);
		for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
		return bytes;
	} catch {
		return null;
	}
}
