import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { decodeJwt } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_TOKEN_LIFETIME_SECONDS, verifyMobileToken } from "../src/auth/mobile-token.ts";
import app from "../src/index.ts";
import { gatewayFor } from "../src/openclaw/registry.ts";
import {
	ADMIN,
	api,
	connectPhone,
	connectResponse,
	mobileToken,
	phonesClosedAfterEach,
	phoneTokenExpiry,
	refusal,
	runAlarmAt,
	SERVICE,
	uniqueId,
} from "./helpers.ts";
import { eventually, gatewayStub } from "./openclaw-helpers.ts";
import { TEST_SECRETS } from "./secrets.ts";

/**
 * Issue 12, items 3 and 4: phone tokens minted by the service, secrets rotated without downtime, and
 * tenant gateway tokens encrypted at rest. Time is driven (a token's `exp`, a verification clock, the
 * session's alarm), never waited for.
 */

type Env = Cloudflare.Env;

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** The Worker with some settings overridden, as a rotation would deploy them. */
async function call(path: string, init: RequestInit = {}, overrides: Partial<Env> = {}): Promise<Response> {
	return await app.fetch(
		new Request(`https://progress.test${path}`, init),
		{ ...env, ...overrides },
		createExecutionContext(),
	);
}

function mint(
	sessionId: string,
	body: unknown,
	headers: Record<string, string> = SERVICE,
	overrides: Partial<Env> = {},
) {
	return call(
		`/api/sessions/${sessionId}/tokens`,
		{
			method: "POST",
			headers: { "content-type": "application/json", ...headers },
			body: typeof body === "string" ? body : JSON.stringify(body),
		},
		overrides,
	);
}

async function minted(response: Response): Promise<{ token: string; expires_at: string }> {
	expect(response.status).toBe(201);
	const body = (await response.json()) as { token: string; expires_at: string };
	expect(Object.keys(body).sort()).toEqual(["expires_at", "token"]);
	return body;
}

async function errorCode(response: Response): Promise<{ status: number; code: string; body: string }> {
	const body = await response.text();
	const parsed = JSON.parse(body) as { error: { code: string; message: string } };
	expect(parsed.error.message.length).toBeGreaterThan(0);
	return { status: response.status, code: parsed.error.code, body };
}

/** Collects every console line written while `run` runs (to prove what is, and is not, logged). */
async function logsOf(run: () => Promise<void>): Promise<string[]> {
	const lines: string[] = [];
	const spies = (["log", "info", "warn", "error", "debug"] as const).map((level) =>
		vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
			lines.push(args.map(String).join(" "));
		}),
	);
	try {
		await run();
	} finally {
		for (const spy of spies) spy.mockRestore();
	}
	return lines;
}

