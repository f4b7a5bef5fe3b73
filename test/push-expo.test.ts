import { afterEach, describe, expect, it } from "vitest";
import { type ExpoTarget, pushProviders } from "../src/push/provider.ts";
import { fault, message, namespaceId, pushEnv, recorded, simControl, watchTimers } from "./push-helpers.ts";

/** The Expo Push API provider against the Expo simulator (sim/push/expo.ts), one namespace per test. */

function setup(options: { timeoutMs?: number } = {}) {
	const ns = namespaceId();
	const config = pushEnv(ns);
	const expo = pushProviders(config, options).expo;
	if (!expo) throw new Error("Expo should be on in tests");
	const sim = config.EXPO_PUSH_URL as string;
	const target = (): ExpoTarget => ({ kind: "expo", token: `ExponentPushToken[${crypto.randomUUID()}]` });
	return { expo, sim, target };
}

describe("Expo provider", () => {
	let timers: ReturnType<typeof watchTimers> | null = null;
	afterEach(() => {
		timers?.restore();
		timers = null;
	});

	it("sends a message the simulator accepts, returns its ticket id, and fetches its receipt", async () => {
		const { expo, sim, target } = setup();
		const device = target();
		const result = await expo.send(device, message());
		expect(result).toMatchObject({ outcome: "sent", providerId: expect.any(String) });
		const [request] = await recorded(sim);
		expect(request?.path).toBe("/send");
		expect(request?.headers).toMatchObject({
			"content-type": "application/json",
			accept: "application/json",
		});
		expect(request?.headers.authorization).toBe("Bearer test-expo-access-token");
		expect(JSON.parse(request?.body ?? "")).toEqual([
			{
				to: device.token,
				title: "Done: Send weekly report to team",
				body: "Delivered to email",
				data: { mandate_id: "mio_1", session_id: "ses_1" },
				sound: "default",
				ttl: 3600,
				priority: "high",
			},
		]);
		const id = result.outcome === "sent" ? (result.providerId ?? "") : "";
		expect(await expo.getReceipts([id, "unknown-ticket"])).toEqual({
			receipts: { [id]: { outcome: "sent" } },
			pending: ["unknown-ticket"],
			retryAfterMs: null,
		});
	});

	it("without the access token Expo requires, every message is rejected (401)", async () => {
		const expo = pushProviders(pushEnv(namespaceId(), { EXPO_ACCESS_TOKEN: undefined })).expo;
		expect(await expo?.send({ kind: "expo", token: "ExponentPushToken[abc]" }, message())).toEqual({
			outcome: "rejected",
			reason: "UNAUTHORIZED: The bearer token is invalid.",
			status: 401,
		});
	});

	it("batches 250 messages into requests of at most 100, one result per message in order", async () => {
		const { expo, sim, target } = setup();
		const items = Array.from({ length: 250 }, () => ({ target: target(), message: message() }));
		const gone = items[137]?.target.token ?? "";
		await fault(sim, { kind: "unregistered", match: gone });
		const results = await expo.sendBatch(items);
		expect(results).toHaveLength(250);
		expect(results[137]).toMatchObject({
			outcome: "unregistered",
			reason: expect.stringMatching(/^DeviceNotRegistered/),
		});
		expect(results.filter((r) => r.outcome === "sent")).toHaveLength(249);
		const sizes = (await recorded(sim)).map((r) => JSON.parse(r.body ?? "[]").length);
		expect(sizes.sort()).toEqual([100, 100, 50]);
	});

	it("classifies DeviceNotRegistered in a ticket and in a receipt as unregistered", async () => {
		const { expo, sim, target } = setup();
		const [a, b] = [target(), target()];
		await fault(sim, { kind: "unregistered", match: a.token });
		await fault(sim, { kind: "unregistered", match: b.token, at: "receipt" });
		expect((await expo.send(a, message())).outcome).toBe("unregistered");
		const ticket = await expo.send(b, message());
		expect(ticket.outcome).toBe("sent");
		const id = ticket.outcome === "sent" ? (ticket.providerId ?? "") : "";
		const { receipts } = await expo.getReceipts([id]);
		expect(receipts[id]).toMatchObject({
			outcome: "unregistered",
			reason: expect.stringMatching(/^DeviceNotRegistered/),
		});
	});

	it("classifies 429 (Retry-After) and a 5xx burst as retry for every message of the request", async () => {
		const { expo, sim, target } = setup();
		await fault(sim, { kind: "rate_limited", retryAfter: "7" });
		const limited = await expo.sendBatch([
			{ target: target(), message: message() },
			{ target: target(), message: message() },
		]);
		expect(limited).toEqual([
			{ outcome: "retry", retryAfterMs: 7000, reason: "TOO_MANY_REQUESTS: Too many requests", status: 429 },
			{ outcome: "retry", retryAfterMs: 7000, reason: "TOO_MANY_REQUESTS: Too many requests", status: 429 },
		]);
		await fault(sim, { kind: "server_error", count: 2, status: 503 });
		expect(await expo.send(target(), message())).toMatchObject({ outcome: "retry", status: 503 });
		expect(await expo.send(target(), message())).toMatchObject({ outcome: "retry", status: 503 });
		expect((await expo.send(target(), message())).outcome).toBe("sent");
	});

	it("leaves receipts pending when getReceipts is refused, with its Retry-After", async () => {
		const { expo, sim, target } = setup();
		const sent = await expo.send(target(), message());
		const id = sent.outcome === "sent" ? (sent.providerId ?? "") : "";
		await fault(sim, { kind: "rate_limited", match: "getReceipts", retryAfter: "60" });
		expect(await expo.getReceipts([id])).toEqual({ receipts: {}, pending: [id], retryAfterMs: 60_000 });
		expect((await expo.getReceipts([id])).receipts[id]).toEqual({ outcome: "sent" });
	});

	it("rejects a message Expo refuses (MessageTooBig)", async () => {
		const { expo, target } = setup();
		expect(await expo.send(target(), message({ body: "x".repeat(5000) }))).toMatchObject({
			outcome: "rejected",
			reason: "MessageTooBig: Message too big",
		});
	});

	it("gives up on a slow Expo after its timeout (retry) and leaves no timer behind", async () => {
		const { expo, sim, target } = setup({ timeoutMs: 271 });
		await fault(sim, { kind: "slow", delayMs: 2000 });
		timers = watchTimers(271);
		expect(await expo.send(target(), message())).toMatchObject({
			outcome: "retry",
			reason: "timeout after 271 ms",
		});
		expect(timers.pending()).toBe(0);
		expect(timers.created()).toBe(1);
		expect((await simControl<{ tickets: number }>(sim, "state")).tickets).toBe(1); // Expo did take it: retries must dedupe
	});
});
