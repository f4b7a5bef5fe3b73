import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, api, SERVICE, uniqueId } from "./helpers.ts";
import { eventually, gatewayStub } from "./openclaw-helpers.ts";

/** `PUT /api/admin/tenants/:tenantId/gateway`: operators point a tenant at its gateway (issue 3). */

const put = (tenantId: string, body: unknown, headers: Record<string, string> = ADMIN) =>
	api(`/api/admin/tenants/${tenantId}/gateway`, {
		method: "PUT",
		headers: { "content-type": "application/json", ...headers },
		body: typeof body === "string" ? body : JSON.stringify(body),
	});

describe("tenant gateway registry", () => {
	it("needs ADMIN_TOKEN: 401 without a token, 403 with the service token", async () => {
		const tenantId = uniqueId("tenant");
		expect((await put(tenantId, { url: "wss://gw.example", token: "t" }, {})).status).toBe(401);
		expect((await put(tenantId, { url: "wss://gw.example", token: "t" }, SERVICE)).status).toBe(403);
	});

	it.each([
		["not JSON", "{"],
		["a bad scheme", { url: "ftp://gw.example", token: "t" }],
		["credentials in the URL", { url: "wss://user:pw@gw.example", token: "t" }],
		["an empty token", { url: "wss://gw.example", token: "" }],
		["an unknown field", { url: "wss://gw.example", token: "t", extra: 1 }],
		["a huge URL", { url: `wss://gw.example/${"a".repeat(3000)}`, token: "t" }],
	])("refuses %s with 400", async (_what, body) => {
		const response = await put(uniqueId("tenant"), body);
		expect(response.status).toBe(400);
		expect(((await response.json()) as { error: { code: string } }).error.code).toMatch(/invalid/);
	});

	it("stores the gateway, never returns its token, and the Gateway DO connects to it", async () => {
		const tenantId = uniqueId("tenant");
		const token = "test-openclaw-gateway-token";
		const stored = await put(tenantId, { url: env.OPENCLAW_GATEWAY_URL, token });
		expect(stored.status).toBe(200);
		const read = await api(`/api/admin/tenants/${tenantId}/gateway`, { headers: ADMIN });
		const text = await read.text();
		expect(read.status).toBe(200);
		expect(text).not.toContain(token);
		expect(JSON.parse(text)).toMatchObject({ tenant_id: tenantId, url: env.OPENCLAW_GATEWAY_URL });

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
		expect(JSON.stringify(status)).not.toContain(token);

		const removed = await api(`/api/admin/tenants/${tenantId}/gateway`, { method: "DELETE", headers: ADMIN });
		expect(removed.status).toBe(204);
		const gone = await api(`/api/admin/tenants/${tenantId}/gateway`, { headers: ADMIN });
		expect(gone.status).toBe(404);
	});
});
