/** The part of `http_ece` (RFC 8188 / RFC 8291; the package `web-push` builds on) the Web Push simulator uses. */
declare module "http_ece" {
	import type { ECDH } from "node:crypto";

	export interface EceParams {
		version?: "aes128gcm" | "aesgcm";
		/** The receiver's ECDH key pair (the browser's subscription key). */
		privateKey?: ECDH;
		/** The subscription's 16-byte auth secret. */
		authSecret?: Buffer | string;
		dh?: Buffer | string;
		keyid?: Buffer | string;
		salt?: Buffer | string;
		rs?: number;
	}
	export function decrypt(buffer: Buffer, params: EceParams): Buffer;
	export function encrypt(buffer: Buffer, params: EceParams): Buffer;
	const ece: { decrypt: typeof decrypt; encrypt: typeof encrypt };
	export default ece;
}
