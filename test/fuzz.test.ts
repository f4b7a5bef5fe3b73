import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExecuteRequest, StageReport } from "../src/protocol/api.ts";
import { DeliveryWebhook } from "../src/protocol/obegee.ts";
import {
	api,
	connectPhone,
	execute,
	mandateBody,
	mobileToken,
	type Phone,
	postJson,
	refusal,
	reportStage,
	SERVICE,
	sessionStub,
	uniqueId,
} from "./helpers.ts";
import { TEST_SECRETS } from "./secrets.ts";

/**
 * Issue 4: thousands of malformed bodies, headers, tokens, webhook payloads and socket frames
 * against the real Worker in workerd. Every one gets a 4xx (or a policy close), never a 5xx, and
 * the stored state — the Session DO's SQLite and the session's D1 rows — is byte-for-byte the same.
 */

const RUNS = 400;

/** Everything stored about a session, as one string to compare byte for byte. */
async function dumpState(sessionId: string): Promise<string> {
	const local = await runInDurableObject(sessionStub(sessionId), (_instance, state) => {
		const sql = state.storage.sql;
		const tables = sql
			.exec<{ name: string }>(
				"SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'ml_%' ORDER BY name",
			)
			.toArray()
			.map((row) => row.name);
		return tables.map((table) => [table, sql.exec(`SELECT * FROM ${table}`).toArray()]);
	});
	const d1 = await env.DB.batch(
		[
			["executions", "rowid"],
			["delivery_events", "rowid"],
			["audit_log", "seq"],
		].map(([table, order]) =>
			env.DB.prepare(`SELECT * FROM ${table} WHERE session_id = ? ORDER BY ${order}`).bind(sessionId),
		),
	);
	return JSON.stringify({ local, d1: d1.map((result) => result.results) });
}

function expectClientError(response: Response, what: string) {
	expect(response.status, what).toBeGreaterThanOrEqual(400);
	expect(response.status, what).toBeLessThan(500);
}

/** Values of every JSON shape, plus near-misses of the real bodies. */
const anyJson = fc.oneof(
	fc.jsonValue(),
	fc.string(),
	fc.dictionary(fc.string({ maxLength: 20 }), fc.jsonValue()),
	fc.constantFrom("", "{", "[]", "null", '{"mandate_id":', "\u0000", "💥".repeat(100)),
);

