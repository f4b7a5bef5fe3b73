import { Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import * as z from "zod/mini";
import { mintMobileToken } from "../auth/mobile-token.ts";
import {
	forbidden,
	fromHeader,
	identify,
	mobileMaySee,
	notConfigured,
	obegeeSettingsMissing,
} from "../auth/principal.ts";
import { currentSecret } from "../auth/secret-values.ts";
import { type AppEnv, apiError, limitBody, readJson } from "../http.ts";
import { Identifier, text } from "../protocol/common.ts";
import { sessionStub } from "./rpc.ts";

/**
 * Demo-only routes for the pipeline card page (issue 5): mint a session token and start a mandate
 * in a simulator scenario, using this Worker's own secrets. They exist only where the local config
 * sets `DEMO_ROUTES = "true"` (`npm start`, the browser test); everywhere else, the deployed Worker
 * included, they answer 404 like any unknown route. The gate is checked per request, inside this
 * module, so the routes cannot be mounted without it.
 */
export const demo = new Hono<AppEnv>();

/**
 * The simulator scenarios the page offers (`dimensions.sim_scenario`): every one in sim/scenarios.ts
 * but the test-only `manual`, with a label. The Worker imports nothing from sim/, so the list is
 * repeated here and test/demo-scenarios.test.ts checks that the two agree.
 */
export const DEMO_SCENARIOS = [
	{ id: "happy", label: "Happy path (6 s)" },
	{ id: "slow", label: "Slow (45 s)" },
	{ id: "invalid_tenant", label: "Invalid tenant" },
	{ id: "flaky", label: "Flaky ObeGee (5xx, timeouts)" },
	{ id: "no_webhook", label: "Webhook never arrives" },
	{ id: "early_webhook", label: "Webhook before first poll" },
	{ id: "duplicate_webhook", label: "Duplicate webhook" },
	{ id: "gateway_drop", label: "Gateway drops mid-run" },
	{ id: "agent_error", label: "Agent error (retried)" },
	{ id: "fail", label: "Execution fails" },
] as const;
type DemoScenarioId = (typeof DEMO_SCENARIOS)[number]["id"];

const DEMO_TOKEN_TTL_SECONDS = 2 * 60 * 60;
const DEMO_TENANT = "tenant_demo";

const StartMandate = z.strictObject({
	session_id: Identifier,
	intent: text(500, 1),
	scenario: z.enum(DEMO_SCENARIOS.map((s) => s.id) as [DemoScenarioId, ...DemoScenarioId[]]),
});

demo.use("*", async (c, next) => {
	if (c.env.DEMO_ROUTES !== "true") return c.notFound();
	await next();
});

demo.get("/scenarios", (c) => c.json({ scenarios: DEMO_SCENARIOS }));

/** A fresh session and a mobile token for it, as the MyndLens app would get them at sign-in. */
demo.post("/session", async (c) => {
	// The first secret signs (a rotation lists several); none at all is a missing setting.
	const secret = currentSecret(c.env.SESSION_TOKEN_SECRET);
	if (!secret) return notConfigured(c, "demo sessions", ["SESSION_TOKEN_SECRET"]);
	const sessionId = `demo_${randomHex(8)}`;
	const expiresAt = Math.floor(Date.now() / 1000) + DEMO_TOKEN_TTL_SECONDS;
	const token = await mintMobileToken(secret, { sid: sessionId, sub: "demo_user", expiresAt });
	return c.json(
		{
			session_id: sessionId,
			token,
			expires_at: new Date(expiresAt * 1000).toISOString(),
			scenarios: DEMO_SCENARIOS,
		},
		201,
	);
});

/**
 * Plays the MyndLens pipeline for one spoken intent: stages 1–3 as the pipeline would report them,
 * then execute (stage 4 onwards, dispatched to the simulator in the chosen scenario). Called with
 * the page's own mobile token, so a page can only start mandates in its own session.
 */
demo.post("/mandates", limitBody(8 * 1024), async (c) => {
	const who = await identify(c, fromHeader(c), ["mobile"]);
	if (!who.ok) return who.response;
	const body = await readJson(c, StartMandate);
	if (!body.ok) return body.response;
	const { session_id, intent, scenario } = body.value;
	if (!mobileMaySee(who.principal, session_id)) return forbidden(c, "This token is not for this session.");
	const missing = obegeeSettingsMissing(c.env);
	if (missing.length > 0) return notConfigured(c, "mandate execution", missing);

	const mandateId = `mio_demo_${randomHex(6)}`;
	const session = sessionStub(c, session_id);
	for (const stage of [1, 2, 3]) {
		const reported = await session.reportStage(session_id, {
			mandate_id: mandateId,
			stage,
			status: "completed",
		});
		if (!reported.ok) return apiError(c, 409, reported.error.code, reported.error.message);
	}
	const executed = await session.execute({
		session_id,
		mandate_id: mandateId,
		tenant_id: DEMO_TENANT,
		intent,
		dimensions: { sim_scenario: scenario },
		generated_skills: [],
		delivery_channels: ["app"],
	});
	if (!executed.ok) {
		// The card already shows the failed stage; the answer names the mandate so the page can match it.
		const { status, code, message } = executed.error;
		return c.json({ mandate_id: mandateId, error: { code, message } }, status as ContentfulStatusCode);
	}
	return c.json({ mandate_id: mandateId, ...executed.value }, 202);
});

function randomHex(bytes: number): string {
	return Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) =>
		b.toString(16).padStart(2, "0"),
	).join("");
}
