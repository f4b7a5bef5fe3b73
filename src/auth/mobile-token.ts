import { errors, jwtVerify } from "jose";
import * as z from "zod/mini";
import { Identifier, text } from "../protocol/common.ts";

/**
 * Mobile tokens (DESIGN.md): HS256 JWTs signed with SESSION_TOKEN_SECRET, scoped to one session
 * by `sid`. jose checks the signature, `exp` and `nbf`, and only HS256 is accepted, so `none` and
 * algorithm-confusion tokens are refused.
 */

export const MobileClaims = z.object({
	sid: Identifier,
	sub: text(256, 1),
	exp: z.number(),
	tenant_id: z.optional(Identifier),
});
export type MobileClaims = z.infer<typeof MobileClaims>;

export type MobileTokenResult =
	| { ok: true; claims: MobileClaims }
	| { ok: false; reason: "expired" | "invalid" };

const keyCache = new Map<string, Uint8Array>();
function hmacKey(secret: string): Uint8Array {
	let key = keyCache.get(secret);
	if (!key) {
		key = new TextEncoder().encode(secret);
		keyCache.set(secret, key);
	}
	return key;
}

export async function verifyMobileToken(token: string, secret: string): Promise<MobileTokenResult> {
	try {
		const { payload } = await jwtVerify(token, hmacKey(secret), {
			algorithms: ["HS256"],
			requiredClaims: ["sid", "sub", "exp"],
			clockTolerance: 30,
		});
		const claims = MobileClaims.safeParse(payload);
		return claims.success ? { ok: true, claims: claims.data } : { ok: false, reason: "invalid" };
	} catch (error) {
		return { ok: false, reason: error instanceof errors.JWTExpired ? "expired" : "invalid" };
	}
}
