import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import app from "../src/index.ts";
import { pushProviderStatus } from "../src/push/provider.ts";
import { MAX_DEVICES_PER_USER } from "../src/routes/devices.ts";
import { api, mobileToken, SERVICE, uniqueId } from "./helpers.ts";

/** Issue 10: the app registers its push devices with its mobile token; each device is its user's alone. */

const expoToken = () => `ExponentPushToken[${crypto.randomUUID().replaceAll("-", "").slice(0, 22)}]`;

async function as(sub: string) {
	const token = await mobileToken(uniqueId("sess"), { sub });
	const headers = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
	return {
		put: (deviceId: string, body: unknown) =>
			api(`/api/devices/${deviceId}`, { method: "PUT", headers, body: JSON.stringify(body) }),
		list: async () =>
			(await (await api("/api/devices", { headers })).json()) as { devices: Array<Record<string, unknown>> },
		remove: (deviceId: string) => api(`/api/devices/${deviceId}`, { method: "DELETE", headers }),
	};
}

describe("push devices", () => {
	it("adds, replaces, lists and removes a user's devices, never showing a token in full", async () => {
		const user = await as(uniqueId("user"));
		const token = expoToken();
		const added = await user.put("phone_1", { kind: "expo", token });
		expect(added.status).toBe(201);
		const shown = (await added.json()) as Record<string, unknown>;
		expect(shown).toMatchObject({ device_id: "phone_1", kind: "expo", token_hint: `…${token.slice(-6)}` });
		expect(JSON.stringify(shown)).not.toContain(token);

		const replacement = expoToken();
		expect((await user.put("phone_1", { kind: "expo", token: replacement })).status).toBe(200);
		const { devices } = await user.list();
		expect(devices).toHaveLength(1);
		expect(devices[0]).toMatchObject({ device_id: "phone_1", token_hint: `…${replacement.slice(-6)}` });
		expect(JSON.stringify(devices)).not.toContain(replacement);

		expect((await user.remove("phone_1")).status).toBe(204);
		expect((await user.remove("phone_1")).status).toBe(404);
		expect((await user.list()).devices).toEqual([]);
	});

	it("keeps each user's devices to that user: another token neither sees nor removes them", async () => {
		const alice = await as(uniqueId("alice"));
		const mallory = await as(uniqueId("mallory"));
		expect((await alice.put("phone", { kind: "expo", token: expoToken() })).status).toBe(201);
		expect((await mallory.list()).devices).toEqual([]);
		expect((await mallory.remove("phone")).status).toBe(404);
		expect((await alice.list()).devices).toHaveLength(1);
		// Only the app registers devices: the pipeline's token may not.
		const pipeline = await api("/api/devices/phone", {
			method: "PUT",
			headers: { ...SERVICE, "Content-Type": "application/json" },
			body: JSON.stringify({ kind: "expo", token: expoToken() }),
		});
		expect(pipeline.status).toBe(403);
		expect((await api("/api/devices")).status).toBe(401);
	});

	it("caps the devices of one user; replacing one does not count twice", async () => {
		const user = await as(uniqueId("user"));
		for (let i = 0; i < MAX_DEVICES_PER_USER; i++) {
			expect((await user.put(`d${i}`, { kind: "expo", token: expoToken() })).status).toBe(201);
		}
		const over = await user.put("one_more", { kind: "expo", token: expoToken() });
		expect(over.status).toBe(409);
		expect(((await over.json()) as { error: { code: string } }).error.code).toBe("too_many_devices");
		expect((await user.put("d0", { kind: "expo", token: expoToken() })).status).toBe(200);
		expect((await user.list()).devices).toHaveLength(MAX_DEVICES_PER_USER);
	});

	it("refuses malformed registrations with a 4xx and stores nothing", async () => {
		const user = await as(uniqueId("user"));
		const bad: unknown[] = [
			{},
			{ kind: "expo" },
			{ kind: "expo", token: "not-a-token" },
			{ kind: "expo", token: expoToken(), extra: true },
			{ kind: "apns", token: "zz", bundle_id: "com.example.app" },
			{ kind: "apns", token: "a".repeat(64), bundle_id: "no dots" },
			{ kind: "apns", token: "a".repeat(64), bundle_id: "com.example.app", environment: "staging" },
			{ kind: "fcm", token: "short" },
			{
				kind: "webpush",
				subscription: {
					endpoint: "http://push.example/x",
					keys: { p256dh: "a".repeat(87), auth: "b".repeat(22) },
				},
			},
			{
				kind: "webpush",
				subscription: { endpoint: "https://push.example/x", keys: { p256dh: "short", auth: "b".repeat(22) } },
			},
			{ kind: "pager", token: "x" },
			"[]",
		];
		for (const body of bad) {
			const response = await user.put("phone", body);
			expect(response.status, JSON.stringify(body)).toBe(400);
		}
		expect((await user.put("bad id!", { kind: "expo", token: expoToken() })).status).toBe(400);
		expect((await user.list()).devices).toEqual([]);
	});

	it("answers 422 for a provider that is off, and stores nothing", async () => {
		const user = await as(uniqueId("user"));
		expect(pushProviderStatus({ ...env, APNS_KEY: undefined }).apns).toEqual({
			on: false,
			missing: ["APNS_KEY"],
		});
		// Every provider is on in the tests' Worker (their simulators): call the app with a config that
		// lacks the APNs key, as a Worker deployed without that secret would run.
		const sub = uniqueId("user");
		const token = await mobileToken(uniqueId("sess"), { sub });
		const response = await app.fetch(
			new Request("https://progress.test/api/devices/ios", {
				method: "PUT",
				headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
				body: JSON.stringify({ kind: "apns", token: "a".repeat(64), bundle_id: "com.myndlens.app" }),
			}),
			{ ...env, APNS_KEY: undefined },
			createExecutionContext(),
		);
		expect(response.status).toBe(422);
		expect(((await response.json()) as { error: { code: string } }).error.code).toBe("provider_unavailable");
		const stored = await env.DB.prepare("SELECT COUNT(*) AS n FROM push_devices WHERE sub = ?")
			.bind(sub)
			.first<{ n: number }>();
		expect(stored?.n).toBe(0);
		expect((await user.list()).devices).toEqual([]);
	});

	it("takes a Web Push subscription only from a browser push service", async () => {
		const user = await as(uniqueId("user"));
		const keys = { p256dh: "B".repeat(87), auth: "A".repeat(22) };
		const at = (endpoint: string) =>
			user.put("browser", { kind: "webpush", subscription: { endpoint, keys } });
		expect((await at("https://evil.example/push/1")).status).toBe(400);
		expect((await at("http://fcm.googleapis.com/fcm/send/x")).status).toBe(400);
		expect((await at("https://jmt17.google.com.evil.example/fcm/send/x")).status).toBe(400);
		expect((await at("https://jmt17.google.com/fcm/send/beta")).status).toBe(201);
		expect((await at("https://fcm.googleapis.com/fcm/send/abc")).status).toBe(200);
		expect((await user.list()).devices).toEqual([
			expect.objectContaining({ kind: "webpush", endpoint_origin: "https://fcm.googleapis.com" }),
		]);
	});
});
