import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { apnsOrigin } from "../src/push/apns.ts";
import { resetIsolateCredentialCache } from "../src/push/credentials.ts";
import { type ApnsTarget, pushProviders } from "../src/push/provider.ts";
import {
	apnsDeviceToken,
	BUNDLE_ID,
	fault,
	message,
	namespaceId,
	pushEnv,
	recorded,
	simControl,
	watchTimers,
} from "./push-helpers.ts";

/** The APNs provider against the APNs simulator (sim/push/apns.ts), one namespace per test. */

function setup(options: { timeoutMs?: number } = {}) {
	const ns = namespaceId();
	const config = pushEnv(ns);
	const apns = pushProviders(config, options).apns;
	if (!apns) throw new Error("APNs should be on in tests");
	const sim = config.APNS_BASE_URL as string;
	const target = (overrides: Partial<ApnsTarget> = {}): ApnsTarget => ({
		kind: "apns",
		token: apnsDeviceToken(),
		bundleId: BUNDLE_ID,
		environment: "production",
		pushType: "alert",
		...overrides,
	});
	return { apns, sim, target };
}

interface ApnsState {
	distinctProviderTokens: number;
}

describe("APNs provider", () => {
	let timers: ReturnType<typeof watchTimers> | null = null;
	afterEach(() => {
		timers?.restore();
		timers = null;
	});

	it("sends an alert the simulator accepts, with the exact headers and payload", async () => {
		const { apns, sim, target } = setup();
		const device = target();
		const before = Math.floor(Date.now() / 1000);
		const result = await apns.send(device, message());
		expect(result).toMatchObject({ outcome: "sent", providerId: expect.stringMatching(/^[0-9a-f-]{36}$/) });

		const [request] = await recorded(sim);
		expect(request?.status).toBe(200);
		expect(request?.method).toBe("POST");
		expect(request?.path).toBe(`/3/device/${device.token}`);
		expect(request?.headers).toMatchObject({
			"apns-topic": BUNDLE_ID,
			"apns-push-type": "alert",
			"apns-priority": "10",
			"apns-collapse-id": "mio_1:outcome",
			"content-type": "application/json",
			authorization: expect.stringMatching(/^bearer [\w-]+\.[\w-]+\.[\w-]+$/),
		});
		const expiration = Number(request?.headers["apns-expiration"]);
		expect(expiration).toBeGreaterThanOrEqual(before + 3600);
		expect(expiration).toBeLessThanOrEqual(before + 3602);
		expect(JSON.parse(request?.body ?? "")).toEqual({
			mandate_id: "mio_1",
			session_id: "ses_1",
			aps: {
				alert: { title: "Done: Send weekly report to team", body: "Delivered to email" },
				sound: "default",
			},
		});
		expect(request?.note.providerToken).toMatchObject({
			header: { alg: "ES256", kid: env.APNS_KEY_ID },
			claims: { iss: env.APNS_TEAM_ID, iat: expect.any(Number) },
		});
	});

	it("sends Live Activity updates at priority 5 and the end at 10, to the liveactivity topic", async () => {
		const { apns, sim, target } = setup();
		const activity = target({ pushType: "liveactivity" });
		const contentState = {
			stage: 9,
			stage_name: "OpenClaw executing",
			status: "active",
			progress: 40,
			sub_status: "Read from REPORT.md",
			answer_preview: "",
		};
		const update = await apns.send(
			activity,
			message({
				title: undefined,
				body: undefined,
				data: undefined,
				priority: "normal",
				liveActivity: { event: "update", contentState, timestamp: 1_800_000_000, staleDate: 1_800_000_300 },
			}),
		);
		const end = await apns.send(
			activity,
			message({
				data: undefined,
				liveActivity: {
					event: "end",
					contentState: { ...contentState, stage: 10, progress: 100, status: "completed" },
					timestamp: 1_800_000_010,
					dismissalDate: 1_800_003_610,
				},
			}),
		);
		expect(update.outcome).toBe("sent");
		expect(end.outcome).toBe("sent");
		const [first, second] = await recorded(sim);
		for (const request of [first, second]) {
			expect(request?.headers["apns-topic"]).toBe(`${BUNDLE_ID}.push-type.liveactivity`);
			expect(request?.headers["apns-push-type"]).toBe("liveactivity");
		}
		expect(first?.headers["apns-priority"]).toBe("5");
		expect(second?.headers["apns-priority"]).toBe("10");
		expect(JSON.parse(first?.body ?? "")).toEqual({
			aps: {
				timestamp: 1_800_000_000,
				event: "update",
				"content-state": contentState,
				"stale-date": 1_800_000_300,
			},
		});
		expect(JSON.parse(second?.body ?? "").aps).toMatchObject({
			event: "end",
			"dismissal-date": 1_800_003_610,
			"content-state": { stage: 10, progress: 100 },
			alert: { title: "Done: Send weekly report to team" },
		});
	});

	it("refuses a Live Activity push without its state, and data that would shadow aps, before any request", async () => {
		const { apns, sim, target } = setup();
		expect(await apns.send(target({ pushType: "liveactivity" }), message())).toMatchObject({
			outcome: "rejected",
			reason: expect.stringContaining("liveActivity"),
		});
		expect(await apns.send(target(), message({ data: { aps: "x" } }))).toMatchObject({ outcome: "rejected" });
		expect(await apns.send(target(), message({ body: "x".repeat(5000) }))).toMatchObject({
			outcome: "rejected",
			reason: expect.stringContaining("4096"),
		});
		expect(await recorded(sim)).toEqual([]);
	});

	it("fits a collapse key over 64 bytes into apns-collapse-id by its digest: same key, same id", async () => {
		const { apns, sim, target } = setup();
		const long = `mandate:${"m".repeat(80)}:outcome`;
		await apns.send(target(), message({ collapseKey: long }));
		await apns.send(target(), message({ collapseKey: long }));
		const [a, b] = await recorded(sim);
		expect(a?.status).toBe(200);
		expect(a?.headers["apns-collapse-id"]).toMatch(/^[\w-]{43}$/); // base64url(SHA-256)
		expect(a?.headers["apns-collapse-id"]).toBe(b?.headers["apns-collapse-id"]);
	});

	it("sends a data-only message as a background push at priority 5", async () => {
		const { apns, sim, target } = setup();
		expect((await apns.send(target(), message({ title: undefined, body: undefined }))).outcome).toBe("sent");
		const [request] = await recorded(sim);
		expect(request?.headers).toMatchObject({ "apns-push-type": "background", "apns-priority": "5" });
		expect(JSON.parse(request?.body ?? "").aps).toEqual({ "content-available": 1 });
	});

	it("classifies 410 Unregistered as unregistered", async () => {
		const { apns, sim, target } = setup();
		const device = target();
		await fault(sim, { kind: "unregistered", match: device.token });
		expect(await apns.send(device, message())).toEqual({
			outcome: "unregistered",
			reason: "Unregistered",
			status: 410,
		});
		expect((await apns.send(target(), message())).outcome).toBe("sent");
	});

	it("classifies 429 as retry with Retry-After in seconds or as an HTTP date", async () => {
		const { apns, sim, target } = setup();
		await fault(sim, { kind: "rate_limited", retryAfter: "30" });
		expect(await apns.send(target(), message())).toEqual({
			outcome: "retry",
			retryAfterMs: 30_000,
			reason: "TooManyRequests",
			status: 429,
		});
		await fault(sim, { kind: "rate_limited", retryAfter: new Date(Date.now() + 120_000).toUTCString() });
		const dated = await apns.send(target(), message());
		expect(dated).toMatchObject({ outcome: "retry", reason: "TooManyRequests" });
		expect(dated.outcome === "retry" && dated.retryAfterMs).toBeGreaterThan(110_000);
		await fault(sim, { kind: "rate_limited" });
		expect(await apns.send(target(), message())).toMatchObject({ outcome: "retry", retryAfterMs: null });
	});

	it("classifies a 5xx burst as retry each time, then sends", async () => {
		const { apns, sim, target } = setup();
		await fault(sim, { kind: "server_error", count: 2, status: 500 });
		await fault(sim, { kind: "server_error", count: 1, status: 503 });
		const device = target();
		expect(await apns.send(device, message())).toMatchObject({
			outcome: "retry",
			reason: "InternalServerError",
			status: 500,
		});
		expect(await apns.send(device, message())).toMatchObject({ outcome: "retry", status: 500 });
		expect(await apns.send(device, message())).toMatchObject({
			outcome: "retry",
			reason: "ServiceUnavailable",
			status: 503,
		});
		expect((await apns.send(device, message())).outcome).toBe("sent");
	});

	it("gives up on a slow APNs after its timeout (retry) and leaves no timer behind", async () => {
		const { apns, sim, target } = setup({ timeoutMs: 317 });
		await fault(sim, { kind: "slow", delayMs: 2000 });
		timers = watchTimers(317);
		const started = Date.now();
		const result = await apns.send(target(), message());
		expect(result).toMatchObject({ outcome: "retry", retryAfterMs: null, reason: "timeout after 317 ms" });
		expect(Date.now() - started).toBeLessThan(1500);
		expect(timers.created()).toBe(1);
		expect(timers.pending()).toBe(0);
		// …and a call that settles in time clears its timer too.
		expect((await apns.send(target(), message())).outcome).toBe("sent");
		expect(timers.created()).toBe(2);
		expect(timers.pending()).toBe(0);
	});

	it("reuses one provider token across calls, objects and isolates (the simulator counts distinct tokens)", async () => {
		const { apns, sim, target } = setup();
		// Apple's rule, armed in this namespace: a new provider token within 20 min is refused.
		await simControl(sim, "config", { tokenUpdateMinIntervalMs: 20 * 60_000 });
		for (let i = 0; i < 3; i++) expect((await apns.send(target(), message())).outcome).toBe("sent");
		// Another object (a Session DO) sending through its own providers…
		const session = env.SESSION.get(env.SESSION.idFromName(namespaceId()));
		const fromObject = await runInDurableObject(session, () =>
			pushProviders(pushEnv("unused", { APNS_BASE_URL: sim })).apns?.send(target(), message()),
		);
		expect(fromObject?.outcome).toBe("sent");
		// …and a fresh isolate (its cache empty) is handed the same token by the PushCredentialsDO.
		resetIsolateCredentialCache();
		await Promise.all(
			[1, 2, 3].map(async () => expect((await apns.send(target(), message())).outcome).toBe("sent")),
		);
		expect((await simControl<ApnsState>(sim, "state")).distinctProviderTokens).toBe(1);
		const tokens = new Set((await recorded(sim)).map((r) => r.headers.authorization));
		expect(tokens.size).toBe(1);
	});

	it("renews the shared token once on ExpiredProviderToken and resends at once", async () => {
		const { apns, sim, target } = setup();
		await simControl(sim, "config", { tokenUpdateMinIntervalMs: 20 * 60_000 });
		expect((await apns.send(target(), message())).outcome).toBe("sent");
		await simControl(sim, "expire-tokens", {});
		const results = await Promise.all([1, 2, 3, 4].map(() => apns.send(target(), message())));
		expect(results.map((r) => r.outcome)).toEqual(["sent", "sent", "sent", "sent"]);
		// One renewal for the four senders: two distinct tokens in all, and no TooManyProviderTokenUpdates.
		expect((await simControl<ApnsState>(sim, "state")).distinctProviderTokens).toBe(2);
		expect((await recorded(sim)).filter((r) => r.status === 429)).toEqual([]);
	});

	it("uses Apple's sandbox host only with the default base URL; a configured base serves both", () => {
		expect(apnsOrigin("https://api.push.apple.com", "sandbox")).toBe("https://api.sandbox.push.apple.com");
		expect(apnsOrigin("https://api.push.apple.com", "production")).toBe("https://api.push.apple.com");
		expect(apnsOrigin("http://127.0.0.1:9999/", "sandbox")).toBe("http://127.0.0.1:9999");
	});
});
