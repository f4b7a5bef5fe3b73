import { Hono } from "hono";
import * as z from "zod/mini";
import { GATEWAY_TOKEN_KEY, gatewayKeyring, sealGatewayToken } from "../auth/gateway-token.ts";
import { forbidden, fromHeader, identify, notConfigured } from "../auth/principal.ts";
import { deleteTenantGateway, putTenantGateway, readTenantGateway } from "../d1/gateways.ts";
import { gatewayObjects } from "../durable/placement.ts";
import { type AppContext, type AppEnv, apiError, limitBody, readJson, validate } from "../http.ts";
import { log } from "../log.ts";
import { forgetGatewayPresence, gatewayUrlProblem } from "../openclaw/registry.ts";
import { Identifier } from "../protocol/common.ts";

/**
 * Operators' routes (ADMIN_TOKEN only). `PUT /tenants/:tenantId/gateway` registers where a tenant's
 * OpenClaw Gateway lives (issue 3); the tenant's Gateway DO reconnects to it. The token is stored
 * encrypted under GATEWAY_TOKEN_KEY (issue 12; without it, registering answers 503) for the Gateway
 * DO, and never returned or logged.
 */
export const admin = new Hono<AppEnv>();

const GatewayUrl = z.string().check(
	z.minLength(1),
	z.maxLength(2048),
	z.refine(
		(value) => gatewayUrlProblem(value) === null,
		"must be a wss:// URL (ws:// only on a loopback host) without credentials, query or fragment",
	),
);
const GatewayRegistration = z.strictObject({
	url: GatewayUrl,
	token: z
		.string()
		.check(z.minLength(1), z.maxLength(4096), z.regex(/^[\x21-\x7e]+$/, "must be printable ASCII")),
});

async function asAdmin(c: AppContext): Promise<Response | null> {
	const who = await identify(c, fromHeader(c), ["admin"]);
	if (!who.ok) return who.response;
	return who.principal.kind === "admin" ? null : forbidden(c, "Only operators manage tenant gateways.");
}

admin.put("/tenants/:tenantId/gateway", limitBody(8_192), async (c) => {
	const refused = await asAdmin(c);
	if (refused) return refused;
	const tenantId = validate(c, Identifier, c.req.param("tenantId"));
	if (!tenantId.ok) return tenantId.response;
	const body = await readJson(c, GatewayRegistration);
	if (!body.ok) return body.response;
	const keyring = await gatewayKeyring(c.env.GATEWAY_TOKEN_KEY);
	if (!keyring.ok) {
		// Set but not base64 of 32 bytes: say so (never the value), beside the "missing" line.
		if (c.env.GATEWAY_TOKEN_KEY?.trim())
			log("error", "setting malformed", { setting: GATEWAY_TOKEN_KEY, why: keyring.problem });
		return notConfigured(c, "tenant gateways", [GATEWAY_TOKEN_KEY]);
	}
	const sealedToken = await sealGatewayToken(keyring.keys, tenantId.value, body.value.token);
	const updatedAt = new Date().toISOString();
	await putTenantGateway(c.env.DB, tenantId.value, { url: body.value.url, sealedToken }, updatedAt);
	forgetGatewayPresence(tenantId.value);
	await gatewayObjects(c.env).getByName(tenantId.value).gatewayChanged(tenantId.value);
	return c.json({ tenant_id: tenantId.value, url: body.value.url, updated_at: updatedAt });
});

admin.get("/tenants/:tenantId/gateway", async (c) => {
	const refused = await asAdmin(c);
	if (refused) return refused;
	const tenantId = validate(c, Identifier, c.req.param("tenantId"));
	if (!tenantId.ok) return tenantId.response;
	// Read as the Gateway DO reads it, so a GET re-encrypts a plain or older-key token under the first
	// GATEWAY_TOKEN_KEY (how an operator completes a key rotation for idle tenants); never returned.
	const row = await readTenantGateway(c.env.DB, c.env.GATEWAY_TOKEN_KEY, tenantId.value);
	if (!row) return apiError(c, 404, "not_found", "This tenant uses the default gateway.");
	return c.json({ tenant_id: tenantId.value, url: row.url, updated_at: row.updated_at });
});

admin.delete("/tenants/:tenantId/gateway", async (c) => {
	const refused = await asAdmin(c);
	if (refused) return refused;
	const tenantId = validate(c, Identifier, c.req.param("tenantId"));
	if (!tenantId.ok) return tenantId.response;
	if (!(await deleteTenantGateway(c.env.DB, tenantId.value)))
		return apiError(c, 404, "not_found", "This tenant has no registered gateway.");
	forgetGatewayPresence(tenantId.value);
	await gatewayObjects(c.env).getByName(tenantId.value).gatewayChanged(tenantId.value);
	return c.body(null, 204);
});