describe("fuzz: bad input changes nothing", () => {
	const sessionId = uniqueId("fuzz");
	let mandateId: string;
	let executionId: string;
	let before: string;
	let phone: Phone;

	beforeAll(async () => {
		const body = mandateBody(sessionId);
		mandateId = body.mandate_id;
		await reportStage(sessionId, mandateId, 1, "completed");
		executionId = (await execute(body)).json.execution_id;
		phone = await connectPhone(sessionId);
		before = await dumpState(sessionId);
	});

	afterAll(async () => {
		phone.close();
		expect(await dumpState(sessionId)).toBe(before);
	});

	it("stage reports", async () => {
		const nearMiss = fc.record(
			{
				mandate_id: fc.oneof(fc.constant(mandateId), fc.string({ maxLength: 300 }), fc.integer()),
				stage: fc.oneof(fc.integer({ min: -5, max: 20 }), fc.double(), fc.string()),
				status: fc.oneof(
					fc.constantFrom("pending", "active", "created", "approved", "COMPLETED"),
					fc.string(),
				),
				message: fc.oneof(fc.string({ maxLength: 600 }), fc.integer()),
				extra: fc.jsonValue(),
			},
			{ requiredKeys: [] },
		);
		await fc.assert(
			fc.asyncProperty(fc.oneof(anyJson, nearMiss), async (body) => {
				fc.pre(!StageReport.safeParse(body).success);
				const response = await postJson(
					`/api/sessions/${sessionId}/stages`,
					typeof body === "string" ? body : JSON.stringify(body),
				);
				expectClientError(response, JSON.stringify(body));
			}),
			{ numRuns: RUNS },
		);
	});

	it("mandates to execute", async () => {
		const nearMiss = fc.record(
			{
				session_id: fc.oneof(fc.constant(sessionId), fc.string({ maxLength: 200 })),
				mandate_id: fc.oneof(fc.constant(uniqueId("mio")), fc.string({ maxLength: 200 })),
				tenant_id: fc.oneof(fc.constant("tenant_1"), fc.string(), fc.constant(null)),
				intent: fc.oneof(fc.string({ maxLength: 3000 }), fc.integer()),
				dimensions: fc.oneof(fc.jsonValue(), fc.array(fc.integer())),
				generated_skills: fc.oneof(fc.jsonValue(), fc.array(fc.integer(), { minLength: 51, maxLength: 60 })),
				delivery_channels: fc.oneof(fc.array(fc.string({ maxLength: 100 }), { maxLength: 12 }), fc.string()),
			},
			{ requiredKeys: [] },
		);
		await fc.assert(
			fc.asyncProperty(fc.oneof(anyJson, nearMiss), async (body) => {
				fc.pre(!ExecuteRequest.safeParse(body).success);
				const response = await postJson(
					"/api/mandate/execute",
					typeof body === "string" ? body : JSON.stringify(body),
				);
				expectClientError(response, JSON.stringify(body));
			}),
			{ numRuns: RUNS },
		);
	});

	it("credentials on every route", async () => {
		const jwtish = fc
			.tuple(fc.base64String(), fc.base64String(), fc.base64String())
			.map((parts) => parts.join(".").replaceAll("=", ""));
		const header = fc.oneof(
			fc.string({ maxLength: 200 }).map((value) => `Bearer ${value}`),
			jwtish.map((value) => `Bearer ${value}`),
			fc.string({ maxLength: 100 }),
			fc.constantFrom(
				"Bearer",
				"Basic YWRtaW46YWRtaW4=",
				`Bearer ${TEST_SECRETS.SERVICE_TOKEN}x`,
				`Bearer ${TEST_SECRETS.ADMIN_TOKEN.slice(1)}`,
			),
		);
		const route = fc.constantFrom(
			{ method: "GET", path: `/api/sessions/${sessionId}/progress` },
			{ method: "GET", path: `/api/executions/${executionId}` },
			{ method: "POST", path: `/api/sessions/${sessionId}/stages` },
			{ method: "POST", path: "/api/mandate/execute" },
			{ method: "GET", path: `/api/sessions/${sessionId}/ws`, upgrade: true },
		);
		await fc.assert(
			fc.asyncProperty(route, header, async ({ method, path, upgrade }, authorization) => {
				const headers: Record<string, string> = { Authorization: authorization };
				if (upgrade) headers.Upgrade = "websocket";
				const response = await api(path, {
					method,
					headers,
					body: method === "POST" ? JSON.stringify(mandateBody(sessionId)) : undefined,
				});
				// A refused socket is accepted and closed at once with 4401/4403 (issue 14).
				if (upgrade && response.status === 101) {
					expect([4401, 4403], `${path} ${authorization}`).toContain((await refusal(response)).code);
				} else expectClientError(response, `${method} ${path} ${authorization}`);
			}),
			{ numRuns: RUNS },
		);
	});

	it("tokens for the wrong session, the wrong key or already expired", async () => {
		const token = fc.record({
			sid: fc.oneof(fc.constant(uniqueId("other")), fc.string({ minLength: 1, maxLength: 40 })),
			secret: fc.oneof(
				fc.constant(TEST_SECRETS.SESSION_TOKEN_SECRET),
				// A key to sign with: a setting of only spaces names no key at all (it is "missing").
				fc.string({ minLength: 1, maxLength: 40 }).filter((key) => key.trim() !== ""),
			),
			expired: fc.boolean(),
		});
		await fc.assert(
			fc.asyncProperty(token, async ({ sid, secret, expired }) => {
				// The only valid combination is the session's own id with the real key, unexpired.
				fc.pre(sid !== sessionId);
				const jwt = await mobileToken(sid, {
					secret,
					...(expired ? { expiresIn: Math.floor(Date.now() / 1000) - 60 } : {}),
				});
				const response = await api(`/api/sessions/${sessionId}/progress`, {
					headers: { Authorization: `Bearer ${jwt}` },
				});
				expectClientError(response, sid);
			}),
			{ numRuns: RUNS / 4 },
		);
	});

	it("webhook payloads and signatures", async () => {
		const signer = new Webhook(TEST_SECRETS.WEBHOOK_SECRET);
		const payload = fc.oneof(
			anyJson.map((value) => (typeof value === "string" ? value : JSON.stringify(value))),
			fc
				.record(
					{
						execution_id: fc.oneof(fc.constant(executionId), fc.string({ maxLength: 200 }), fc.integer()),
						status: fc.oneof(fc.constantFrom("COMPLETED", "FAILED", ""), fc.integer()),
						delivered_to: fc.oneof(fc.array(fc.string(), { maxLength: 30 }), fc.string()),
					},
					{ requiredKeys: [] },
				)
				.map((value) => JSON.stringify(value)),
		);
		const signing = fc.constantFrom("valid", "wrong-secret", "stale", "garbage", "missing");
		await fc.assert(
			fc.asyncProperty(payload, signing, fc.string({ maxLength: 60 }), async (body, how, id) => {
				let parsed: unknown;
				try {
					parsed = JSON.parse(body);
				} catch {
					parsed = undefined;
				}
				// A validly signed, well-formed webhook for our execution is not bad input.
				fc.pre(how !== "valid" || !DeliveryWebhook.safeParse(parsed).success);
				const webhookId = `msg_${id.replace(/[^A-Za-z0-9]/g, "")}x`;
				const at = how === "stale" ? new Date(Date.now() - 3_600_000) : new Date();
				const signature =
					how === "wrong-secret"
						? new Webhook("whsec_QWxhZGRpbjpvcGVuIHNlc2FtZWFsYWRkaW4hIQ==").sign(webhookId, at, body)
						: how === "garbage"
							? `v1,${id}`
							: signer.sign(webhookId, at, body);
				const headers: Record<string, string> = { "Content-Type": "application/json" };
				if (how !== "missing") {
					headers["webhook-id"] = webhookId;
					headers["webhook-timestamp"] = String(Math.floor(at.getTime() / 1000));
					headers["webhook-signature"] = signature;
				}
				const response = await api("/api/dispatch/delivery-webhook", { method: "POST", headers, body });
				expectClientError(response, `${how} ${body}`);
			}),
			{ numRuns: RUNS },
		);
	});

	it("socket frames", async () => {
		await fc.assert(
			fc.asyncProperty(
				fc.oneof(
					fc.string({ maxLength: 200 }),
					fc.jsonValue().map((v) => JSON.stringify(v)),
					fc.uint8Array({ maxLength: 64 }),
				),
				async (frame) => {
					fc.pre(
						frame !== "ping" &&
							!(typeof frame === "string" && /^\s*\{\s*"type"\s*:\s*"ping"\s*\}\s*$/.test(frame)),
					);
					const sender = await connectPhone(sessionId);
					await sender.waitFor((f) => f.type === "snapshot", "snapshot");
					sender.socket.send(frame);
					const answer = await sender.waitFor((f) => f.type === "error", "error frame");
					expect(answer).toMatchObject({ type: "error", code: "bad_frame" });
					sender.close();
				},
			),
			{ numRuns: RUNS / 4 },
		);
	});
});

