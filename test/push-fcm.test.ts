import { afterEach, describe, expect, it } from "vitest";
import { resetIsolateCredentialCache } from "../src/push/credentials.ts";
import { type FcmTarget, pushProviders } from "../src/push/provider.ts";
import { fault, message, namespaceId, pushEnv, recorded, simControl, watchTimers } from "./push-helpers.ts";

/** The FCM HTTP v1 provider against the FCM simulator (sim/push/fcm.ts), one namespace per test. */

function setup(options: { timeoutMs?: number } = {}) {
	const ns = namespaceId();
	const config = pushEnv(ns);
	const fcm = pushProviders(config, options).fcm;
	if (!fcm) throw new Error("FCM should be on in tests");
	const sim = config.FCM_BASE_URL as string;
	const target = (): FcmTarget => ({ kind: "fcm", token: `fcm-${crypto.randomUUID()}:APA91b` });
	return { fcm, sim, target };
}

interface FcmState {
	tokenRequests: number;
	accessTokensIssued: number;
	sends: number;
}

describe("FCM provider", () => {
	let timers: ReturnType<typeof watchTimers> | null = null;
	afterEach(() => {
		timers?.restore();
		timers = null;
	});

	it("gets an access token with a signed assertion and sends the exact v1 message", async () => {
		const { fcm, sim, target } = setup();
		const device = target();
		const result = await fcm.send(device, message());
		expect(result).toMatchObject({
			outcome: "sent",
			providerId: expect.stringMatching(/^projects\/myndlens-test\/messages\//),
		});

		const [grant, send] = await recorded(sim);
		expect(grant?.path).toBe("/token");
		expect(grant?.status).toBe(200);
		expect(grant?.headers["content-type"]).toBe("application/x-www-form-urlencoded");
		expect(new URLSearchParams(grant?.body).get("grant_type")).toBe(
			"urn:ietf:params:oauth:grant-type:jwt-bearer",
		);
		expect(grant?.note.assertion).toMatchObject({
			header: { alg: "RS256", typ: "JWT", kid: expect.any(String) },
			claims: {
				iss: "push-test@myndlens-test.iam.gserviceaccount.com",
				scope: "https://www.googleapis.com/auth/firebase.messaging",
				aud: `${sim}/token`,
			},
		});
		expect(send?.path).toBe("/v1/projects/myndlens-test/messages:send");
		expect(send?.headers.authorization).toMatch(/^Bearer ya29\.sim-/);
		expect(JSON.parse(send?.body ?? "")).toEqual({
			message: {
				token: device.token,
				notification: { title: "Done: Send weekly report to team", body: "Delivered to email" },
				data: { mandate_id: "mio_1", session_id: "ses_1" },
				android: { priority: "HIGH", ttl: "3600s", collapse_key: "mio_1:outcome" },
			},
		});
	});

	it("sends a data-only message at normal priority (the Android live progress)", async () => {
		const { fcm, sim, target } = setup();
		const data = { kind: "progress", stage: "9", progress: "40", sub_status: "Read from REPORT.md" };
		const result = await fcm.send(
			target(),
			message({ title: undefined, body: undefined, data, priority: "normal" }),
		);
		expect(result.outcome).toBe("sent");
		const send = (await recorded(sim)).find((r) => r.path.endsWith("messages:send"));
		const sent = JSON.parse(send?.body ?? "").message;
		expect(sent.notification).toBeUndefined();
		expect(sent.data).toEqual(data);
		expect(sent.android.priority).toBe("NORMAL");
	});

	it("caches the access token: one token request for many sends, and again after an isolate restart", async () => {
		const { fcm, sim, target } = setup();
		await Promise.all([1, 2, 3, 4, 5].map(() => fcm.send(target(), message())));
		for (let i = 0; i < 3; i++) expect((await fcm.send(target(), message())).outcome).toBe("sent");
		resetIsolateCredentialCache();
		expect((await fcm.send(target(), message())).outcome).toBe("sent");
		expect(await simControl<FcmState>(sim, "state")).toEqual({
			tokenRequests: 1,
			accessTokensIssued: 1,
			sends: 9,
		});
	});

	it("renews a revoked access token once (401) and resends", async () => {
		const { fcm, sim, target } = setup();
		expect((await fcm.send(target(), message())).outcome).toBe("sent");
		await simControl(sim, "expire-tokens", {});
		const results = await Promise.all([1, 2, 3].map(() => fcm.send(target(), message())));
		expect(results.map((r) => r.outcome)).toEqual(["sent", "sent", "sent"]);
		expect((await simControl<FcmState>(sim, "state")).tokenRequests).toBe(2);
	});

	it("reads UNREGISTERED from error.details[].errorCode", async () => {
		const { fcm, sim, target } = setup();
		const device = target();
		await fault(sim, { kind: "unregistered", match: device.token });
		expect(await fcm.send(device, message())).toEqual({
			outcome: "unregistered",
			reason: "UNREGISTERED: Requested entity was not found.",
			status: 404,
		});
	});

	it("classifies QUOTA_EXCEEDED (429 + Retry-After), UNAVAILABLE and INTERNAL as retry", async () => {
		const { fcm, sim, target } = setup();
		await fault(sim, { kind: "rate_limited", match: "fcm-", retryAfter: "12" });
		expect(await fcm.send(target(), message())).toEqual({
			outcome: "retry",
			retryAfterMs: 12_000,
			reason: "QUOTA_EXCEEDED: Quota exceeded.",
			status: 429,
		});
		await fault(sim, { kind: "server_error", match: "fcm-", status: 503 });
		await fault(sim, { kind: "server_error", match: "fcm-", status: 500 });
		expect(await fcm.send(target(), message())).toMatchObject({
			outcome: "retry",
			reason: expect.stringMatching(/^UNAVAILABLE/),
		});
		expect(await fcm.send(target(), message())).toMatchObject({
			outcome: "retry",
			reason: expect.stringMatching(/^INTERNAL/),
		});
		expect((await fcm.send(target(), message())).outcome).toBe("sent");
	});

	it("rejects what FCM refuses as INVALID_ARGUMENT (a malformed token)", async () => {
		const { fcm } = setup();
		expect(await fcm.send({ kind: "fcm", token: "short" }, message())).toMatchObject({
			outcome: "rejected",
			reason: expect.stringMatching(/^INVALID_ARGUMENT: The registration token is not a valid/),
			status: 400,
		});
	});

	it("a token endpoint that refuses the service account makes every send rejected, with its reason", async () => {
		const ns = namespaceId();
		const account = JSON.parse(pushEnv(ns).FCM_SERVICE_ACCOUNT as string);
		const fcm = pushProviders(
			pushEnv(ns, {
				FCM_SERVICE_ACCOUNT: JSON.stringify({ ...account, client_email: "intruder@example.com" }),
			}),
		).fcm;
		expect(await fcm?.send({ kind: "fcm", token: `fcm-${crypto.randomUUID()}` }, message())).toEqual({
			outcome: "rejected",
			reason: "fcm_credentials: invalid_grant: Invalid email or User ID",
			status: 400,
		});
	});

	it("gives up on a slow FCM after its timeout (retry) and leaves no timer behind", async () => {
		const { fcm, sim, target } = setup({ timeoutMs: 293 });
		expect((await fcm.send(target(), message())).outcome).toBe("sent"); // the token is fetched first
		await fault(sim, { kind: "slow", match: "fcm-", delayMs: 2000 });
		timers = watchTimers(293);
		expect(await fcm.send(target(), message())).toMatchObject({
			outcome: "retry",
			reason: "timeout after 293 ms",
		});
		expect(timers.created()).toBe(1);
		expect(timers.pending()).toBe(0);
	});
});
