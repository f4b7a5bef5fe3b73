import { Hono } from "hono";
import { notConfigured } from "../auth/principal.ts";
import { verifyWebhook } from "../auth/webhook-signature.ts";
import { isErasedExecution } from "../d1/erasure.ts";
import { forgetExecution, sessionOfExecution } from "../d1/executions.ts";
import { type AppEnv, apiError, limitBody, validate } from "../http.ts";
import { log } from "../log.ts";
import { DeliveryWebhook } from "../protocol/obegee.ts";
import { rpcResponse, sessionStub } from "./rpc.ts";

/**
 * ObeGee's delivery webhook (seed-spec.md, "Webhook"). The signature is checked before anything
 * else; the body is read by the same parser as a status poll's answer (src/protocol/obegee.ts:
 * strict about status and execution id, generous about display fields); the execution's session is
 * found in D1; the Session DO applies the outcome once.
 */
export const webhooks = new Hono<AppEnv>();

webhooks.post("/delivery-webhook", limitBody(64 * 1024), async (c) => {
	const secret = c.env.WEBHOOK_SECRET;
	if (!secret) return notConfigured(c, "delivery webhooks", ["WEBHOOK_SECRET"]);
	const body = await c.req.text();
	let verified: Awaited<ReturnType<typeof verifyWebhook>>;
	try {
		verified = await verifyWebhook(
			{
				id: c.req.header("webhook-id") ?? null,
				timestamp: c.req.header("webhook-timestamp") ?? null,
				signature: c.req.header("webhook-signature") ?? null,
			},
			body,
			secret,
		);
	} catch {
		return notConfigured(c, "delivery webhooks (malformed)", ["WEBHOOK_SECRET"]);
	}
	if (!verified.ok) {
		const messages = {
			missing_headers: "Missing or malformed webhook-id, webhook-timestamp or webhook-signature header.",
			stale_timestamp: "The webhook timestamp is outside the 5-minute tolerance.",
			bad_signature: "The webhook signature does not match.",
		};
		return apiError(c, 401, "invalid_signature", messages[verified.reason]);
	}
	let raw: unknown;
	try {
		raw = JSON.parse(body);
	} catch {
		return apiError(c, 400, "invalid_json", "The body must be valid JSON.");
	}
	const payload = validate(c, DeliveryWebhook, raw);
	if (!payload.ok) return payload.response;

	let sessionId: string | null;
	try {
		sessionId = await sessionOfExecution(c.env.DB, payload.value.execution_id);
	} catch (error) {
		// Not knowing is not "unknown": 503 makes ObeGee retry once the lookup works again.
		log("error", "execution owner lookup failed", { error: String(error) });
		return apiError(
			c,
			503,
			"lookup_unavailable",
			"The execution could not be looked up just now; retry later.",
		);
	}
	// The owner is stored before execute answers (d1/owners.ts): unknown here really is unknown —
	// unless the execution was erased (issue 12): then ObeGee is told it arrived, and it is stored nowhere.
	const executionId = payload.value.execution_id;
	if (!sessionId) {
		if (await isErasedExecution(c.env.DB, executionId)) return c.json({ outcome: "erased" });
		return apiError(c, 404, "unknown_execution", "No execution with this id is known.");
	}
	const stub = sessionStub(c, sessionId);
	const result = await stub.deliverWebhook(sessionId, verified.webhookId, payload.value, body);
	// This isolate still remembered the owner of an execution erased since.
	if (
		!result.ok &&
		result.error.code === "unknown_execution" &&
		(await isErasedExecution(c.env.DB, executionId))
	) {
		forgetExecution(executionId);
		return c.json({ outcome: "erased" });
	}
	return rpcResponse(c, result);
});