describe("POST /api/sessions/:sessionId/tokens", () => {
	const phones = phonesClosedAfterEach();

	it("mints a token for the session that opens its socket, with the claims and lifetime asked for", async () => {
		const sessionId = uniqueId("sess");
		const before = Math.floor(Date.now() / 1000);
		const { token, expires_at } = await minted(
			await mint(sessionId, { sub: "user_42", tenant_id: "tenant_2545f9a0d50d", ttl_seconds: 120 }),
		);
		const claims = decodeJwt(token);
		expect(claims).toMatchObject({ sid: sessionId, sub: "user_42", tenant_id: "tenant_2545f9a0d50d" });
		expect(claims.exp).toBe((claims.iat ?? 0) + 120);
		expect(claims.iat).toBeGreaterThanOrEqual(before);
		expect(expires_at).toBe(new Date((claims.exp ?? 0) * 1000).toISOString());

		const phone = await connectPhone(sessionId, { token });
		phones.push(phone);
		await phone.waitFor((frame) => frame.type === "snapshot", "the snapshot");
		// Scoped by sid: the same token does not open another session.
		const other = await connectResponse(uniqueId("sess"), "", bearer(token));
		expect(await refusal(other)).toEqual({ code: 4403, reason: "token is not for this session" });
	});

	it("lives 15 minutes by default and at most 24 hours; tenant_id is optional", async () => {
		const sessionId = uniqueId("sess");
		const byDefault = decodeJwt((await minted(await mint(sessionId, { sub: "user_1" }))).token);
		expect((byDefault.exp ?? 0) - (byDefault.iat ?? 0)).toBe(15 * 60);
		expect(byDefault.tenant_id).toBeUndefined();
		const longest = decodeJwt(
			(await minted(await mint(sessionId, { sub: "user_1", ttl_seconds: MAX_TOKEN_LIFETIME_SECONDS }))).token,
		);
		expect((longest.exp ?? 0) - (longest.iat ?? 0)).toBe(MAX_TOKEN_LIFETIME_SECONDS);
	});

	it("expires: refused once the clock passes exp, and its socket is closed with 4401 by the alarm", async () => {
		const sessionId = uniqueId("sess");
		const { token } = await minted(await mint(sessionId, { sub: "user_1", ttl_seconds: 60 }));
		const { exp = 0 } = decodeJwt(token);
		const secret = TEST_SECRETS.SESSION_TOKEN_SECRET;
		expect((await verifyMobileToken(token, secret, { now: (exp - 1) * 1000 })).ok).toBe(true);
		// 30 s of clock tolerance, then it is expired.
		expect(await verifyMobileToken(token, secret, { now: (exp + 31) * 1000 })).toEqual({
			ok: false,
			reason: "expired",
		});

		const phone = await connectPhone(sessionId, { token });
		phones.push(phone);
		await phone.waitFor((frame) => frame.type === "snapshot", "the snapshot");
		expect(await phoneTokenExpiry(sessionId)).toBe(exp * 1000);
		await runAlarmAt(sessionId, exp * 1000 + 1);
		await expect.poll(() => phone.closed).toEqual({ code: 4401, reason: "token expired" });
	});

	it.each<[string, unknown]>([
		["not JSON", "{"],
		["an empty body", ""],
		["an array", []],
		["null", null],
		["no sub", { tenant_id: "t1" }],
		["an empty sub", { sub: "" }],
		["a sub with a space", { sub: "user 1" }],
		["a sub of 129 characters", { sub: "u".repeat(129) }],
		["a numeric sub", { sub: 42 }],
		["a bad tenant_id", { sub: "u1", tenant_id: "t/1" }],
		["an unknown field", { sub: "u1", sid: "another_session" }],
		["ttl_seconds 0", { sub: "u1", ttl_seconds: 0 }],
		["ttl_seconds 59", { sub: "u1", ttl_seconds: 59 }],
		["ttl_seconds over 24 h", { sub: "u1", ttl_seconds: MAX_TOKEN_LIFETIME_SECONDS + 1 }],
		["a fractional ttl_seconds", { sub: "u1", ttl_seconds: 90.5 }],
		["ttl_seconds as a string", { sub: "u1", ttl_seconds: "900" }],
		["a negative ttl_seconds", { sub: "u1", ttl_seconds: -60 }],
	])("refuses %s with 400 and mints nothing", async (_what, body) => {
		const { status, code, body: text } = await errorCode(await mint(uniqueId("sess"), body));
		expect(status).toBe(400);
		expect(code).toMatch(/^invalid_(json|request)$/);
		expect(text).not.toMatch(/"token"|eyJ/);
	});

	it("refuses a bad session id with 400 and a body over 4 KiB with 413", async () => {
		expect((await errorCode(await mint("bad%20id", { sub: "u1" }))).status).toBe(400);
		const huge = await mint(uniqueId("sess"), { sub: "u1", pad: "x".repeat(5_000) });
		expect(await errorCode(huge)).toMatchObject({ status: 413, code: "body_too_large" });
	});

	it("needs SERVICE_TOKEN: 401 without or with a wrong one, 403 for an operator or a phone", async () => {
		const sessionId = uniqueId("sess");
		const body = { sub: "user_1" };
		expect(await errorCode(await mint(sessionId, body, {}))).toMatchObject({
			status: 401,
			code: "unauthorized",
		});
		expect(
			await errorCode(await mint(sessionId, body, bearer(`${TEST_SECRETS.SERVICE_TOKEN}x`))),
		).toMatchObject({
			status: 401,
		});
		expect(await errorCode(await mint(sessionId, body, ADMIN))).toMatchObject({
			status: 403,
			code: "forbidden",
		});
		const phone = bearer(await mobileToken(sessionId));
		expect(await errorCode(await mint(sessionId, body, phone))).toMatchObject({
			status: 403,
			code: "forbidden",
		});
	});

	it("answers 503 naming the missing setting, never a token signed with nothing", async () => {
		for (const [setting, value] of [
			["SESSION_TOKEN_SECRET", undefined],
			["SESSION_TOKEN_SECRET", "   "],
			["SERVICE_TOKEN", undefined],
			["SERVICE_TOKEN", " "],
		] as const) {
			let response: Response | undefined;
			const lines = await logsOf(async () => {
				response = await mint(uniqueId("sess"), { sub: "u1" }, SERVICE, { [setting]: value });
			});
			if (!response) throw new Error("no response");
			expect(await errorCode(response), `${setting}=${JSON.stringify(value)}`).toMatchObject({
				status: 503,
				code: "not_configured",
			});
			expect(lines.some((line) => line.includes(setting))).toBe(true);
		}
	});
});

