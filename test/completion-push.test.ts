import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ACK_GRACE_MS } from "../src/session/push.ts";
import {
	api,
	auditSettled,
	connectPhone,
	deliverWebhook,
	execute,
	mandateBody,
	mobileToken,
	type Phone,
	phonesClosedAfterEach,
	runAlarm,
	runAlarmAt,
	sessionStub,
	simComplete,
	uniqueId,
} from "./helpers.ts";
import { apnsDeviceToken, BUNDLE_ID, fault, type Recorded, recorded } from "./push-helpers.ts";

/**
 * Issue 10: a mandate's one outcome reaches every device of the user who owns the session exactly
 * once — through the real Session DO, its alarm, D1 and the provider simulators — unless a phone in
 * the foreground acknowledged it within the grace.
 */

const expoToken = () => `ExponentPushToken[${crypto.randomUUID().replaceAll("-", "").slice(0, 22)}]`;

async function registered(sessionId: string, sub: string) {
	const token = await mobileToken(sessionId, { sub });
	const put = (deviceId: string, body: unknown) =>
		api(`/api/devices/${deviceId}`, {
			method: "PUT",
			headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
			body: JSON.stringify(body),
		});
	const expo = expoToken();
	const apns = apnsDeviceToken();
	expect((await put("phone_expo", { kind: "expo", token: expo })).status).toBe(201);
	expect(
		(await put("phone_ios", { kind: "apns", token: apns, bundle_id: BUNDLE_ID, environment: "sandbox" }))
			.status,
	).toBe(201);
	return { token, expo, apns };
}

/** The pushes the simulators received for these device tokens. */
async function pushesTo(tokens: { expo: string; apns: string }) {
	const expo = (await recorded(env.EXPO_PUSH_URL as string)).filter(
		(r) => r.path.endsWith("/send") && r.body?.includes(tokens.expo),
	);
	const apns = (await recorded(env.APNS_BASE_URL as string)).filter((r) =>
		r.path.endsWith(`/3/device/${tokens.apns}`),
	);
	return { expo, apns };
}

async function owned(phones: Phone[], sub: string) {
	const sessionId = uniqueId("sess");
	const phone = await connectPhone(sessionId, { token: await mobileToken(sessionId, { sub }) });
	phones.push(phone);
	await phone.waitFor((f) => f.type === "snapshot", "snapshot");
	return { sessionId, phone };
}

