import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../src/index.ts";
import { mobileToken, progressOf, uniqueId } from "./helpers.ts";

// issue 5: the demo-only routes exist only where DEMO_ROUTES is "true" — never in the deployed
// Worker (wrangler.toml says "false", which is what every other test runs with).

async function call(path: string, init: RequestInit = {}, demoRoutes?: string): Promise<Response> {
	const ctx = createExecutionContext();
	const bindings = demoRoutes === undefined ? env : { ...env, DEMO_ROUTES: demoRoutes };
	const response = await worker.fetch(new Request(`https://progress.test${path}`, init), bindings, ctx);
	await waitOnExecutionContext(ctx);
	return response;
}

function post(path: string, body: unknown, token: string | null, demoRoutes = "true"): Promise<Response> {
	return call(
		path,
		{
			method: "POST",
			headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
			body: JSON.stringify(body),
		},
		demoRoutes,
	);
}

async function demoSession(): Promise<{ session_id: string; token: string }> {
	const response = await call("/api/demo/session", { method: "POST" }, "true");
	expect(response.status).toBe(201);
	return (await response.json()) as { session_id: string; token: string };
}

describe("demo routes", () => {
	it("answer 404 like any unknown route unless DEMO_ROUTES is exactly 'true'", async () => {
		expect(env.DEMO_ROUTES).toBe("false");
		for (const flag of [undefined, "false", "1", "TRUE", ""]) {
			for (const [method, path] of [
				["POST", "/api/demo/session"],
				["POST", "/api/demo/mandates"],
				["GET", "/api/demo/scenarios"],
			] as const) {
				const response = await call(path, { method }, flag);
				expect(response.status, `${method} ${path} with DEMO_ROUTES=${flag}`).toBe(404);
				expect(await response.json()).toEqual({ error: { code: "not_found", message: "No such route." } });
			}
		}
	});

	it("mint a session whose token opens that session's socket and reads its progress", async () => {
		const session = await demoSession();
		expect(session.session_id).toMatch(/^demo_[0-9a-f]{16}$/);
		const progress = await call(`/api/sessions/${session.session_id}/progress`, {
			headers: { Authorization: `Bearer ${session.token}` },
		});
		expect(progress.status).toBe(200);
		const socket = await call(`/api/sessions/${session.session_id}/ws?token=${session.token}`, {
			headers: { Upgrade: "websocket" },
		});
		expect(socket.status).toBe(101);
		socket.webSocket?.accept();
		socket.webSocket?.close(1000, "done");
	});

	it("start a mandate: stages 1–3 reported, then dispatched in the chosen scenario", async () => {
		const session = await demoSession();
		const response = await post(
			"/api/demo/mandates",
			{ session_id: session.session_id, intent: "Book a table for two", scenario: "slow" },
			session.token,
		);
		expect(response.status).toBe(202);
		const started = (await response.json()) as { mandate_id: string; execution_id: string };
		expect(started.execution_id).toMatch(/^exec_/);
		const [mandate] = (await progressOf(session.session_id)).mandates;
		expect(mandate).toMatchObject({
			mandate_id: started.mandate_id,
			intent: "Book a table for two",
			state: "running",
		});
		expect(mandate?.stages.map((s) => s.status)).toEqual([
			...Array(8).fill("completed"),
			"active",
			"pending",
		]);
	});

	it("offer every simulator scenario of issue 5, gateway drop and agent error included", async () => {
		const response = await call("/api/demo/scenarios", {}, "true");
		expect(response.status).toBe(200);
		const { scenarios } = (await response.json()) as { scenarios: { id: string; label: string }[] };
		expect(scenarios.map((s) => s.id)).toEqual(
			expect.arrayContaining([
				"happy",
				"slow",
				"invalid_tenant",
				"flaky",
				"no_webhook",
				"early_webhook",
				"duplicate_webhook",
				"gateway_drop",
				"agent_error",
			]),
		);
		for (const scenario of ["gateway_drop", "agent_error"]) {
			const session = await demoSession();
			const started = await post(
				"/api/demo/mandates",
				{ session_id: session.session_id, intent: "Check the build", scenario },
				session.token,
			);
			expect(started.status, scenario).toBe(202);
			const [mandate] = (await progressOf(session.session_id)).mandates;
			expect(mandate?.state).toBe("running");
		}
	});

	it("show an invalid tenant as stage 6 failed with the friendly message, and answer it too", async () => {
		const session = await demoSession();
		const response = await post(
			"/api/demo/mandates",
			{ session_id: session.session_id, intent: "Pay the invoice", scenario: "invalid_tenant" },
			session.token,
		);
		expect(response.status).toBe(422);
		const body = (await response.json()) as { mandate_id: string; error: { message: string } };
		const [mandate] = (await progressOf(session.session_id)).mandates;
		expect(mandate?.mandate_id).toBe(body.mandate_id);
		expect(mandate?.stages[5]).toMatchObject({ status: "failed", message: body.error.message });
		expect(mandate?.error).toBe(body.error.message);
	});

	it("refuse other sessions' tokens, no token, and unknown scenarios — changing nothing", async () => {
		const session = await demoSession();
		const body = { session_id: session.session_id, intent: "x", scenario: "happy" };
		expect((await post("/api/demo/mandates", body, null)).status).toBe(401);
		expect((await post("/api/demo/mandates", body, await mobileToken(uniqueId("sess")))).status).toBe(403);
		const unknown = await post("/api/demo/mandates", { ...body, scenario: "meteor" }, session.token);
		expect(unknown.status).toBe(400);
		expect((await progressOf(session.session_id)).mandates).toEqual([]);
	});
});