describe("rotation without downtime: several space-separated values, the first signs, any is accepted", () => {
	const OLD = "old-session-secret-0123456789abcdef";
	const NEW = "new-session-secret-fedcba9876543210";

	it("SESSION_TOKEN_SECRET: tokens of the old and the new secret both work; minting signs with the new", async () => {
		const rotating = { SESSION_TOKEN_SECRET: `${NEW} ${OLD}` };
		const sessionId = uniqueId("sess");
		const oldToken = await mobileToken(sessionId, { secret: OLD });
		const newToken = await mobileToken(sessionId, { secret: NEW });
		for (const token of [oldToken, newToken]) {
			const progress = await call(
				`/api/sessions/${sessionId}/progress`,
				{ headers: bearer(token) },
				rotating,
			);
			expect(progress.status).toBe(200);
		}
		// The socket opens with the old secret's token during the rotation.
		const upgrade = await call(
			`/api/sessions/${sessionId}/ws`,
			{ headers: { Upgrade: "websocket", ...bearer(oldToken) } },
			rotating,
		);
		expect(upgrade.status).toBe(101);
		const socket = upgrade.webSocket;
		if (!socket) throw new Error("no socket");
		const frames: string[] = [];
		socket.addEventListener("message", (event) => {
			frames.push(String(event.data));
		});
		socket.accept();
		await expect.poll(() => frames.some((frame) => frame.includes('"snapshot"'))).toBe(true);
		socket.close(1000, "done");

		// A token minted during the rotation is signed with the first (new) secret.
		const { token } = await minted(await mint(sessionId, { sub: "user_1" }, SERVICE, rotating));
		expect((await verifyMobileToken(token, NEW)).ok).toBe(true);
		expect(await verifyMobileToken(token, OLD)).toEqual({ ok: false, reason: "invalid" });
		expect((await verifyMobileToken(token, `${OLD} ${NEW}`)).ok).toBe(true);
	});

	it("SESSION_TOKEN_SECRET: once the old secret is dropped, its tokens are refused (401, socket 4401)", async () => {
		const rotated = { SESSION_TOKEN_SECRET: NEW };
		const sessionId = uniqueId("sess");
		const oldToken = await mobileToken(sessionId, { secret: OLD });
		const refused = await call(`/api/sessions/${sessionId}/progress`, { headers: bearer(oldToken) }, rotated);
		expect(await errorCode(refused)).toMatchObject({ status: 401, code: "unauthorized" });
		const upgrade = await call(
			`/api/sessions/${sessionId}/ws`,
			{ headers: { Upgrade: "websocket", ...bearer(oldToken) } },
			rotated,
		);
		expect(await refusal(upgrade)).toEqual({ code: 4401, reason: "unauthorized" });
		const fresh = await mobileToken(sessionId, { secret: NEW });
		expect(
			(await call(`/api/sessions/${sessionId}/progress`, { headers: bearer(fresh) }, rotated)).status,
		).toBe(200);
		// An expired token of a listed secret still says "expired", not "invalid".
		const expired = await mobileToken(sessionId, {
			secret: OLD,
			expiresIn: Math.floor(Date.now() / 1000) - 3600,
		});
		const late = await call(
			`/api/sessions/${sessionId}/progress`,
			{ headers: bearer(expired) },
			{ SESSION_TOKEN_SECRET: `${NEW} ${OLD}` },
		);
		expect(await errorCode(late)).toMatchObject({ status: 401, code: "token_expired" });
	});

	it("SERVICE_TOKEN: the pipeline's old and new token both work during the rotation, only the new after", async () => {
		const rotating = { SERVICE_TOKEN: "service-new service-old" };
		const sessionId = uniqueId("sess");
		for (const token of ["service-new", "service-old"]) {
			await minted(await mint(sessionId, { sub: "user_1" }, bearer(token), rotating));
			const progress = await call(
				`/api/sessions/${sessionId}/progress`,
				{ headers: bearer(token) },
				rotating,
			);
			expect(progress.status).toBe(200);
		}
		const after = { SERVICE_TOKEN: "service-new" };
		expect((await mint(sessionId, { sub: "user_1" }, bearer("service-old"), after)).status).toBe(401);
		await minted(await mint(sessionId, { sub: "user_1" }, bearer("service-new"), after));
		// Neither value nor their concatenation is anything else: an operator's route stays closed.
		expect(
			(await call("/api/admin/tenants/t1/gateway", { headers: bearer("service-old") }, rotating)).status,
		).toBe(403);
		expect((await mint(sessionId, { sub: "u" }, bearer("service-newservice-old"), rotating)).status).toBe(
			401,
		);
	});

	it("ADMIN_TOKEN: the operator's old and new token both work during the rotation, only the new after", async () => {
		const rotating = { ADMIN_TOKEN: "admin-new\tadmin-old" };
		const tenantId = uniqueId("tenant");
		for (const token of ["admin-new", "admin-old"]) {
			const read = await call(`/api/admin/tenants/${tenantId}/gateway`, { headers: bearer(token) }, rotating);
			expect(await errorCode(read)).toMatchObject({ status: 404, code: "not_found" });
			// An operator may still not mint phone tokens.
			expect((await mint(uniqueId("sess"), { sub: "u" }, bearer(token), rotating)).status).toBe(403);
		}
		const after = { ADMIN_TOKEN: "admin-new" };
		const stale = await call(
			`/api/admin/tenants/${tenantId}/gateway`,
			{ headers: bearer("admin-old") },
			after,
		);
		expect(await errorCode(stale)).toMatchObject({ status: 401, code: "unauthorized" });
		const empty = await call(
			`/api/admin/tenants/${tenantId}/gateway`,
			{ headers: bearer("admin-new") },
			{
				ADMIN_TOKEN: "  ",
			},
		);
		expect(await errorCode(empty)).toMatchObject({ status: 503, code: "not_configured" });
	});
});

