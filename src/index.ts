import { Hono } from "hono";
import { timing } from "./config.ts";
import { SWEEP_BATCH, sweepD1 } from "./d1/erasure.ts";
import { meteredEnv, WorkMeter } from "./durable/work-meter.ts";
import { type AppEnv, apiError } from "./http.ts";
import { corsPolicy, securityHeaders } from "./http-policy.ts";
import { log, withLogContext } from "./log.ts";
import { admin } from "./routes/admin.ts";
import { demo } from "./routes/demo.ts";
import { devices } from "./routes/devices.ts";
import { erasure } from "./routes/erasure.ts";
import { executions } from "./routes/executions.ts";
import { mandates } from "./routes/mandates.ts";
import { protocolDocs } from "./routes/protocol-docs.ts";
import { push } from "./routes/push.ts";
import { sessions } from "./routes/sessions.ts";
import { tokens } from "./routes/tokens.ts";
import { webhooks } from "./routes/webhooks.ts";

export { GatewayDO } from "./openclaw/gateway-do.ts";
export { PushCredentialsDO } from "./push/credentials.ts";
export { SessionDO } from "./session/session-do.ts";

/**
 * The Worker: routing, authentication and validation only (DESIGN.md, "Parts and their rooms");
 * everything stateful happens in the Session Durable Object.
 */
const app = new Hono<AppEnv>();

// Every log line of a request carries its id (src/log.ts); the caller gets it as X-Request-Id.
app.use(async (c, next) => {
	const requestId = c.req.header("cf-ray") ?? crypto.randomUUID();
	await withLogContext({ request_id: requestId }, async () => {
		await next();
	});
	c.header("X-Request-Id", requestId);
});
// With METRICS_LOG on (the benchmark), each request's work is counted and logged (src/durable/work-meter.ts).
let meter: WorkMeter | null = null;
app.use((c, next) => {
	meter ??= new WorkMeter(c.env, "worker", () => ({}));
	return meter.run(`${c.req.method} ${c.req.path}`, next);
});
app.use(securityHeaders());
app.use("/api/*", corsPolicy());

app.get("/health", (c) => c.json({ ok: true }));
app.route("/api/sessions", tokens); // POST /:sessionId/tokens (issue 12); before the session routes
app.route("/api/sessions", sessions);
app.route("/api/mandate", mandates);
app.route("/api/dispatch", webhooks);
app.route("/api/executions", executions);
app.route("/api/admin", admin);
app.route("/api/admin", erasure);
app.route("/api/devices", devices);
app.route("/api/push", push);
// GET /openapi.json and /asyncapi.json: the protocol, generated from the zod schemas (issue 15).
app.route("/", protocolDocs);
// Demo-only (issue 5): 404 unless DEMO_ROUTES === "true", checked per request inside the module.
app.route("/api/demo", demo);

app.notFound((c) => apiError(c, 404, "not_found", "No such route."));
app.onError((error, c) => {
	// Never a stack trace or internal detail in the answer; the log keeps the error for the operator.
	log("error", "unhandled error", { path: c.req.path, error: String(error) });
	return apiError(c, 500, "internal_error", "Something went wrong on our side. Please try again.");
});

/**
 * The Cron Trigger (wrangler.toml `[triggers]`): the D1 retention sweep, in bounded batches (issue 12).
 * Each Session DO deletes its own expired mandates from its alarm; this sweeps D1's copies.
 */
export async function sweepRetention(env: AppEnv["Bindings"], now: number): Promise<Record<string, number>> {
	const cutoff = now - timing(env).retentionMs;
	const total: Record<string, number> = {};
	for (let round = 0; round < MAX_SWEEP_ROUNDS; round++) {
		const removed = await sweepD1(env.DB, cutoff);
		for (const [table, n] of Object.entries(removed)) total[table] = (total[table] ?? 0) + n;
		if (Object.values(removed).every((n) => n < SWEEP_BATCH)) break;
	}
	log("info", "retention sweep", { cutoff: new Date(cutoff).toISOString(), removed: total });
	return total;
}
/** Batches per table in one Cron run; what is left waits for the next run. */
const MAX_SWEEP_ROUNDS = 20;

export default {
	fetch: (request: Request, env: AppEnv["Bindings"], ctx: ExecutionContext) =>
		app.fetch(request, meteredEnv(env), ctx),
	async scheduled(controller, env, ctx) {
		ctx.waitUntil(sweepRetention(env, controller.scheduledTime));
	},
} satisfies ExportedHandler<AppEnv["Bindings"]>;
