import { errors, jwtVerify, SignJWT } from "jose";
import * as z from "zod/mini";
import { Identifier, text } from "../protocol/common.ts";
import { currentSecret, secretValues } from "./secret-values.ts";

/**
 * Mobile tokens (DESIGN.md): HS256 JWTs signed with SESSION_TOKEN_SECRET, scoped to one session
 * by `sid`. jose checks the signature, `exp` and `nbf`, and only HS256 is accepted, so `none` and
 * algorithm-confusion tokens are refused. `iat` is required and a token may live at most
 * MAX_TOKEN_LIFETIME_SECONDS (`exp - iat`), so a leaked token is not good for ever (issue 14).
 * SESSION_TOKEN_SECRET may hold several space-separated secrets during a rotation (issue 12): tokens
 * are signed with the first and verified against every one.
 */

/** The longest a mobile token may live, from `iat` to `exp` (SECURITY.md). */
export const MAX_TOKEN_LIFETIME_SECONDS = 24 * 60 * 60;
const CLOCK_TOLERANCE_SECONDS = 30;

export const MobileClaims = z.object({
	sid: Identifier,
	sub: text(256, 1),
	exp: z.number(),
	iat: z.number(),
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

/** What a mobile token says; its lifetime is `ttlSeconds` from `issuedAt`, or ends at `expiresAt`. */
export type MobileTokenOptions = {
	sid: string;
	sub: string;
	tenantId?: string;
	/** `iat`, in seconds since the epoch; now by default. */
	issuedAt?: number;
} & (
	| {
			/** Lifetime in seconds from `issuedAt` (1 h by default). */
			ttlSeconds?: number;
			expiresAt?: never;
	  }
	| {
			/** `exp`, in seconds since the epoch (in the past for an expired token). */
			expiresAt: number;
			ttlSeconds?: never;
	  }
);

const DEFAULT_TTL_SECONDS = 60 * 60;

/**
 * Signs a mobile token the way MyndLens does at sign-in: HS256 with SESSION_TOKEN_SECRET, carrying
 * `sid`, `sub`, `iat`, `exp` and, when given, `tenant_id`. `secret` is the setting's value: with
 * several space-separated secrets (a rotation), the first signs. The one place tokens are made: the
 * token route, the demo routes, the local tools (npm start, npm run demo, the bench, the interop
 * suite) and the tests.
 */
export async function mintMobileToken(secret: string, options: MobileTokenOptions): Promise<string> {
	const signing = currentSecret(secret);
	if (!signing) throw new Error("SESSION_TOKEN_SECRET is empty: there is no secret to sign with");
	const issuedAt = options.issuedAt ?? Math.floor(Date.now() / 1000);
	const expiresAt = options.expiresAt ?? issuedAt + (options.ttlSeconds ?? DEFAULT_TTL_SECONDS);
	return new SignJWT({ sid: options.sid, ...(options.tenantId ? { tenant_id: options.tenantId } : {}) })
		.setProtectedHeader({ alg: "HS256" })
		.setSubject(options.sub)
		.setIssuedAt(issuedAt)
		.setExpirationTime(expiresAt)
		.sign(hmacKey(signing));
}

/**
 * Verifies a mobile token against every secret of SESSION_TOKEN_SECRET (`secrets`, space-separated):
 * all are tried, so the old and the new secret both work during a rotation, and a token signed with
 * a secret no longer listed is invalid. `now` (ms since the epoch) is the clock; the real one by default.
 */
export async function verifyMobileToken(
	token: string,
	secrets: string,
	options: { now?: number } = {},
): Promise<MobileTokenResult> {
	const now = options.now ?? Date.now();
	const results = await Promise.all(secretValues(secrets).map((secret) => verifyWith(token, secret, now)));
	return (
		results.find((result) => result.ok) ??
		results.find((result) => !result.ok && result.reason === "expired") ?? { ok: false, reason: "invalid" }
	);
}

async function verifyWith(token: string, secret: string, now: number): Promise<MobileTokenResult> {
	try {
		const { payload } = await jwtVerify(token, hmacKey(secret), {
			algorithms: ["HS256"],
			requiredClaims: ["sid", "sub", "exp", "iat"],
			clockTolerance: CLOCK_TOLERANCE_SECONDS,
			currentDate: new Date(now),
		});
		const claims = MobileClaims.safeParse(payload);
		if (!claims.success) return { ok: false, reason: "invalid" };
		const { iat, exp } = claims.data;
		const issuedInFuture = iat > now / 1000 + CLOCK_TOLERANCE_SECONDS;
		if (exp - iat > MAX_TOKEN_LIFETIME_SECONDS || issuedInFuture) return { ok: false, reason: "invalid" };
		return { ok: true, claims: claims.data };
	} catch (error) {
		return { ok: false, reason: error instanceof errors.JWTExpired ? "expired" : "invalid" };
	}
}