/** `depth` arrays, one inside the other, around `leaf`. */
function nested(depth: number, leaf: unknown): unknown {
	let value = leaf;
	for (let i = 0; i < depth; i++) value = [value];
	return value;
}

/**
 * Shapes a schema of `z.unknown()` lets through — deep, wide, long, astral — described by small values
 * and built inside the property, so fast-check never has to print a value thousands of levels deep.
 */
type Shape =
	| { kind: "deep" | "wide" | "list" | "emoji"; n: number }
	| { kind: "text"; text: string }
	| { kind: "json"; value: unknown };
const shape: fc.Arbitrary<Shape> = fc.oneof(
	fc.record({ kind: fc.constantFrom("deep" as const), n: fc.integer({ min: 1, max: 6_000 }) }),
	fc.record({
		kind: fc.constantFrom("wide" as const, "list" as const),
		n: fc.integer({ min: 1, max: 3_000 }),
	}),
	fc.record({ kind: fc.constant("emoji" as const), n: fc.integer({ min: 1, max: 5_000 }) }),
	fc.record({ kind: fc.constant("text" as const), text: fc.string({ unit: "binary", maxLength: 5_000 }) }),
	fc.record({
		kind: fc.constant("json" as const),
		value: fc.jsonValue({ depthSize: "large", maxDepth: 40 }),
	}),
);
/** The shape as JSON text (built by hand: `JSON.stringify` itself recurses, and overflows on the deep ones). */
function jsonText(described: Shape): string {
	switch (described.kind) {
		case "deep":
			return `${"[".repeat(described.n)}1${"]".repeat(described.n)}`;
		case "wide":
			return JSON.stringify(Object.fromEntries(Array.from({ length: described.n }, (_, i) => [`k${i}`, i])));
		case "list":
			return JSON.stringify(Array.from({ length: described.n }, () => "x"));
		case "emoji":
			return JSON.stringify("💥".repeat(described.n));
		case "text":
			return JSON.stringify(described.text);
		case "json":
			return JSON.stringify(described.value);
	}
}

