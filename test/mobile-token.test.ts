import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from "jose";
import { describe, expect, it } from "vitest";
import { MAX_TOKEN_LIFETIME_SECONDS, verifyMobileToken } from "../src/auth/mobile-token.ts";
import { TEST_SECRETS } from "./secrets.ts";

// Issue 4: mobile tokens are HS256 only, with exp and nbf enforced and the claims we rely on present.
describe("mobile token verification", () => {
	const secret = TEST_SECRETS.SESSION_TOKEN_SECRET;
	const key = new TextEncoder().encode(secret);
	const now = Math.floor(Date.now() / 1000);
	const claims = { sid: "sess_1", sub: "user_1" };

	it("accepts a well-formed HS256 token", async () => {
		const token = await new SignJWT(claims)
			.setProtectedHeader({ alg: "HS256" })
			.setIssuedAt(now)
			.setExpirationTime(now + 60)
			.sign(key);
		expect(await verifyMobileToken(token, secret)).toMatchObject({
			ok: true,
			claims: { sid: "sess_1", sub: "user_1" },
		});
	});

	it("refuses expired and not-yet-valid tokens", async () => {
		const expired = await new SignJWT(claims)
			.setProtectedHeader({ alg: "HS256" })
			.setIssuedAt(now - 600)
			.setExpirationTime(now - 120)
			.sign(key);
		expect(await verifyMobileToken(expired, secret)).toEqual({ ok: false, reason: "expired" });
		const early = await new SignJWT(claims)
			.setProtectedHeader({ alg: "HS256" })
			.setNotBefore(now + 3600)
			.setExpirationTime(now + 7200)
			.sign(key);
		expect(await verifyMobileToken(early, secret)).toEqual({ ok: false, reason: "invalid" });
	});

	it("refuses `none`, other HMAC sizes and asymmetric algorithms", async () => {
		const unsecured = new UnsecuredJWT({ ...claims, exp: now + 60 }).encode();
		expect(await verifyMobileToken(unsecured, secret)).toEqual({ ok: false, reason: "invalid" });
		const hs512 = await new SignJWT(claims)
			.setProtectedHeader({ alg: "HS512" })
			.setExpirationTime(now + 60)
			.sign(new TextEncoder().encode(secret.repeat(2)));
		expect(await verifyMobileToken(hs512, secret.repeat(2))).toEqual({ ok: false, reason: "invalid" });
		// Algorithm confusion: an RS256 token whose public key an attacker could pass off as the HMAC secret.
		const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
		const rs256 = await new SignJWT(claims)
			.setProtectedHeader({ alg: "RS256" })
			.setExpirationTime(now + 60)
			.sign(privateKey);
		expect(await verifyMobileToken(rs256, JSON.stringify(await exportJWK(publicKey)))).toEqual({
			ok: false,
			reason: "invalid",
		});
	});

	it("refuses tokens without sid, sub or exp, or with a malformed sid", async () => {
		const noSid = await new SignJWT({ sub: "u" })
			.setProtectedHeader({ alg: "HS256" })
			.setExpirationTime(now + 60)
			.sign(key);
		const noExp = await new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(key);
		const badSid = await new SignJWT({ sid: "../etc", sub: "u" })
			.setProtectedHeader({ alg: "HS256" })
			.setExpirationTime(now + 60)
			.sign(key);
		for (const token of [noSid, noExp, badSid])
			expect(await verifyMobileToken(token, secret)).toEqual({ ok: false, reason: "invalid" });
	});

	it("requires iat and refuses a token that lives longer than the maximum or was issued in the future", async () => {
		const sign = (issuedAt: number | null, expiresAt: number) => {
			const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setExpirationTime(expiresAt);
			return (issuedAt === null ? jwt : jwt.setIssuedAt(issuedAt)).sign(key);
		};
		const invalid = { ok: false, reason: "invalid" };
		expect(await verifyMobileToken(await sign(null, now + 60), secret)).toEqual(invalid);
		expect(await verifyMobileToken(await sign(now, now + MAX_TOKEN_LIFETIME_SECONDS + 1), secret)).toEqual(
			invalid,
		);
		expect(await verifyMobileToken(await sign(now + 3600, now + 7200), secret)).toEqual(invalid);
		expect(await verifyMobileToken(await sign(now, now + MAX_TOKEN_LIFETIME_SECONDS), secret)).toMatchObject({
			ok: true,
		});
	});

	it("refuses a token signed with another key", async () => {
		const token = await new SignJWT(claims)
			.setProtectedHeader({ alg: "HS256" })
			.setExpirationTime(now + 60)
			.sign(new TextEncoder().encode("another-secret-entirely"));
		expect(await verifyMobileToken(token, secret)).toEqual({ ok: false, reason: "invalid" });
	});
});
