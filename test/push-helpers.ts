import { env } from "cloudflare:workers";
import type { PushEnv, PushMessage } from "../src/push/provider.ts";

/**
 * Helpers of the push provider tests (test/push-*.test.ts). Each test works in its own simulator
 * namespace (`<sim>/ns/<id>`: own records, faults and tokens), so files and tests never see each
 * other's pushes.
 */

export const BUNDLE_ID = "com.myndlens.app";

/** A fresh namespace id. */
export function namespaceId(): string {
	return crypto.randomUUID().replaceAll("-", "").slice(0, 20);
}

/** The Web Push simulator (bound only in tests: endpoints come from subscriptions, not settings). */
export const WEBPUSH_SIM_URL = (env as unknown as { WEBPUSH_SIM_URL: string }).WEBPUSH_SIM_URL;

/** The push settings with every provider pointed at namespace `ns` of its simulator. */
export function pushEnv(ns: string, overrides: Partial<PushEnv> = {}): PushEnv {
	return {
		PUSH_CREDENTIALS: env.PUSH_CREDENTIALS,
		EXPO_PUSH_URL: `${env.EXPO_PUSH_URL}/ns/${ns}`,
		EXPO_ACCESS_TOKEN: env.EXPO_ACCESS_TOKEN,
		APNS_BASE_URL: `${env.APNS_BASE_URL}/ns/${ns}`,
		APNS_KEY: env.APNS_KEY,
		APNS_KEY_ID: env.APNS_KEY_ID,
		APNS_TEAM_ID: env.APNS_TEAM_ID,
		FCM_BASE_URL: `${env.FCM_BASE_URL}/ns/${ns}`,
		FCM_TOKEN_URL: `${env.FCM_BASE_URL}/ns/${ns}/token`,
		FCM_SERVICE_ACCOUNT: env.FCM_SERVICE_ACCOUNT,
		VAPID_PUBLIC_KEY: env.VAPID_PUBLIC_KEY,
		VAPID_PRIVATE_KEY: env.VAPID_PRIVATE_KEY,
		VAPID_SUBJECT: env.VAPID_SUBJECT,
		...overrides,
	};
}

export interface Recorded {
	method: string;
	path: string;
	headers: Record<string, string>;
	body?: string;
	bodyBase64?: string;
	status: number;
	answer: unknown;
	note: Record<string, unknown>;
}

/** `<base>/__sim/<path>` of a simulator namespace: GET without a body, POST with one. */
export async function simControl<T = unknown>(base: string, path: string, body?: unknown): Promise<T> {
	const response = await fetch(`${base}/__sim/${path}`, {
		method: body === undefined ? "GET" : "POST",
		...(body !== undefined && {
			headers: { "content-type": "application/json" },
			body: JSON.stringify(body),
		}),
	});
	if (!response.ok) throw new Error(`sim ${path}: ${response.status} ${await response.text()}`);
	return (await response.json()) as T;
}

export async function recorded(base: string): Promise<Recorded[]> {
	return (await simControl<{ requests: Recorded[] }>(base, "requests")).requests;
}

export function fault(
	base: string,
	spec: {
		kind: "unregistered" | "rate_limited" | "server_error" | "slow";
		match?: string;
		count?: number;
		retryAfter?: string;
		status?: number;
		delayMs?: number;
		at?: "ticket" | "receipt";
	},
): Promise<unknown> {
	return simControl(base, "faults", spec);
}

export function message(overrides: Partial<PushMessage> = {}): PushMessage {
	return {
		title: "Done: Send weekly report to team",
		body: "Delivered to email",
		data: { mandate_id: "mio_1", session_id: "ses_1" },
		collapseKey: "mio_1:outcome",
		priority: "high",
		ttlSeconds: 3600,
		...overrides,
	};
}

/** A random APNs device token (32 bytes, hex). */
export function apnsDeviceToken(): string {
	return [...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Watches the timers set with exactly `ms` (the provider's timeout, chosen unusual so nothing else
 * uses it) while the test runs: `pending()` is how many are still armed — neither fired nor cleared.
 */
export function watchTimers(ms: number) {
	const realSet = globalThis.setTimeout;
	const realClear = globalThis.clearTimeout;
	const armed = new Set<unknown>();
	let created = 0;
	globalThis.setTimeout = ((handler: (...args: unknown[]) => void, delay?: number, ...args: unknown[]) => {
		if (delay !== ms) return realSet(handler, delay, ...args);
		created += 1;
		const id = realSet(
			(...a: unknown[]) => {
				armed.delete(id);
				handler(...a);
			},
			delay,
			...args,
		);
		armed.add(id);
		return id;
	}) as typeof setTimeout;
	globalThis.clearTimeout = ((id: Parameters<typeof clearTimeout>[0]) => {
		armed.delete(id);
		realClear(id);
	}) as typeof clearTimeout;
	return {
		created: () => created,
		pending: () => armed.size,
		restore() {
			globalThis.setTimeout = realSet;
			globalThis.clearTimeout = realClear;
		},
	};
}
