import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { listDevices } from "../src/d1/devices.ts";
import app from "../src/index.ts";
import { pushProviders } from "../src/push/provider.ts";
import { api, mobileToken, uniqueId } from "./helpers.ts";
import { message, namespaceId, pushEnv, recorded, simControl, WEBPUSH_SIM_URL } from "./push-helpers.ts";

/**
 * Issue 10, item 7: what the pipeline card page's "Notify me when it's done" needs from the Worker —
 * `GET /api/push/webpush` (is Web Push on, and its VAPID public key) — and the page's whole opt-in as
 * the Worker sees it: subscribe with that key, register the subscription under a stable device id.
 */

interface WebPushConfig {
	enabled: boolean;
	public_key: string | null;
}

/** The route on a Worker configured with `overrides` (the tests' Worker has every provider on). */
async function configWith(overrides: Record<string, string | undefined>): Promise<WebPushConfig> {
	const response = await app.fetch(
		new Request("https://progress.test/api/push/webpush"),
		{ ...env, ...overrides },
		createExecutionContext(),
	);
	expect(response.status).toBe(200);
	return (await response.json()) as WebPushConfig;
}

describe("GET /api/push/webpush", () => {
	it("tells anyone the VAPID public key, and nothing else, with no credential", async () => {
		const response = await api("/api/push/webpush");
		expect(response.status).toBe(200);
		expect(response.headers.get("cache-control")).toBe("no-store");
		expect(response.headers.get("content-security-policy")).toContain("default-src 'self'");
		const body = (await response.json()) as WebPushConfig;
		expect(body).toEqual({ enabled: true, public_key: env.VAPID_PUBLIC_KEY });
		// An uncompressed P-256 point, base64url without padding: what applicationServerKey takes.
		expect(body.public_key).toMatch(/^[A-Za-z0-9_-]{87}$/);
		expect(atob((body.public_key ?? "").replaceAll("-", "+").replaceAll("_", "/")).charCodeAt(0)).toBe(4);
		expect(JSON.stringify(body)).not.toContain(env.VAPID_PRIVATE_KEY ?? "no private key");
	});

	it("answers enabled: false and no key while the provider is off, whatever setting is missing", async () => {
		const off = { enabled: false, public_key: null };
		expect(await configWith({ VAPID_PRIVATE_KEY: undefined })).toEqual(off);
		expect(await configWith({ VAPID_PUBLIC_KEY: undefined })).toEqual(off);
		expect(await configWith({ VAPID_SUBJECT: undefined })).toEqual(off);
		expect(await configWith({ VAPID_PUBLIC_KEY: "not-a-key" })).toEqual(off);
		// A key pair written with padding or in base64 is still on, and served in base64url.
		expect(await configWith({ VAPID_PUBLIC_KEY: `${env.VAPID_PUBLIC_KEY}=` })).toEqual({
			enabled: true,
			public_key: env.VAPID_PUBLIC_KEY,
		});
	});

	it("is a read: other methods are unknown routes", async () => {
		for (const method of ["POST", "PUT", "DELETE"]) {
			const response = await api("/api/push/webpush", { method });
			expect(response.status, method).toBe(404);
		}
	});
});

describe("the page's opt-in, end to end at the Worker", () => {
	it("a subscription made with the served key registers under the browser's device id and receives pushes", async () => {
		const config = (await (await api("/api/push/webpush")).json()) as WebPushConfig;
		// The browser's push service (the simulator) binds the subscription to that key, as browsers do:
		// a push signed with any other VAPID key is refused with 403.
		const ns = namespaceId();
		const sim = `${WEBPUSH_SIM_URL}/ns/${ns}`;
		const subscription = await simControl<{ endpoint: string; keys: { p256dh: string; auth: string } }>(
			sim,
			"subscriptions",
			{ applicationServerKey: config.public_key },
		);
		const sub = uniqueId("user");
		const token = await mobileToken(uniqueId("demo"), { sub });
		const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
		// What the page sends: PushSubscription.toJSON() (expirationTime included) under `web_<uuid>`.
		const deviceId = `web_${crypto.randomUUID()}`;
		const register = () =>
			api(`/api/devices/${deviceId}`, {
				method: "PUT",
				headers,
				body: JSON.stringify({ kind: "webpush", subscription: { ...subscription, expirationTime: null } }),
			});
		expect((await register()).status).toBe(201);
		// Turning it on again in the same browser replaces the device; it never adds a second one.
		expect((await register()).status).toBe(200);
		const listed = (await (await api("/api/devices", { headers })).json()) as {
			devices: Array<Record<string, unknown>>;
		};
		expect(listed.devices).toEqual([
			expect.objectContaining({
				device_id: deviceId,
				kind: "webpush",
				token_hint: `…${subscription.endpoint.slice(-6)}`,
				endpoint_origin: new URL(subscription.endpoint).origin,
			}),
		]);

		// The device as stored is what the Session DO pushes to (session/push.ts), with the settings'
		// key pair: the push service accepts it and the browser side decrypts the page's payload.
		const [device] = await listDevices(env.DB, sub);
		if (device?.target.kind !== "webpush") throw new Error("the webpush device is not stored");
		const webpush = pushProviders(pushEnv(ns)).webpush;
		if (!webpush) throw new Error("Web Push should be on in tests");
		const result = await webpush.send(
			{ kind: "webpush", endpoint: device.target.subscription.endpoint, ...device.target.subscription.keys },
			message(),
		);
		expect(result.outcome).toBe("sent");
		const [push] = (await recorded(sim)).filter((r) => r.path.startsWith("/push/"));
		expect(push?.status).toBe(201);
		expect(JSON.parse(String(push?.note.plaintext))).toEqual({
			title: "Done: Send weekly report to team",
			body: "Delivered to email",
			data: { mandate_id: "mio_1", session_id: "ses_1" },
		});

		expect((await api(`/api/devices/${deviceId}`, { method: "DELETE", headers })).status).toBe(204);
	});
});
