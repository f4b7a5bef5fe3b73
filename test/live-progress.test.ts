import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { stageName } from "../src/protocol/stages.ts";
import { LIVE_DISMISS_AFTER_S, LIVE_MIN_GAP_MS, LIVE_UPDATE_INTERVAL_MS } from "../src/session/live.ts";
import { EXPO_RECEIPT_DELAY_MS } from "../src/session/push.ts";
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
	SERVICE,
	sessionStub,
	simComplete,
	uniqueId,
} from "./helpers.ts";
import { apnsDeviceToken, BUNDLE_ID, fault, type Recorded, recorded } from "./push-helpers.ts";

/**
 * Issue 10, item 3: a mandate's stages on the lock screen — iOS Live Activity pushes (coalesced
 * priority-5 updates, exactly one priority-10 end) and Android FCM data messages — through the real
 * Session DO, its alarm and D1, against the APNs and FCM simulators (which check the wire).
 */

interface LivePush {
	headers: Record<string, string>;
	aps: {
		event: "update" | "end";
		timestamp: number;
		"content-state": {
			stage: number;
			stage_name: string;
			status: string;
			progress: number;
			sub_status: string | null;
			answer_preview: string | null;
		};
		"stale-date"?: number;
		"dismissal-date"?: number;
	};
}

/** The Live Activity pushes the APNs simulator accepted for this activity token, in order. */
async function activityPushes(token: string): Promise<LivePush[]> {
	return (await recorded(env.APNS_BASE_URL as string))
		.filter((r) => r.path.endsWith(`/3/device/${token}`) && r.status === 200)
		.map((r: Recorded) => ({ headers: r.headers, aps: JSON.parse(r.body ?? "{}").aps }));
}

function putActivity(sessionId: string, mandateId: string, bearer: string, body: unknown) {
	return api(`/api/sessions/${sessionId}/mandates/${mandateId}/live-activity`, {
		method: "PUT",
		headers: { Authorization: `Bearer ${bearer}`, "Content-Type": "application/json" },
		body: JSON.stringify(body),
	});
}

/** A session owned by `sub`, a phone of theirs connected, and a mandate ObeGee is running. */
async function running(phones: Phone[], sub = uniqueId("user")) {
	const sessionId = uniqueId("sess");
	const token = await mobileToken(sessionId, { sub });
	const phone = await connectPhone(sessionId, { token });
	phones.push(phone);
	await phone.waitFor((f) => f.type === "snapshot", "snapshot");
	const body = mandateBody(sessionId);
	const { json } = await execute(body);
	await phone.waitForStage(body.mandate_id, 9, "active");
	return { sessionId, sub, token, phone, body, executionId: json.execution_id, stub: sessionStub(sessionId) };
}

async function liveRows(sessionId: string) {
	return runInDurableObject(sessionStub(sessionId), (_instance, state) =>
		state.storage.sql.exec("SELECT * FROM ml_live").toArray(),
	);
}

