import { decodeJwt, decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import { mintMobileToken, verifyMobileToken } from "../src/auth/mobile-token.ts";

const SECRET = "mint-token-test-secret-0123456789abcdef";

describe("mintMobileToken", () => {
	it("makes an HS256 token that verifyMobileToken accepts, with iat and a one-hour default lifetime", async () => {
		const before = Math.floor(Date.now() / 1000);
		const token = await mintMobileToken(SECRET, { sid: "sess_mint", sub: "user_mint" });
		expect(decodeProtectedHeader(token)).toEqual({ alg: "HS256" });
		const claims = decodeJwt(token);
		expect(claims.iat).toBeGreaterThanOrEqual(before);
		expect(claims.exp).toBe((claims.iat ?? 0) + 3600);
		expect(await verifyMobileToken(token, SECRET)).toMatchObject({
			ok: true,
			claims: { sid: "sess_mint", sub: "user_mint", exp: claims.exp },
		});
	});

	it("carries tenant_id, a chosen ttl and issued-at", async () => {
		const issuedAt = Math.floor(Date.now() / 1000) - 10;
		const token = await mintMobileToken(SECRET, {
			sid: "sess_mint",
			sub: "user_mint",
			tenantId: "tenant_mint",
			issuedAt,
			ttlSeconds: 120,
		});
		expect(decodeJwt(token)).toMatchObject({ iat: issuedAt, exp: issuedAt + 120, tenant_id: "tenant_mint" });
		const verified = await verifyMobileToken(token, SECRET);
		expect(verified.ok && verified.claims.tenant_id).toBe("tenant_mint");
	});

	it("honours an absolute expiresAt: a past one verifies as expired", async () => {
		const expiresAt = Math.floor(Date.now() / 1000) + 600;
		expect(decodeJwt(await mintMobileToken(SECRET, { sid: "s", sub: "u", expiresAt })).exp).toBe(expiresAt);
		const expired = await mintMobileToken(SECRET, { sid: "s", sub: "u", expiresAt: expiresAt - 3600 });
		expect(await verifyMobileToken(expired, SECRET)).toEqual({ ok: false, reason: "expired" });
	});

	it("is refused under another secret", async () => {
		const token = await mintMobileToken(SECRET, { sid: "s", sub: "u" });
		expect(await verifyMobileToken(token, "another-secret")).toEqual({ ok: false, reason: "invalid" });
	});
});
