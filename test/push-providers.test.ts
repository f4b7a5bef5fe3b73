import { describe, expect, it } from "vitest";
import { pushProviderStatus, pushProviders, sendPush } from "../src/push/provider.ts";
import { parseRetryAfter } from "../src/push/wire.ts";
import { apnsDeviceToken, BUNDLE_ID, message, namespaceId, pushEnv, recorded } from "./push-helpers.ts";

/** What every provider shares: on only with all its settings, Retry-After, one entry point. */

describe("push providers: configuration", () => {
	it("with every setting, all four are on", () => {
		const providers = pushProviders(pushEnv(namespaceId()));
		expect(Object.keys(providers).sort()).toEqual(["apns", "expo", "fcm", "webpush"]);
		expect(Object.values(pushProviderStatus(pushEnv(namespaceId()))).every((s) => s.on)).toBe(true);
	});

	it("a provider missing any of its secrets is absent, never half-on, and says which", () => {
		const env = pushEnv(namespaceId(), {
			EXPO_PUSH_URL: "",
			APNS_KEY_ID: undefined,
			FCM_SERVICE_ACCOUNT: undefined,
			VAPID_PRIVATE_KEY: undefined,
		});
		expect(pushProviders(env)).toEqual({});
		expect(pushProviderStatus(env)).toEqual({
			expo: { on: false, missing: ["EXPO_PUSH_URL"] },
			apns: { on: false, missing: ["APNS_KEY_ID"] },
			fcm: { on: false, missing: ["FCM_SERVICE_ACCOUNT"] },
			webpush: { on: false, missing: ["VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY"] },
		});
	});

	it("a malformed secret turns its provider off too", () => {
		const env = pushEnv(namespaceId(), {
			APNS_KEY: "not a pem",
			FCM_SERVICE_ACCOUNT: '{"project_id": "p"}',
			VAPID_PUBLIC_KEY: "dG9vIHNob3J0",
			VAPID_SUBJECT: "someone",
		});
		const status = pushProviderStatus(env);
		expect(status.apns).toEqual({ on: false, missing: ["APNS_KEY"] });
		expect(status.fcm).toEqual({ on: false, missing: ["FCM_SERVICE_ACCOUNT"] });
		expect(status.webpush).toEqual({
			on: false,
			missing: ["VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY", "VAPID_SUBJECT"],
		});
		expect(Object.keys(pushProviders(env))).toEqual(["expo"]);
	});

	it("Expo needs no secret: on with the default URL when EXPO_PUSH_URL is unset", () => {
		expect(pushProviderStatus(pushEnv(namespaceId(), { EXPO_PUSH_URL: undefined })).expo).toEqual({
			on: true,
		});
	});

	it("sendPush routes by kind, and a target whose provider is off is rejected without a request", async () => {
		const ns = namespaceId();
		const on = pushProviders(pushEnv(ns));
		const target = {
			kind: "apns",
			token: apnsDeviceToken(),
			bundleId: BUNDLE_ID,
			environment: "sandbox",
			pushType: "alert",
		} as const;
		expect((await sendPush(on, target, message())).outcome).toBe("sent");
		const off = pushProviders(pushEnv(ns, { APNS_KEY: undefined }));
		expect(await sendPush(off, target, message())).toEqual({
			outcome: "rejected",
			reason: "provider_off: apns is not configured",
		});
		expect(await recorded(pushEnv(ns).APNS_BASE_URL as string)).toHaveLength(1);
	});
});

describe("push providers: Retry-After", () => {
	const now = Date.parse("2026-11-20T10:00:00Z");
	it("reads delay-seconds and HTTP dates; a past date is 0; anything else is null", () => {
		expect(parseRetryAfter("120", now)).toBe(120_000);
		expect(parseRetryAfter(" 0 ", now)).toBe(0);
		expect(parseRetryAfter("Fri, 20 Nov 2026 10:01:30 GMT", now)).toBe(90_000);
		expect(parseRetryAfter("Fri, 20 Nov 2026 09:00:00 GMT", now)).toBe(0);
		expect(parseRetryAfter(null, now)).toBeNull();
		expect(parseRetryAfter("-5", now)).toBeNull();
		expect(parseRetryAfter("1.5", now)).toBeNull();
		expect(parseRetryAfter("soon", now)).toBeNull();
	});
});
