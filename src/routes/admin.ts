import { Hono } from "hono";
import * as z from "zod/mini";
import { forbidden, fromHeader, identify } from "../auth/principal.ts";
import { type AppContext, type AppEnv, apiError, limitBody, readJson, validate } from "../http.ts";
import { Identifier } from "../protocol/common.ts";

/**
 * Operators' routes (ADMIN_TOKEN only). `PUT /tenants/:tenantId/gateway` registers where a tenant's
 * OpenClaw Gateway lives (issue 3); the tenant's Gateway DO reconnects to it. The token is stored
 * for the Gateway DO and never returned or logged.
 */
export const admin = new Hono<AppEnv>();

const GatewayUrl = z
	.string()
	.check(
		z.minLength(1),
		z.maxLength(2048),
		z.refine(isGatewayUrl, "must be an absolute ws://, wss://, http:// or https:// URL without credentials"),
	);
const GatewayRegistration = z.strictObject({
	url: GatewayUrl,
	token: z
		.string()
		.check(z.minLength(1), z.maxLength(4096), z.regex(/^[\x21-\x7e]+$/, "must be printable ASCII")),
});

function isGatewayUrl(value: string): boolean {
	try {
		const url = new URL(value);
		return (
			["ws:", "wss:", "http:", "https:"].includes(url.protocol) && url.username === "" && url.password === ""
		);
	} catch {
		return false;
	}
}

async function asAdmin(c: AppContext): Promise<Response | null> {
	const who = await identify(c, fromHeader(c));
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
	const updatedAt = new Date().toISOString();
	await c.env.DB.prepare(
		`INSERT INTO tenant_gateways (tenant_id, url, token, updated_at) VALUES (?, ?, ?, ?)
		 ON CONFLICT (tenant_id) DO UPDATE SET url = excluded.url, token = excluded.token, updated_at = excluded.updated_at`,
	)
		.bind(tenantId.value, body.value.url, body.value.token, updatedAt)
		.run();
	await c.env.GATEWAY.getByName(tenantId.value).gatewayChanged(tenantId.value);
	return c.json({ tenant_id: tenantId.value, url: body.value.url, updated_at: updatedAt });
});

admin.get("/tenants/:tenantId/gateway", async (c) => {
	const refused = await asAdmin(c);
	if (refused) return refused;
	const tenantId = validate(c, Identifier, c.req.param("tenantId"));
	if (!tenantId.ok) return tenantId.response;
	const row = await c.env.DB.prepare("SELECT url, updated_at FROM tenant_gateways WHERE tenant_id = ?")
		.bind(tenantId.value)
		.first<{ url: string; updated_at: string }>();
	if (!row) return apiError(c, 404, "not_found", "This tenant uses the default gateway.");
	return c.json({ tenant_id: tenantId.value, url: row.url, updated_at: row.updated_at });
});

admin.delete("/tenants/:tenantId/gateway", async (c) => {
	const refused = await asAdmin(c);
	if (refused) return refused;
	const tenantId = validate(c, Identifier, c.req.param("tenantId"));
	if (!tenantId.ok) return tenantId.response;
	const result = await c.env.DB.prepare("DELETE FROM tenant_gateways WHERE tenant_id = ?")
		.bind(tenantId.value)
		.run();
	if (result.meta.changes === 0)
		return apiError(c, 404, "not_found", "This tenant has no registered gateway.");
	await c.env.GATEWAY.getByName(tenantId.value).gatewayChanged(tenantId.value);
	return c.body(null, 204);
});