describe("Live Activity", () => {
	const phones = phonesClosedAfterEach();

	it("is registered only by the session owner's app, for a mandate of that session; bad input stores nothing", async () => {
		const { sessionId, sub, token, body } = await running(phones);
		const activity = { token: apnsDeviceToken(), bundle_id: BUNDLE_ID, environment: "sandbox" };
		// Another user's valid token for the same session, a token for another session, the pipeline's token.
		const stranger = await mobileToken(sessionId, { sub: uniqueId("user") });
		expect((await putActivity(sessionId, body.mandate_id, stranger, activity)).status).toBe(403);
		const elsewhere = await mobileToken(uniqueId("sess"), { sub });
		expect((await putActivity(sessionId, body.mandate_id, elsewhere, activity)).status).toBe(403);
		const service = SERVICE.Authorization.slice("Bearer ".length);
		expect((await putActivity(sessionId, body.mandate_id, service, activity)).status).toBe(403);
		expect((await putActivity(sessionId, body.mandate_id, "not-a-token", activity)).status).toBe(401);
		// Malformed bodies: a token that is not hex, an unknown field, a wrong environment, no bundle id.
		for (const bad of [
			{ ...activity, token: "zz" },
			{ ...activity, extra: 1 },
			{ ...activity, environment: "staging" },
			{ token: activity.token },
		]) {
			const response = await putActivity(sessionId, body.mandate_id, token, bad);
			expect(response.status).toBe(400);
		}
		expect((await putActivity(sessionId, "mio_unknown", token, activity)).status).toBe(404);
		expect(await liveRows(sessionId)).toEqual([]);

		const first = await putActivity(sessionId, body.mandate_id, token, activity);
		expect(first.status).toBe(201);
		expect(await first.json()).toEqual({ mandate_id: body.mandate_id, registered: "created" });
		const again = await putActivity(sessionId, body.mandate_id, token, activity);
		expect([again.status, await again.json()]).toEqual([
			200,
			{ mandate_id: body.mandate_id, registered: "unchanged" },
		]);
		// iOS may hand the activity a new push token: it replaces the old one.
		const rotated = await putActivity(sessionId, body.mandate_id, token, {
			...activity,
			token: apnsDeviceToken(),
		});
		expect(await rotated.json()).toEqual({ mandate_id: body.mandate_id, registered: "replaced" });
		expect(await liveRows(sessionId)).toHaveLength(1);
	});

	it("follows the stages with coalesced priority-5 updates and ends exactly once at priority 10", async () => {
		const { sessionId, token, body, executionId, stub } = await running(phones);
		const activityToken = apnsDeviceToken();
		const start = Date.now();
		expect(
			(await putActivity(sessionId, body.mandate_id, token, { token: activityToken, bundle_id: BUNDLE_ID }))
				.status,
		).toBe(201);
		// The current state goes out at once.
		await runAlarmAt(sessionId, start);
		await expect.poll(async () => (await activityPushes(activityToken)).length).toBe(1);
		const [first] = await activityPushes(activityToken);
		expect(first?.headers).toMatchObject({
			"apns-push-type": "liveactivity",
			"apns-topic": `${BUNDLE_ID}.push-type.liveactivity`,
			"apns-priority": "5",
		});
		expect(first?.aps).toMatchObject({
			event: "update",
			"content-state": { stage: 9, stage_name: stageName(9), status: "active", answer_preview: null },
		});
		// Spacing counts from when the update left (the alarm armed by the registration may have sent it).
		await expect.poll(async () => (await liveRows(sessionId))[0]?.last_sent_at).not.toBeNull();
		const sentAt = (await liveRows(sessionId))[0]?.last_sent_at as number;
		expect(first?.aps.timestamp).toBe(Math.floor(sentAt / 1000));
		expect(first?.aps["stale-date"]).toBeGreaterThan(first?.aps.timestamp ?? Infinity);
		expect(first?.aps["dismissal-date"]).toBeUndefined();

		// Many changes within the interval: nothing goes out before it is over, then one update with the latest.
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "status", status: "Agent started", progress: 10 },
			{ kind: "status", status: "Using email tool...", progress: 20 },
		]);
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "status", status: "Generating response...", progress: 90 },
			{ kind: "chunk", text: "The weekly report went to the team." },
		]);
		await auditSettled(sessionId);
		await runAlarmAt(sessionId, sentAt + LIVE_UPDATE_INTERVAL_MS - 100);
		expect(await activityPushes(activityToken)).toHaveLength(1);
		await runAlarmAt(sessionId, sentAt + LIVE_UPDATE_INTERVAL_MS);
		await expect.poll(async () => (await activityPushes(activityToken)).length).toBe(2);
		expect((await activityPushes(activityToken))[1]?.aps["content-state"]).toEqual({
			stage: 9,
			stage_name: stageName(9),
			status: "active",
			progress: 90,
			sub_status: "Generating response...",
			answer_preview: "The weekly report went to the team.",
		});

		// The outcome: one end, with the final state and a dismissal date, at least a second after the last update.
		const webhook = await simComplete(executionId, { status: "COMPLETED", summary: "Report sent" });
		expect((await deliverWebhook(webhook)).status).toBe(200);
		await auditSettled(sessionId);
		await runAlarmAt(sessionId, sentAt + LIVE_UPDATE_INTERVAL_MS + LIVE_MIN_GAP_MS);
		await expect.poll(async () => (await activityPushes(activityToken)).length).toBe(3);
		const end = (await activityPushes(activityToken))[2];
		expect(end?.headers["apns-priority"]).toBe("10");
		expect(end?.aps.event).toBe("end");
		expect(end?.aps["content-state"]).toMatchObject({
			stage: 10,
			stage_name: stageName(10),
			status: "completed",
			progress: 100,
		});
		expect(end?.aps["dismissal-date"]).toBe((end?.aps.timestamp ?? 0) + LIVE_DISMISS_AFTER_S);

		// A replayed webhook, later alarms, a re-registration of the same token: never a second end.
		await deliverWebhook(webhook);
		await putActivity(sessionId, body.mandate_id, token, { token: activityToken, bundle_id: BUNDLE_ID });
		await auditSettled(sessionId);
		await runAlarmAt(sessionId, sentAt + 60_000);
		await runAlarm(sessionId);
		const all = await activityPushes(activityToken);
		expect(all.map((push) => push.aps.event)).toEqual(["update", "update", "end"]);
		// Never two within a second, in the order they were written.
		const times = all.map((push) => push.aps.timestamp);
		for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThan(times[i - 1] as number);
	});

	it("ends an activity registered after the outcome at once, and a failed mandate ends with its message", async () => {
		const { sessionId, token, body, executionId } = await running(phones);
		await deliverWebhook(await simComplete(executionId, { status: "FAILED", error: "Mailbox full" }));
		await auditSettled(sessionId);
		const activityToken = apnsDeviceToken();
		await putActivity(sessionId, body.mandate_id, token, { token: activityToken, bundle_id: BUNDLE_ID });
		await runAlarmAt(sessionId, Date.now());
		await expect.poll(async () => (await activityPushes(activityToken)).length).toBe(1);
		const [end] = await activityPushes(activityToken);
		expect(end?.aps.event).toBe("end");
		expect(end?.aps["content-state"]).toMatchObject({ stage: 9, status: "failed" });
		expect(end?.aps["content-state"].sub_status).toBeTruthy();
		await runAlarmAt(sessionId, Date.now() + 10_000);
		expect(await activityPushes(activityToken)).toHaveLength(1);
	});

	it("drops an activity APNs calls unregistered (the user dismissed it): nothing more is sent to it", async () => {
		const { sessionId, token, body, executionId, stub } = await running(phones);
		const activityToken = apnsDeviceToken();
		await fault(env.APNS_BASE_URL as string, { kind: "unregistered", match: activityToken });
		await putActivity(sessionId, body.mandate_id, token, { token: activityToken, bundle_id: BUNDLE_ID });
		const start = Date.now();
		await runAlarmAt(sessionId, start);
		await expect.poll(async () => (await liveRows(sessionId)).map((row) => row.done)).toEqual([1]);
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "status", status: "Agent started", progress: 10 },
		]);
		await deliverWebhook(await simComplete(executionId, { status: "COMPLETED" }));
		await auditSettled(sessionId);
		await runAlarmAt(sessionId, start + 60_000);
		const tried = (await recorded(env.APNS_BASE_URL as string)).filter((r) =>
			r.path.endsWith(`/3/device/${activityToken}`),
		);
		expect(tried.map((r) => r.status)).toEqual([410]);
	});
});