describe("completion push", () => {
	const phones = phonesClosedAfterEach();

	it("notifies every device of the session's owner exactly once, whatever signals repeat the outcome", async () => {
		const sub = uniqueId("user");
		const { sessionId, phone } = await owned(phones, sub);
		const devices = await registered(sessionId, sub);
		const body = mandateBody(sessionId);
		const { json } = await execute(body);
		const webhook = await simComplete(json.execution_id, { status: "COMPLETED", summary: "Report sent" });
		expect((await deliverWebhook(webhook)).status).toBe(200);
		await phone.waitForStage(body.mandate_id, 10, "completed");
		// The same outcome again, by a replay and a poll, changes nothing.
		await deliverWebhook(webhook);
		await auditSettled(sessionId);
		// Within the grace nothing is sent; after it, the alarm sends one push per device.
		expect((await pushesTo(devices)).expo).toHaveLength(0);
		await runAlarmAt(sessionId, Date.now() + ACK_GRACE_MS + 1_000);
		await expect.poll(async () => (await pushesTo(devices)).apns.length).toBe(1);
		await expect.poll(async () => (await pushesTo(devices)).expo.length).toBe(1);
		const { expo, apns } = await pushesTo(devices);
		const sent = JSON.parse((expo[0] as Recorded).body ?? "[]") as Array<Record<string, unknown>>;
		expect(sent).toEqual([
			expect.objectContaining({
				to: devices.expo,
				title: "Done: Send weekly report to team",
				body: "Report sent",
				data: expect.objectContaining({
					session_id: sessionId,
					mandate_id: body.mandate_id,
					outcome: "completed",
				}),
			}),
		]);
		const aps = JSON.parse((apns[0] as Recorded).body ?? "{}") as { aps: { alert: { title: string } } };
		expect(aps.aps.alert.title).toBe("Done: Send weekly report to team");
		expect((apns[0] as Recorded).headers["apns-collapse-id"]).toBeDefined();
		// Nothing more to send, however often the alarm runs.
		await auditSettled(sessionId);
		await runAlarm(sessionId);
		const again = await pushesTo(devices);
		expect([again.expo.length, again.apns.length]).toEqual([1, 1]);
	});

	it("sends nothing when a phone in the foreground acknowledged the outcome within the grace", async () => {
		const sub = uniqueId("user");
		const { sessionId, phone } = await owned(phones, sub);
		const devices = await registered(sessionId, sub);
		const body = mandateBody(sessionId);
		const { json } = await execute(body);
		await deliverWebhook(await simComplete(json.execution_id, { status: "FAILED" }));
		const failed = await phone.waitForStage(body.mandate_id, 9, "failed");
		phone.socket.send(JSON.stringify({ type: "ack", seq: failed.seq }));
		await phone.settle();
		await auditSettled(sessionId);
		await runAlarmAt(sessionId, Date.now() + ACK_GRACE_MS + 1_000);
		await auditSettled(sessionId);
		const pushes = await pushesTo(devices);
		expect([pushes.expo.length, pushes.apns.length]).toEqual([0, 0]);
	});

	it("pushes only to the owner's devices: another user's registered devices never buzz", async () => {
		const owner = uniqueId("owner");
		const other = uniqueId("other");
		const { sessionId } = await owned(phones, owner);
		// The other user registers devices with a token of this very session id: still theirs only.
		const theirs = await registered(sessionId, other);
		const { json } = await execute(mandateBody(sessionId));
		await deliverWebhook(await simComplete(json.execution_id));
		await auditSettled(sessionId);
		await runAlarmAt(sessionId, Date.now() + ACK_GRACE_MS + 1_000);
		await auditSettled(sessionId);
		const pushes = await pushesTo(theirs);
		expect([pushes.expo.length, pushes.apns.length]).toEqual([0, 0]);
	});

	it("removes a device the provider calls unregistered, and retries a 429 after its Retry-After", async () => {
		const sub = uniqueId("user");
		const { sessionId } = await owned(phones, sub);
		const devices = await registered(sessionId, sub);
		await fault(env.EXPO_PUSH_URL as string, { kind: "unregistered", match: devices.expo });
		await fault(env.APNS_BASE_URL as string, {
			kind: "rate_limited",
			match: devices.apns,
			count: 1,
			retryAfter: "120",
		});
		const { json } = await execute(mandateBody(sessionId));
		await deliverWebhook(await simComplete(json.execution_id));
		await auditSettled(sessionId);
		const start = Date.now();
		await runAlarmAt(sessionId, start + ACK_GRACE_MS + 1_000);
		await expect.poll(async () => (await pushesTo(devices)).apns.length).toBe(1);
		await auditSettled(sessionId);
		// The Expo device is gone from the user's devices; the iOS one waits out APNs' Retry-After.
		const list = (await (
			await api("/api/devices", { headers: { Authorization: `Bearer ${devices.token}` } })
		).json()) as { devices: Array<{ device_id: string }> };
		expect(list.devices.map((d) => d.device_id)).toEqual(["phone_ios"]);
		await runAlarmAt(sessionId, start + 60_000);
		expect((await pushesTo(devices)).apns).toHaveLength(1);
		await runAlarmAt(sessionId, start + ACK_GRACE_MS + 125_000);
		await expect
			.poll(async () => (await pushesTo(devices)).apns.filter((r) => r.status === 200).length)
			.toBe(1);
	});

	it("an eviction between the outcome and the send loses no push and sends none twice", async () => {
		const sub = uniqueId("user");
		const { sessionId, phone } = await owned(phones, sub);
		const devices = await registered(sessionId, sub);
		const body = mandateBody(sessionId);
		const { json } = await execute(body);
		const webhook = await simComplete(json.execution_id, { status: "COMPLETED" });
		await deliverWebhook(webhook);
		await phone.waitForStage(body.mandate_id, 10, "completed");
		await auditSettled(sessionId);
		// The object is evicted while the push waits out its grace; the phone's socket hibernates on.
		await evictDurableObject(sessionStub(sessionId));
		await deliverWebhook(webhook);
		await runAlarmAt(sessionId, Date.now() + ACK_GRACE_MS + 1_000);
		await expect.poll(async () => (await pushesTo(devices)).apns.length).toBe(1);
		await expect.poll(async () => (await pushesTo(devices)).expo.length).toBe(1);
		await evictDurableObject(sessionStub(sessionId));
		await runAlarmAt(sessionId, Date.now() + 120_000);
		await auditSettled(sessionId);
		const again = await pushesTo(devices);
		expect([again.expo.length, again.apns.length]).toEqual([1, 1]);
	});
});