// ── Tenant gateway tokens at rest ────────────────────────────────────────────────────────────────

const KEY_A = "c0/iU/E0duM+dr8euts7iEISf43mm+WymBfNDPtiJZs="; // TEST_SECRETS.GATEWAY_TOKEN_KEY
const KEY_B = "hzbw7Z3uGMf+uKSW+Ws3mV4669q3zTA59fUUlD3gS04=";

async function keyId(base64Key: string): Promise<string> {
	const raw = Uint8Array.from(atob(base64Key), (char) => char.charCodeAt(0));
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
	return Array.from(digest.slice(0, 4), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function register(
	tenantId: string,
	token: string,
	overrides: Partial<Env> = {},
	url = env.OPENCLAW_GATEWAY_URL,
) {
	return call(
		`/api/admin/tenants/${tenantId}/gateway`,
		{
			method: "PUT",
			headers: { "content-type": "application/json", ...ADMIN },
			body: JSON.stringify({ url, token }),
		},
		overrides,
	);
}

function rawRow(tenantId: string) {
	return env.DB.prepare("SELECT * FROM tenant_gateways WHERE tenant_id = ?")
		.bind(tenantId)
		.first<{ tenant_id: string; url: string; token: string; token_sealed: number; updated_at: string }>();
}

describe("tenant gateway tokens are encrypted at rest", () => {
	const tenantsToRemove: string[] = [];
	afterEach(async () => {
		for (const tenantId of tenantsToRemove.splice(0)) {
			await api(`/api/admin/tenants/${tenantId}/gateway`, { method: "DELETE", headers: ADMIN });
		}
	});

	async function connectsThroughTheGatewayDO(tenantId: string) {
		const stub = gatewayStub(tenantId);
		await stub.watch(tenantId, {
			executionId: uniqueId("exec"),
			sessionId: uniqueId("sess"),
			mandateId: uniqueId("mio"),
		});
		const status = await eventually(
			() => stub.status(),
			(s) => s.connected,
			"connected via the registry",
		);
		expect(status.gatewaySource).toBe("registry");
	}

	it("stores only ciphertext (a fresh IV each time), never returns or logs the token, and the Gateway DO connects", async () => {
		const tenantId = uniqueId("tenant");
		tenantsToRemove.push(tenantId);
		const token = TEST_SECRETS.OPENCLAW_GATEWAY_TOKEN;
		const lines = await logsOf(async () => {
			expect((await register(tenantId, token)).status).toBe(200);
			const first = await rawRow(tenantId);
			expect((await register(tenantId, token)).status).toBe(200);
			const row = await rawRow(tenantId);
			if (!first || !row) throw new Error("no row stored");
			expect(row.token_sealed).toBe(1);
			expect(row.token).toMatch(new RegExp(`^v1:${await keyId(KEY_A)}:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/=]+$`));
			expect(JSON.stringify(row)).not.toContain(token);
			expect(row.token).not.toBe(first.token);
			const read = await api(`/api/admin/tenants/${tenantId}/gateway`, { headers: ADMIN });
			const text = await read.text();
			expect(read.status).toBe(200);
			expect(text).not.toContain(token);
			expect(text).not.toContain(row.token);
			const lookup = await gatewayFor(env, tenantId);
			expect(lookup).toMatchObject({ ok: true, target: { token, source: "registry" } });
		});
		expect(lines.join("\n")).not.toContain(token);
		// The simulated gateway accepts only this token: connecting proves the DO decrypted it.
		await connectsThroughTheGatewayDO(tenantId);
	});

	it("re-encrypts under the new key on read after a key rotation; a key no longer listed cannot read it", async () => {
		const tenantId = uniqueId("tenant");
		const token = "rotating-gateway-token";
		expect((await register(tenantId, token, { GATEWAY_TOKEN_KEY: KEY_B })).status).toBe(200);
		const underB = await rawRow(tenantId);
		expect(underB?.token.startsWith(`v1:${await keyId(KEY_B)}:`)).toBe(true);

		// Rotation: the new key A first, the old key B still listed.
		const rotating = { ...env, GATEWAY_TOKEN_KEY: `${KEY_A} ${KEY_B}` };
		expect(await gatewayFor(rotating, tenantId)).toMatchObject({ ok: true, target: { token } });
		const underA = await rawRow(tenantId);
		expect(underA?.token.startsWith(`v1:${await keyId(KEY_A)}:`)).toBe(true);
		expect(underA?.token_sealed).toBe(1);
		expect(JSON.stringify(underA)).not.toContain(token);
		// Re-encrypted once: a second read under the same keys leaves the row as it is.
		expect(await gatewayFor(rotating, tenantId)).toMatchObject({ ok: true, target: { token } });
		expect((await rawRow(tenantId))?.token).toBe(underA?.token);

		// The old key dropped: still readable; a Worker with only the old key can no longer read it.
		expect(await gatewayFor({ ...env, GATEWAY_TOKEN_KEY: KEY_A }, tenantId)).toMatchObject({
			ok: true,
			target: { token },
		});
		const stale = await gatewayFor({ ...env, GATEWAY_TOKEN_KEY: KEY_B }, tenantId);
		expect(stale.ok).toBe(false);
		if (!stale.ok) {
			expect(stale.reason).toContain("GATEWAY_TOKEN_KEY no longer lists");
			expect(stale.reason).not.toContain(token);
		}
		await env.DB.prepare("DELETE FROM tenant_gateways WHERE tenant_id = ?").bind(tenantId).run();
	});

	it("an operator's GET re-encrypts an idle tenant's token under the new key, and still never shows it", async () => {
		const tenantId = uniqueId("tenant");
		const token = "idle-tenant-gateway-token";
		expect((await register(tenantId, token, { GATEWAY_TOKEN_KEY: KEY_B })).status).toBe(200);
		const before = (await rawRow(tenantId))?.token ?? "";
		const read = await call(
			`/api/admin/tenants/${tenantId}/gateway`,
			{ headers: ADMIN },
			{
				GATEWAY_TOKEN_KEY: `${KEY_A} ${KEY_B}`,
			},
		);
		const text = await read.text();
		expect(read.status).toBe(200);
		expect(text).not.toContain(token);
		expect(text).not.toContain("v1:");
		const after = await rawRow(tenantId);
		expect(after?.token.startsWith(`v1:${await keyId(KEY_A)}:`)).toBe(true);
		expect(after?.token).not.toBe(before);
		expect(await gatewayFor({ ...env, GATEWAY_TOKEN_KEY: KEY_A }, tenantId)).toMatchObject({
			ok: true,
			target: { token },
		});
		await env.DB.prepare("DELETE FROM tenant_gateways WHERE tenant_id = ?").bind(tenantId).run();
	});

	it("still reads a plain row written before encryption, and re-encrypts it on that read", async () => {
		const tenantId = uniqueId("tenant");
		tenantsToRemove.push(tenantId);
		const token = TEST_SECRETS.OPENCLAW_GATEWAY_TOKEN;
		await env.DB.prepare(
			"INSERT INTO tenant_gateways (tenant_id, url, token, updated_at) VALUES (?, ?, ?, ?)",
		)
			.bind(tenantId, env.OPENCLAW_GATEWAY_URL, token, new Date().toISOString())
			.run();
		expect(await rawRow(tenantId)).toMatchObject({ token, token_sealed: 0 });
		// Without a key it is still used as it is (nothing to encrypt with) and left alone.
		expect(await gatewayFor({ ...env, GATEWAY_TOKEN_KEY: undefined }, tenantId)).toMatchObject({
			ok: true,
			target: { token },
		});
		expect(await rawRow(tenantId)).toMatchObject({ token, token_sealed: 0 });
		// Through the Gateway DO, with the key: it connects, and the row holds ciphertext afterwards.
		await connectsThroughTheGatewayDO(tenantId);
		const row = await rawRow(tenantId);
		expect(row?.token_sealed).toBe(1);
		expect(row?.token.startsWith(`v1:${await keyId(KEY_A)}:`)).toBe(true);
		expect(JSON.stringify(row)).not.toContain(token);
		expect(await gatewayFor(env, tenantId)).toMatchObject({ ok: true, target: { token } });
	});

	it("a ciphertext copied into another tenant's row does not decrypt there", async () => {
		const owner = uniqueId("tenant");
		const thief = uniqueId("tenant");
		const token = "tenant-bound-gateway-token";
		expect((await register(owner, token)).status).toBe(200);
		const sealed = (await rawRow(owner))?.token ?? "";
		await env.DB.prepare(
			"INSERT INTO tenant_gateways (tenant_id, url, token, token_sealed, updated_at) VALUES (?, ?, ?, 1, ?)",
		)
			.bind(thief, env.OPENCLAW_GATEWAY_URL, sealed, new Date().toISOString())
			.run();
		let stolen: Awaited<ReturnType<typeof gatewayFor>> | undefined;
		const lines = await logsOf(async () => {
			stolen = await gatewayFor(env, thief);
		});
		expect(stolen).toMatchObject({
			ok: false,
			reason: expect.stringContaining("does not decrypt for this tenant"),
		});
		expect(lines.some((line) => line.includes("gateway token unreadable") && line.includes(thief))).toBe(
			true,
		);
		expect(lines.join("\n")).not.toContain(token);
		expect(await gatewayFor(env, owner)).toMatchObject({ ok: true, target: { token } });
		// Tampering with the ciphertext is caught the same way.
		const tampered = `${sealed.slice(0, -4)}${sealed.endsWith("AAAA") ? "BBBB" : "AAAA"}`;
		await env.DB.prepare("UPDATE tenant_gateways SET token = ? WHERE tenant_id = ?")
			.bind(tampered, owner)
			.run();
		expect((await gatewayFor(env, owner)).ok).toBe(false);
		await env.DB.prepare("DELETE FROM tenant_gateways WHERE tenant_id IN (?, ?)").bind(owner, thief).run();
	});

	it("without GATEWAY_TOKEN_KEY: registering answers 503 naming it and stores nothing; reading fails as not configured", async () => {
		const tenantId = uniqueId("tenant");
		for (const key of [undefined, " ", "not-base64!", "c2hvcnQ=", `${KEY_A} c2hvcnQ=`]) {
			let response: Response | undefined;
			const lines = await logsOf(async () => {
				response = await register(tenantId, "some-gateway-token", { GATEWAY_TOKEN_KEY: key });
			});
			if (!response) throw new Error("no response");
			expect(await errorCode(response), `GATEWAY_TOKEN_KEY=${JSON.stringify(key)}`).toMatchObject({
				status: 503,
				code: "not_configured",
			});
			expect(lines.some((line) => line.includes("GATEWAY_TOKEN_KEY"))).toBe(true);
			expect(lines.join("\n")).not.toContain("some-gateway-token");
			expect(await rawRow(tenantId)).toBeNull();
		}
		// A row sealed under the key, read by a Worker that has lost it: "not configured", logged, no throw.
		expect((await register(tenantId, "sealed-gateway-token")).status).toBe(200);
		let lookup: Awaited<ReturnType<typeof gatewayFor>> | undefined;
		const lines = await logsOf(async () => {
			lookup = await gatewayFor({ ...env, GATEWAY_TOKEN_KEY: undefined }, tenantId);
		});
		expect(lookup).toMatchObject({
			ok: false,
			reason: expect.stringContaining("GATEWAY_TOKEN_KEY is not set"),
		});
		const logged = lines.map(
			(line) => JSON.parse(line) as { msg: string; tenant_id?: string; missing?: string[] },
		);
		expect(logged).toContainEqual(
			expect.objectContaining({
				msg: "gateway token unreadable",
				tenant_id: tenantId,
				missing: ["GATEWAY_TOKEN_KEY"],
			}),
		);
		await env.DB.prepare("DELETE FROM tenant_gateways WHERE tenant_id = ?").bind(tenantId).run();
	});
});