describe("Android progress", () => {
	const phones = phonesClosedAfterEach();

	it("sends the owner's FCM devices the same state as data messages, high priority only for the final one", async () => {
		const sub = uniqueId("user");
		const sessionId = uniqueId("sess");
		const token = await mobileToken(sessionId, { sub });
		const phone = await connectPhone(sessionId, { token });
		phones.push(phone);
		await phone.waitFor((f) => f.type === "snapshot", "snapshot");
		const fcmToken = `fcm-${crypto.randomUUID()}:APA91b${"x".repeat(20)}`;
		const put = await api("/api/devices/pixel", {
			method: "PUT",
			headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
			body: JSON.stringify({ kind: "fcm", token: fcmToken }),
		});
		expect(put.status).toBe(201);
		const body = mandateBody(sessionId);
		const { json } = await execute(body);
		await phone.waitForStage(body.mandate_id, 9, "active");
		// The fan-out (a D1 read) runs off the execute call's path; the alarm then sends.
		await expect.poll(async () => (await liveRows(sessionId)).length).toBe(1);
		await runAlarmAt(sessionId, Date.now());
		const sent = async () =>
			(await recorded(env.FCM_BASE_URL as string))
				.filter((r) => r.path.endsWith("messages:send") && r.body?.includes(fcmToken) && r.status === 200)
				.map(
					(r) =>
						JSON.parse(r.body ?? "{}").message as {
							data: Record<string, string>;
							android: Record<string, unknown>;
						},
				);
		await expect.poll(async () => (await sent()).length).toBe(1);
		const [update] = await sent();
		expect(update?.data).toMatchObject({
			type: "mandate_progress",
			event: "update",
			session_id: sessionId,
			mandate_id: body.mandate_id,
			stage: "9",
			stage_name: stageName(9),
			status: "active",
		});
		expect(update?.android).toMatchObject({
			priority: "NORMAL",
			collapse_key: `progress:${body.mandate_id}`,
		});
		// No notification block: a data message the app turns into its ongoing notification.
		expect(update).not.toHaveProperty("notification");

		await deliverWebhook(await simComplete(json.execution_id, { status: "COMPLETED", summary: "Done" }));
		await auditSettled(sessionId);
		await runAlarmAt(sessionId, Date.now() + LIVE_UPDATE_INTERVAL_MS);
		await expect.poll(async () => (await sent()).length).toBe(2);
		const end = (await sent())[1];
		expect(end?.data).toMatchObject({ event: "end", stage: "10", status: "completed", progress: "100" });
		expect(end?.android).toMatchObject({ priority: "HIGH" });
	});

	it("follows nothing for a user without an Android device", async () => {
		const { sessionId } = await running(phones);
		await auditSettled(sessionId);
		expect(await liveRows(sessionId)).toEqual([]);
	});
});

