import { hasTenantGateway, readTenantGateway } from "../d1/gateways.ts";
import type { Env } from "../env.ts";

/*
 * Where a tenant's OpenClaw Gateway lives (DESIGN.md, "External contract"): its row in D1
 * `tenant_gateways` (written by the admin route), else OPENCLAW_GATEWAY_URL/_TOKEN. Both obey one
 * rule (issue 14, finding 8): `wss://`, plain `ws://` only on loopback, no credentials, query or
 * fragment — the token travels in the `connect` frame, never in the address.
 */

export interface GatewayTarget {
	/** wss://, or ws:// on a loopback host (gatewayUrlProblem). */
	url: string;
	token: string | null;
	source: "registry" | "default";
}

export type GatewayLookup = { ok: true; target: GatewayTarget } | { ok: false; reason: string };

export async function gatewayFor(env: Env, tenantId: string): Promise<GatewayLookup> {
	const row = await readTenantGateway(env.DB, env.GATEWAY_TOKEN_KEY, tenantId);
	if (row) {
		const problem = gatewayUrlProblem(row.url);
		if (problem) return { ok: false, reason: `the registered gateway URL ${problem}` };
		// A token that cannot be decrypted (GATEWAY_TOKEN_KEY missing or rotated away) is "not configured".
		if (!row.token.ok) return { ok: false, reason: row.token.reason };
		return { ok: true, target: { url: row.url, token: row.token.token || null, source: "registry" } };
	}
	const url = env.OPENCLAW_GATEWAY_URL?.trim();
	if (!url) return { ok: false, reason: "no gateway registered and OPENCLAW_GATEWAY_URL is empty" };
	const problem = gatewayUrlProblem(url);
	if (problem) return { ok: false, reason: `no gateway registered and OPENCLAW_GATEWAY_URL ${problem}` };
	return { ok: true, target: { url, token: env.OPENCLAW_GATEWAY_TOKEN || null, source: "default" } };
}

/** How long this isolate trusts what it read about a tenant having a registered gateway. */
export const HAS_GATEWAY_TTL_MS = 60_000;
const registered = new Map<string, { has: boolean; until: number }>();

/**
 * Whether a tenant has a gateway at all, so a Session DO wakes the tenant's Gateway DO only when there is
 * one to watch (issue 17: no DO request for tenants without a gateway). A valid OPENCLAW_GATEWAY_URL
 * serves every tenant, with no D1 read; otherwise the registry's answer is kept per isolate for
 * HAS_GATEWAY_TTL_MS. A lookup that fails counts as "has one": the Gateway DO then decides.
 */
export async function hasGateway(
	env: Pick<Env, "DB" | "OPENCLAW_GATEWAY_URL">,
	tenantId: string,
	now = Date.now(),
): Promise<boolean> {
	const url = env.OPENCLAW_GATEWAY_URL?.trim();
	if (url && gatewayUrlProblem(url) === null) return true;
	const known = registered.get(tenantId);
	if (known && known.until > now) return known.has;
	try {
		const has = await hasTenantGateway(env.DB, tenantId);
		if (registered.size >= 10_000) registered.clear();
		registered.set(tenantId, { has, until: now + HAS_GATEWAY_TTL_MS });
		return has;
	} catch {
		return true;
	}
}

/** The registry changed for a tenant (the admin route): this isolate forgets what it knew. */
export function forgetGatewayPresence(tenantId: string): void {
	registered.delete(tenantId);
}

/** Why a gateway address is refused, or null when it is fine. Never echoes the URL (it may hold secrets). */
export function gatewayUrlProblem(value: string): string | null {
	let url: URL;
	try {
		url = new URL(value);
	} catch {
		return "is not an absolute URL";
	}
	if (url.username !== "" || url.password !== "") return "must not carry credentials";
	if (url.search !== "" || value.includes("?")) return "must not carry a query";
	if (url.hash !== "" || value.includes("#")) return "must not carry a fragment";
	if (url.protocol === "wss:") return null;
	if (url.protocol === "ws:")
		return isLoopback(url.hostname) ? null : "must use wss:// (ws:// only on loopback)";
	return "must use wss:// (ws:// only on loopback)";
}

/** 127.0.0.0/8, localhost and [::1]: the only hosts a plain ws:// may reach. */
export function isLoopback(hostname: string): boolean {
	const host = hostname.toLowerCase();
	if (host === "localhost" || host === "[::1]") return true;
	return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** `fetch` upgrades over http(s); the gateway's address is written ws(s)://. */
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