describe("fuzz: bodies the schema passes, with extreme shapes (issue 18)", () => {
	const sessionId = uniqueId("extreme");

	it("a deeply nested `dimensions` (3,500 levels in a few KB) is a 400 that names the field, not a 500", async () => {
		const response = await execute(mandateBody(sessionId, { dimensions: { plan: nested(3_500, 1) } }));
		expect(response.response.status).toBe(400);
		expect(JSON.stringify(response.json)).toContain("dimensions");
		expect(JSON.stringify(response.json)).toContain("nested deeper than");
	});

	it("execute: every free-form field with extreme shapes gets a clear answer, never a 500", async () => {
		await fc.assert(
			fc.asyncProperty(
				shape,
				shape,
				fc.string({ unit: "binary", minLength: 1, maxLength: 2_000 }),
				async (dimension, skill, intent) => {
					const text = JSON.stringify(
						mandateBody(sessionId, { intent, dimensions: { d: "§D§" }, generated_skills: ["§S§"] }),
					)
						.replace('"§D§"', () => jsonText(dimension))
						.replace('"§S§"', () => jsonText(skill));
					const body: unknown = JSON.parse(text);
					fc.pre(text.length < 60_000);
					const response = await postJson("/api/mandate/execute", text);
					const answer = (await response.json()) as Record<string, unknown>;
					const accepted = ExecuteRequest.safeParse(body).success;
					if (accepted) {
						// Sent to ObeGee (which may refuse it): never an internal error.
						expect([200, 201, 409, 502, 503], JSON.stringify(answer).slice(0, 300)).toContain(
							response.status,
						);
					} else {
						expectClientError(response, text.slice(0, 300));
					}
					if (response.status >= 400) expect(answer).toMatchObject({ error: { code: expect.any(String) } });
				},
			),
			{ numRuns: 60 },
		);
	});
});

describe("socket limits", () => {
	it("closes an oversized frame with 1009 and a flooding client with 1008, leaving other phones connected", async () => {
		const sessionId = uniqueId("flood");
		const calm = await connectPhone(sessionId);
		const big = await connectPhone(sessionId);
		big.socket.send("x".repeat(5_000));
		await expect.poll(() => big.closed?.code).toBe(1009);

		const flooder = await connectPhone(sessionId);
		for (let i = 0; i < 30; i++) flooder.socket.send(JSON.stringify({ type: "ping" }));
		await expect.poll(() => flooder.closed?.code).toBe(1008);
		expect(flooder.frames.filter((f) => f.type === "pong").length).toBeLessThanOrEqual(20);

		// The calm phone still gets live events.
		const mandateId = uniqueId("mio");
		await reportStage(sessionId, mandateId, 1, "active");
		await calm.waitForStage(mandateId, 1, "active");
		expect(calm.closed).toBeNull();
		calm.close();
	});

	it("caps the sockets of one session", async () => {
		const sessionId = uniqueId("cap");
		const phones: Phone[] = [];
		for (let i = 0; i < 20; i++) phones.push(await connectPhone(sessionId));
		const token = await mobileToken(sessionId);
		const refused = await api(`/api/sessions/${sessionId}/ws`, {
			headers: { Upgrade: "websocket", Authorization: `Bearer ${token}` },
		});
		expect(refused.status).toBe(429);
		expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("too_many_connections");
		for (const phone of phones) phone.close();
	});

	it("answers with security headers and no CORS for unknown origins", async () => {
		const response = await api("/api/sessions/x/progress", {
			headers: { ...SERVICE, Origin: "https://evil.example" },
		});
		expect(response.headers.get("access-control-allow-origin")).toBeNull();
		expect(response.headers.get("x-content-type-options")).toBe("nosniff");
		expect(response.headers.get("cache-control")).toBe("no-store");
		expect(response.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
	});
});