describe("completion push, phone in the pocket", () => {
	const phones = phonesClosedAfterEach();

	it("goes out at once when no phone is connected (nobody could acknowledge it), and reads the Expo receipt later", async () => {
		const { sessionId, token, phone, executionId } = await running(phones);
		const expoToken = `ExponentPushToken[${crypto.randomUUID().replaceAll("-", "").slice(0, 22)}]`;
		const put = await api("/api/devices/phone", {
			method: "PUT",
			headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
			body: JSON.stringify({ kind: "expo", token: expoToken }),
		});
		expect(put.status).toBe(201);
		// The app was swiped away after the ticket: only the receipt says so.
		await fault(env.EXPO_PUSH_URL as string, { kind: "unregistered", match: expoToken, at: "receipt" });
		phone.close();
		await expect
			.poll(() => runInDurableObject(sessionStub(sessionId), (_i, state) => state.getWebSockets().length))
			.toBe(0);
		await deliverWebhook(await simComplete(executionId, { status: "COMPLETED", summary: "Report sent" }));
		// No alarm is run: the push is sent straight after the outcome.
		const sends = async () =>
			(await recorded(env.EXPO_PUSH_URL as string)).filter(
				(r) => r.path.endsWith("/send") && r.body?.includes(expoToken),
			);
		await expect.poll(async () => (await sends()).length).toBe(1);
		await auditSettled(sessionId);
		const devices = async () =>
			(
				(await (await api("/api/devices", { headers: { Authorization: `Bearer ${token}` } })).json()) as {
					devices: unknown[];
				}
			).devices;
		expect(await devices()).toHaveLength(1);

		// ~15 minutes later the alarm reads the receipt: DeviceNotRegistered removes the device.
		await runAlarmAt(sessionId, Date.now() + EXPO_RECEIPT_DELAY_MS);
		await expect.poll(devices).toEqual([]);
		const receipts = (await recorded(env.EXPO_PUSH_URL as string)).filter((r) =>
			r.path.endsWith("/getReceipts"),
		);
		expect(receipts.length).toBeGreaterThan(0);
		await auditSettled(sessionId);
		const audit = await env.DB.prepare(
			"SELECT event FROM audit_log WHERE session_id = ? AND event LIKE 'push%' ORDER BY seq",
		)
			.bind(sessionId)
			.all<{ event: string }>();
		expect(audit.results.map((row) => row.event)).toEqual(
			expect.arrayContaining(["push_sent", "push_device_removed"]),
		);
	});
});
