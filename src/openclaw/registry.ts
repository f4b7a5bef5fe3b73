import { getTenantGateway } from "../d1/gateways.ts";
import type { Env } from "../env.ts";

/*
 * Where a tenant's OpenClaw Gateway lives (DESIGN.md, "External contract"): its row in D1
 * `tenant_gateways` (written by the admin route), else OPENCLAW_GATEWAY_URL/_TOKEN.
 */

export interface GatewayTarget {
	/** ws:// or wss:// (http(s):// accepted and used as is for the upgrade fetch). */
	url: string;
	token: string | null;
	source: "registry" | "default";
}

export async function gatewayFor(env: Env, tenantId: string): Promise<GatewayTarget | null> {
	const row = await getTenantGateway(env.DB, tenantId);
	if (row) return { url: row.url, token: row.token || null, source: "registry" };
	const url = env.OPENCLAW_GATEWAY_URL?.trim();
	if (!url) return null;
	return { url, token: env.OPENCLAW_GATEWAY_TOKEN || null, source: "default" };
}

/** `fetch` upgrades over http(s); the gateway's address is usually written ws(s)://. */
export function upgradeUrl(url: string): string {
	return url.replace(/^ws(s?):\/\//i, "http$1://");
}

/** A URL fit for logs: scheme, host and path only (a token could hide in the query or userinfo). */
export function redactedUrl(url: string): string {
	try {
		const parsed = new URL(url);
		return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
	} catch {
		return "<invalid url>";
	}
}
