import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { pushProviders, type WebPushTarget } from "../src/push/provider.ts";
import {
	fault,
	message,
	namespaceId,
	pushEnv,
	recorded,
	simControl,
	WEBPUSH_SIM_URL,
	watchTimers,
} from "./push-helpers.ts";

/**
 * The Web Push provider against the push service simulator (sim/push/webpush.ts), which plays the
 * browser too: it made the subscription, holds its private key and decrypts every push with
 * `http_ece`, an implementation independent of ours.
 */

async function setup(options: { timeoutMs?: number; applicationServerKey?: string } = {}) {
	const ns = namespaceId();
	const webpush = pushProviders(pushEnv(ns), options).webpush;
	if (!webpush) throw new Error("Web Push should be on in tests");
	const sim = `${WEBPUSH_SIM_URL}/ns/${ns}`;
	const subscribe = async (): Promise<WebPushTarget> => {
		const sub = await simControl<{ endpoint: string; keys: { p256dh: string; auth: string } }>(
			sim,
			"subscriptions",
			{
				applicationServerKey: options.applicationServerKey ?? env.VAPID_PUBLIC_KEY,
			},
		);
		return { kind: "webpush", endpoint: sub.endpoint, p256dh: sub.keys.p256dh, auth: sub.keys.auth };
	};
	return { webpush, sim, subscribe };
}

describe("Web Push provider", () => {
	let timers: ReturnType<typeof watchTimers> | null = null;
	afterEach(() => {
		timers?.restore();
		timers = null;
	});

	it("encrypts (aes128gcm) a payload the push service decrypts, with VAPID and the exact headers", async () => {
		const { webpush, sim, subscribe } = await setup();
		const subscription = await subscribe();
		const result = await webpush.send(subscription, message({ priority: "normal", ttlSeconds: 600 }));
		expect(result).toMatchObject({ outcome: "sent", providerId: expect.stringContaining("/message/") });
		const [request] = await recorded(sim);
		expect(request?.status).toBe(201);
		expect(request?.headers).toMatchObject({
			ttl: "600",
			urgency: "normal",
			topic: expect.stringMatching(/^[\w-]{1,32}$/),
			"content-encoding": "aes128gcm",
			"content-type": "application/octet-stream",
			authorization: expect.stringMatching(
				new RegExp(`^vapid t=[\\w-]+\\.[\\w-]+\\.[\\w-]+, k=${env.VAPID_PUBLIC_KEY}$`),
			),
		});
		expect(JSON.parse(request?.note.plaintext as string)).toEqual({
			title: "Done: Send weekly report to team",
			body: "Delivered to email",
			data: { mandate_id: "mio_1", session_id: "ses_1" },
		});
		expect(request?.note.vapid).toMatchObject({
			aud: new URL(WEBPUSH_SIM_URL).origin,
			sub: env.VAPID_SUBJECT,
		});
		// Ciphertext, not the JSON: 86 bytes of header + the record.
		expect(atob(request?.bodyBase64 ?? "")).not.toContain("weekly report");
	});

	it("uses a collapse key as Topic when it fits, else a digest of it; high priority is Urgency high", async () => {
		const { webpush, sim, subscribe } = await setup();
		const subscription = await subscribe();
		await webpush.send(subscription, message({ collapseKey: "mio_1-outcome" }));
		await webpush.send(subscription, message({ collapseKey: "mio_1:outcome" }));
		const [plain, hashed] = await recorded(sim);
		expect(plain?.headers.topic).toBe("mio_1-outcome");
		expect(plain?.headers.urgency).toBe("high");
		expect(hashed?.headers.topic).toMatch(/^[\w-]{32}$/);
	});

	it("classifies 410 (an expired subscription) and 404 as unregistered", async () => {
		const { webpush, sim, subscribe } = await setup();
		const subscription = await subscribe();
		await fault(sim, { kind: "unregistered" });
		expect(await webpush.send(subscription, message())).toMatchObject({
			outcome: "unregistered",
			status: 410,
		});
		const unknown = { ...subscription, endpoint: `${sim}/push/nobody` };
		expect(await webpush.send(unknown, message())).toMatchObject({ outcome: "unregistered", status: 404 });
	});

	it("classifies 429 (Retry-After) and 5xx as retry", async () => {
		const { webpush, sim, subscribe } = await setup();
		const subscription = await subscribe();
		await fault(sim, { kind: "rate_limited", retryAfter: "3" });
		await fault(sim, { kind: "server_error", count: 2 });
		expect(await webpush.send(subscription, message())).toMatchObject({
			outcome: "retry",
			retryAfterMs: 3000,
			status: 429,
		});
		expect(await webpush.send(subscription, message())).toMatchObject({ outcome: "retry", status: 503 });
		expect(await webpush.send(subscription, message())).toMatchObject({ outcome: "retry", status: 503 });
		expect((await webpush.send(subscription, message())).outcome).toBe("sent");
	});

	it("rejects a subscription made for another application server key (403) and malformed keys (no request)", async () => {
		const other = `B${"A".repeat(86)}`;
		const { webpush, sim, subscribe } = await setup({ applicationServerKey: other });
		const subscription = await subscribe();
		expect(await webpush.send(subscription, message())).toMatchObject({ outcome: "rejected", status: 403 });
		expect(await webpush.send({ ...subscription, p256dh: "AAAA" }, message())).toMatchObject({
			outcome: "rejected",
			reason: expect.stringMatching(/^invalid_subscription/),
		});
		expect(await recorded(sim)).toHaveLength(1);
	});

	it("gives up on a slow push service after its timeout (retry) and leaves no timer behind", async () => {
		const { webpush, sim, subscribe } = await setup({ timeoutMs: 263 });
		const subscription = await subscribe();
		await fault(sim, { kind: "slow", delayMs: 2000 });
		timers = watchTimers(263);
		expect(await webpush.send(subscription, message())).toMatchObject({
			outcome: "retry",
			reason: "timeout after 263 ms",
		});
		expect(timers.created()).toBe(1);
		expect(timers.pending()).toBe(0);
	});
});
