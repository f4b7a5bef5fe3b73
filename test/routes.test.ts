import { createExecutionContext, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import app from "../src/index.ts";
import {
	ADMIN,
	api,
	connectResponse,
	execute,
	mandateBody,
	mobileToken,
	postJson,
	progressOf,
	refusal,
	reportStage,
	SERVICE,
	sessionStub,
	simCalls,
	uniqueId,
} from "./helpers.ts";
import { TEST_SECRETS } from "./secrets.ts";

async function errorOf(response: Response) {
	const body = (await response.json()) as { error: { code: string; message: string } };
	expect(body.error.message.length).toBeGreaterThan(0);
	return { status: response.status, code: body.error.code };
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

describe("routes: auth and bad input", () => {
	it("answers health checks and unknown routes", async () => {
		expect(await (await api("/health")).json()).toEqual({ ok: true });
		expect(await errorOf(await api("/api/nope"))).toEqual({ status: 404, code: "not_found" });
	});

	describe("GET /api/sessions/:id/ws", () => {
		it("refuses before any Durable Object work", async () => {
			const sessionId = uniqueId("sess");
			const other = await mobileToken(uniqueId("sess"));
			const expired = await mobileToken(sessionId, { expiresIn: Math.floor(Date.now() / 1000) - 3600 });
			const wrongKey = await mobileToken(sessionId, { secret: "not-the-secret" });
			const unsigned = `${btoa(JSON.stringify({ alg: "none", typ: "JWT" }))}.${btoa(
				JSON.stringify({ sid: sessionId, sub: "u", exp: Math.floor(Date.now() / 1000) + 3600 }),
			)}.`.replaceAll("=", "");
			const cases: Array<[Response, number, string]> = [
				[await api(`/api/sessions/${sessionId}/ws`), 426, "upgrade_required"],
				[await connectResponse("bad id!", "", bearer(await mobileToken("bad id!"))), 400, "invalid_request"],
			];
			for (const [response, status, code] of cases) expect(await errorOf(response)).toEqual({ status, code });
			// A refused upgrade is accepted and closed at once, so a browser or phone can read why.
			const refused: Array<[Response, number, string]> = [
				[await connectResponse(sessionId), 4401, "unauthorized"],
				[await connectResponse(sessionId, "", bearer("garbage")), 4401, "unauthorized"],
				[await connectResponse(sessionId, "", bearer(unsigned)), 4401, "unauthorized"],
				[await connectResponse(sessionId, "", bearer(wrongKey)), 4401, "unauthorized"],
				[await connectResponse(sessionId, "", bearer(expired)), 4401, "token_expired"],
				[await connectResponse(sessionId, "", bearer(other)), 4403, "token is not for this session"],
				[await connectResponse(sessionId, "", SERVICE), 4403, "token is not for this session"],
			];
			for (const [response, code, reason] of refused)
				expect(await refusal(response)).toEqual({ code, reason });
			// None of them woke the session: it has never been bound to anybody.
			expect(
				await runInDurableObject(sessionStub(sessionId), (_i, state) =>
					state.storage.sql.exec("SELECT 1 FROM ml_meta WHERE key = 'session_id'").toArray(),
				),
			).toEqual([]);
		});

		it("accepts the token as ?token= for clients that cannot set headers", async () => {
			const sessionId = uniqueId("sess");
			const response = await connectResponse(sessionId, `?token=${await mobileToken(sessionId)}`);
			expect(response.status).toBe(101);
			response.webSocket?.accept();
			response.webSocket?.close(1000);
		});
	});

	describe("POST /api/sessions/:id/stages", () => {
		it("takes only the pipeline's service token", async () => {
			const sessionId = uniqueId("sess");
			const body = { mandate_id: uniqueId("mio"), stage: 1, status: "active" };
			expect(await errorOf(await postJson(`/api/sessions/${sessionId}/stages`, body, {}))).toEqual({
				status: 401,
				code: "unauthorized",
			});
			expect(
				await errorOf(await postJson(`/api/sessions/${sessionId}/stages`, body, bearer("wrong"))),
			).toEqual({ status: 401, code: "unauthorized" });
			const mobile = bearer(await mobileToken(sessionId));
			expect(await errorOf(await postJson(`/api/sessions/${sessionId}/stages`, body, mobile))).toEqual({
				status: 403,
				code: "forbidden",
			});
			expect(await errorOf(await postJson(`/api/sessions/${sessionId}/stages`, body, ADMIN))).toEqual({
				status: 403,
				code: "forbidden",
			});
			expect((await progressOf(sessionId)).mandates).toEqual([]);
		});

		it("refuses malformed reports with a 4xx and changes nothing", async () => {
			const sessionId = uniqueId("sess");
			const mandateId = uniqueId("mio");
			expect((await reportStage(sessionId, mandateId, 3, "completed")).status).toBe(200);
			const before = await progressOf(sessionId);
			const bad: Array<[unknown, number]> = [
				["{not json", 400],
				[[], 400],
				[{ mandate_id: mandateId, stage: 6, status: "completed" }, 400],
				[{ mandate_id: mandateId, stage: 0, status: "completed" }, 400],
				[{ mandate_id: mandateId, stage: 2, status: "created" }, 400],
				[{ mandate_id: mandateId, stage: 2, status: "completed", extra: 1 }, 400],
				[{ mandate_id: "", stage: 2, status: "completed" }, 400],
				[{ mandate_id: "x".repeat(200), stage: 2, status: "completed" }, 400],
				[{ mandate_id: mandateId, stage: 2, status: "completed", message: "m".repeat(10_000) }, 413],
				[{ mandate_id: mandateId, stage: 3, status: "active" }, 409],
				[{ mandate_id: mandateId, stage: 1, status: "failed" }, 409],
			];
			for (const [body, status] of bad) {
				const response = await postJson(`/api/sessions/${sessionId}/stages`, body);
				expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(status);
				await errorOf(response);
			}
			expect(await progressOf(sessionId)).toEqual(before);
		});

		it("treats a repeated report as a no-op", async () => {
			const sessionId = uniqueId("sess");
			const mandateId = uniqueId("mio");
			await reportStage(sessionId, mandateId, 2, "active");
			const again = await reportStage(sessionId, mandateId, 2, "active");
			expect(await again.json()).toEqual({
				mandate_id: mandateId,
				stage: 2,
				status: "active",
				changed: false,
			});
		});
	});

	describe("POST /api/mandate/execute", () => {
		it("takes only the pipeline's service token: a phone only watches", async () => {
			const sessionId = uniqueId("sess");
			const body = mandateBody(sessionId);
			const post = (headers: Record<string, string>) => postJson("/api/mandate/execute", body, headers);
			const before = (await simCalls()).dispatch;
			expect(await errorOf(await post({}))).toEqual({ status: 401, code: "unauthorized" });
			expect(await errorOf(await post(ADMIN))).toEqual({ status: 403, code: "forbidden" });
			expect(await errorOf(await post(bearer(await mobileToken(uniqueId("sess")))))).toEqual({
				status: 403,
				code: "forbidden",
			});
			const otherTenant = await mobileToken(sessionId, { tenantId: "tenant_other" });
			expect(await errorOf(await post(bearer(otherTenant)))).toEqual({ status: 403, code: "forbidden" });
			// Issue 14: even a phone of this very session and tenant cannot send a mandate.
			const ownTenant = await mobileToken(sessionId, { tenantId: body.tenant_id });
			expect(await errorOf(await post(bearer(ownTenant)))).toEqual({ status: 403, code: "forbidden" });
			expect((await progressOf(sessionId)).mandates).toEqual([]);
			expect((await simCalls()).dispatch).toBe(before);

			expect((await post(SERVICE)).status).toBe(200);
		});

		it("refuses malformed mandates with 400 and dispatches nothing", async () => {
			const sessionId = uniqueId("sess");
			const valid = mandateBody(sessionId);
			const { session_id: _s, ...withoutSession } = valid;
			const bad: unknown[] = [
				"nope",
				{},
				withoutSession,
				{ ...valid, intent: "" },
				{ ...valid, intent: "x".repeat(5_000) },
				{ ...valid, tenant_id: "a/b" },
				{ ...valid, delivery_channels: "email" },
				{ ...valid, delivery_channels: Array.from({ length: 50 }, () => "email") },
				{ ...valid, generated_skills: {} },
			];
			for (const body of bad) {
				const response = await postJson("/api/mandate/execute", body);
				expect(response.status, JSON.stringify(body).slice(0, 80)).toBe(400);
				await errorOf(response);
			}
			expect((await progressOf(sessionId)).mandates).toEqual([]);
		});
	});

	describe("GET /api/sessions/:id/progress", () => {
		it("is readable by the session's phone and the pipeline only", async () => {
			const sessionId = uniqueId("sess");
			expect(
				(await api(`/api/sessions/${sessionId}/progress`, { headers: bearer(await mobileToken(sessionId)) }))
					.status,
			).toBe(200);
			expect((await api(`/api/sessions/${sessionId}/progress`, { headers: SERVICE })).status).toBe(200);
			const other = bearer(await mobileToken(uniqueId("sess")));
			expect(await errorOf(await api(`/api/sessions/${sessionId}/progress`, { headers: other }))).toEqual({
				status: 403,
				code: "forbidden",
			});
			expect(await errorOf(await api(`/api/sessions/${sessionId}/progress`))).toEqual({
				status: 401,
				code: "unauthorized",
			});
		});
	});

	describe("GET /api/executions/:id", () => {
		it("returns the record, stages and audit timeline to the pipeline", async () => {
			const sessionId = uniqueId("sess");
			const body = mandateBody(sessionId);
			await reportStage(sessionId, body.mandate_id, 1, "active");
			const { json } = await execute(body);
			const response = await api(`/api/executions/${json.execution_id}`, { headers: SERVICE });
			expect(response.status).toBe(200);
			const record = (await response.json()) as {
				execution: Record<string, unknown>;
				stages: Array<{ stage: number; status: string }>;
				timeline: Array<{ event: string; detail: unknown }>;
			};
			expect(record.execution).toMatchObject({
				execution_id: json.execution_id,
				session_id: sessionId,
				mandate_id: body.mandate_id,
				tenant_id: body.tenant_id,
				state: "running",
			});
			expect(record.stages.map((s) => `${s.stage}:${s.status}`)).toEqual([
				"1:completed",
				"2:completed",
				"3:completed",
				"4:completed",
				"5:completed",
				"6:completed",
				"7:completed",
				"8:completed",
				"9:active",
			]);
			const events = record.timeline.map((t) => t.event);
			expect(events[0]).toBe("stage");
			expect(events).toContain("dispatch_requested");
			expect(events).toContain("dispatched");
		});

		it("is for the pipeline and operators only, and answers 404/400 for unknown or malformed ids", async () => {
			expect(await errorOf(await api("/api/executions/exec_unknown", { headers: SERVICE }))).toEqual({
				status: 404,
				code: "not_found",
			});
			expect(await errorOf(await api("/api/executions/exec_unknown", { headers: ADMIN }))).toEqual({
				status: 404,
				code: "not_found",
			});
			expect(await errorOf(await api("/api/executions/%20bad", { headers: SERVICE }))).toEqual({
				status: 400,
				code: "invalid_request",
			});
			const mobile = bearer(await mobileToken(uniqueId("sess")));
			expect(await errorOf(await api("/api/executions/exec_unknown", { headers: mobile }))).toEqual({
				status: 403,
				code: "forbidden",
			});
		});
	});

	describe("missing configuration", () => {
		it("refuses the routes that need a missing secret with 503, never runs open", async () => {
			const call = (path: string, init: RequestInit, overrides: Partial<Env>) =>
				app.fetch(
					new Request(`https://progress.test${path}`, init),
					{ ...env, ...overrides },
					createExecutionContext(),
				);
			const noAuth = { SERVICE_TOKEN: undefined, ADMIN_TOKEN: undefined, SESSION_TOKEN_SECRET: undefined };
			expect(await errorOf(await call("/api/sessions/s1/progress", { headers: SERVICE }, noAuth))).toEqual({
				status: 503,
				code: "not_configured",
			});
			const hook = await call(
				"/api/dispatch/delivery-webhook",
				{ method: "POST", body: "{}" },
				{ WEBHOOK_SECRET: undefined },
			);
			expect(await errorOf(hook)).toEqual({ status: 503, code: "not_configured" });
			const execute = await call(
				"/api/mandate/execute",
				{ method: "POST", headers: SERVICE, body: JSON.stringify(mandateBody("s1")) },
				{ OBEGEE_API_TOKEN: undefined },
			);
			expect(await errorOf(execute)).toEqual({ status: 503, code: "not_configured" });
			// A missing service token does not open the route to anyone: 503, never a silent 401.
			const stages = await call(
				"/api/sessions/s1/stages",
				{ method: "POST", headers: bearer(TEST_SECRETS.SERVICE_TOKEN), body: "{}" },
				{ SERVICE_TOKEN: undefined },
			);
			expect(await errorOf(stages)).toEqual({ status: 503, code: "not_configured" });
		});

		it("answers 503 and logs the missing setting by name when any one secret is missing", async () => {
			const call = (path: string, init: RequestInit, overrides: Partial<Env>) =>
				app.fetch(
					new Request(`https://progress.test${path}`, init),
					{ ...env, ...overrides },
					createExecutionContext(),
				);
			const logged: string[] = [];
			const spy = vi.spyOn(console, "error").mockImplementation((line: unknown) => {
				logged.push(String(line));
			});
			try {
				const phone = bearer(await mobileToken("s1"));
				const cases: Array<[string, RequestInit, keyof Env]> = [
					["/api/mandate/execute", { method: "POST", headers: SERVICE, body: "{}" }, "SERVICE_TOKEN"],
					["/api/sessions/s1/stages", { method: "POST", headers: SERVICE, body: "{}" }, "SERVICE_TOKEN"],
					["/api/admin/tenants/t1/gateway", { headers: ADMIN }, "ADMIN_TOKEN"],
					["/api/devices", { headers: phone }, "SESSION_TOKEN_SECRET"],
					["/api/sessions/s1/progress", { headers: phone }, "SESSION_TOKEN_SECRET"],
					["/api/demo/session", { method: "POST" }, "SESSION_TOKEN_SECRET"],
					["/api/dispatch/delivery-webhook", { method: "POST", body: "{}" }, "WEBHOOK_SECRET"],
				];
				for (const [path, init, setting] of cases) {
					logged.length = 0;
					const response = await call(path, init, { [setting]: undefined, DEMO_ROUTES: "true" });
					expect(await errorOf(response), `${path} without ${setting}`).toEqual({
						status: 503,
						code: "not_configured",
					});
					expect(
						logged.some((line) => (JSON.parse(line) as { missing?: string[] }).missing?.includes(setting)),
						`the log names ${setting}: ${logged.join(" | ")}`,
					).toBe(true);
				}
				// The secrets themselves never appear in the log.
				expect(logged.join(" ")).not.toContain(TEST_SECRETS.SERVICE_TOKEN);
			} finally {
				spy.mockRestore();
			}
		});
	});
});

type Env = Cloudflare.Env;
