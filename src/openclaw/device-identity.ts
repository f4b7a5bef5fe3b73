/*
 * The Gateway DO's Ed25519 device identity (OPENCLAW-NOTES.md, "Handshake" 3). Generated once per
 * tenant and kept in the DO's SQLite, so the gateway sees the same paired device on every connect;
 * a new key would be a new, unpaired device. WebCrypto only: workerd signs what the gateway verifies.
 */

/** Where the identity is kept: the DO's key/value rows. */
export interface IdentityStore {
	get(key: string): string | null;
	set(key: string, value: string): void;
}

export interface DeviceIdentity {
	/** Hex SHA-256 of the raw 32-byte public key. */
	deviceId: string;
	/** base64url of the raw public key. */
	publicKey: string;
	sign(payload: string): Promise<string>;
}

/** The fields the gateway rebuilds to verify `device.signature` (protocol 4, "v3" payload). */
export interface SignedFields {
	deviceId: string;
	clientId: string;
	clientMode: string;
	role: string;
	scopes: readonly string[];
	signedAt: number;
	token: string;
	nonce: string;
	platform: string;
	deviceFamily: string;
}

const STORE_KEY = "device_private_jwk";
const ED25519 = { name: "Ed25519" } as const;

export function signaturePayload(fields: SignedFields): string {
	return [
		"v3",
		fields.deviceId,
		fields.clientId,
		fields.clientMode,
		fields.role,
		fields.scopes.join(","),
		String(fields.signedAt),
		fields.token,
		fields.nonce,
		fields.platform.toLowerCase(),
		fields.deviceFamily.toLowerCase(),
	].join("|");
}

/** Loads the stored identity, or makes and stores one the first time. */
export async function loadDeviceIdentity(store: IdentityStore): Promise<DeviceIdentity> {
	const stored = store.get(STORE_KEY);
	let jwk: JsonWebKey;
	if (stored) {
		jwk = JSON.parse(stored) as JsonWebKey;
	} else {
		const pair = (await crypto.subtle.generateKey(ED25519, true, ["sign", "verify"])) as CryptoKeyPair;
		jwk = (await crypto.subtle.exportKey("jwk", pair.privateKey)) as JsonWebKey;
		store.set(STORE_KEY, JSON.stringify(jwk));
	}
	if (typeof jwk.x !== "string") throw new Error("stored device key has no public part");
	const publicRaw = fromBase64Url(jwk.x);
	const privateKey = await crypto.subtle.importKey("jwk", jwk, ED25519, false, ["sign"]);
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", publicRaw));
	return {
		deviceId: [...digest].map((byte) => byte.toString(16).padStart(2, "0")).join(""),
		publicKey: toBase64Url(publicRaw),
		async sign(payload) {
			const signature = await crypto.subtle.sign(ED25519, privateKey, new TextEncoder().encode(payload));
			return toBase64Url(new Uint8Array(signature));
		},
	};
}

export function toBase64Url(bytes: Uint8Array): string {
	let binary = "";
	for (const byte of bytes) binary += String.fromCharCode(byte);
	return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
	const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
	const bytes = new Uint8Array(binary.length);
	for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
	return bytes;
}
