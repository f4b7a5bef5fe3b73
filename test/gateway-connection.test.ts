import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, api, uniqueId } from "./helpers.ts";
import { eventually, gatewaySim, gatewayStub, simStats } from "./openclaw-helpers.ts";

/** The Gateway DO's connection to the (simulated) OpenClaw Gateway: handshake, refusal, reconnect, idle close. */

const watchRequest = (executionId = uniqueId("exec")) => ({
	executionId,
	sessionId: uniqueId("sess"),
	mandateId: uniqueId("mio"),
});

async function connected(tenantId: string) {
	const stub = gatewayStub(tenantId);
	const request = watchRequest();
	await stub.watch(tenantId, request);
	await eventually(
		() => stub.status(),
		(s) => s.connected,
		"connected",
	);
	return { stub, request };
}

describe("gateway connection", () => {
	it("completes the v4 handshake with a signed device identity and stores the device token", async () => {
		const before = await simStats();
		const tenantId = uniqueId("tenant");
		const { stub } = await connected(tenantId);
		const status = await stub.status();
		expect(status).toMatchObject({
			connected: true,
			hasDeviceToken: true,
			failures: 0,
			gatewaySource: "default",
		});
		const after = await simStats();
		expect(after.hellos).toBe(before.hellos + 1);
		expect(after.refusals.length).toBe(before.refusals.length);
	});

	it("reconnects after a drop as the same paired device, presenting its device token", async () => {
		const tenantId = uniqueId("tenant");
		const { stub } = await connected(tenantId);
		const { deviceId } = await stub.status();
		const before = await simStats();
		await gatewaySim("/__sim/drop", { code: 1012, deviceId });
		const lost = await eventually(
			() => stub.status(),
			(s) => !s.connected,
			"drop noticed",
		);
		expect(lost.reconnectAt).not.toBeNull();
		// The alarm is armed for the reconnect itself, not only for some later job.
		await eventually(
			() => runInDurableObject(stub, (_instance, state) => state.storage.getAlarm()),
			(alarm) => alarm === lost.reconnectAt,
			"alarm armed for the reconnect",
		);
		expect(await runDurableObjectAlarm(stub)).toBe(true);
		await eventually(
			() => stub.status(),
			(s) => s.connected,
			"reconnected",
		);
		const after = await simStats();
		expect((await stub.status()).deviceId).toBe(deviceId);
		expect(after.devices.length).toBe(before.devices.length);
		expect(after.deviceTokenConnects).toBeGreaterThan(before.deviceTokenConnects);
	});

	it("logs a wrong token, backs off and does not retry in a tight loop", async () => {
		const tenantId = uniqueId("tenant");
		const put = await api(`/api/admin/tenants/${tenantId}/gateway`, {
			method: "PUT",
			headers: { ...ADMIN, "content-type": "application/json" },
			body: JSON.stringify({ url: env.OPENCLAW_GATEWAY_URL, token: "wrong-token" }),
		});
		expect(put.status).toBe(200);
		const stub = gatewayStub(tenantId);
		const started = Date.now();
		await stub.watch(tenantId, watchRequest());
		const refused = await eventually(
			() => stub.status(),
			(s) => s.lastRefusal !== null,
			"refusal",
		);
		expect(refused).toMatchObject({ connected: false, lastRefusal: "AUTH_TOKEN_MISMATCH", failures: 1 });
		expect(refused.reconnectAt).toBeGreaterThanOrEqual(started + 1_000);
		const connections = (await simStats()).connections;
		await new Promise((resolve) => setTimeout(resolve, 300));
		expect((await simStats()).connections).toBe(connections);
		// Time is driven: the alarm retries once, refused again, and the next wait is longer.
		await runDurableObjectAlarm(stub);
		const again = await eventually(
			() => stub.status(),
			(s) => s.failures === 2,
			"second refusal",
		);
		expect(again.reconnectAt).not.toBeNull();
	});

	it("closes the socket after an idle grace when nothing is watched", async () => {
		const tenantId = uniqueId("tenant");
		const { stub, request } = await connected(tenantId);
		await stub.unwatch(tenantId, request.executionId);
		const idle = await stub.status();
		expect(idle).toMatchObject({ connected: true, reconnectAt: null });
		expect(idle.idleCloseAt).not.toBeNull();
		await runDurableObjectAlarm(stub);
		expect(await stub.status()).toMatchObject({ connected: false, idleCloseAt: null, reconnectAt: null });
	});

	it("treats missing ticks as a dead connection", async () => {
		const tenantId = uniqueId("tenant");
		const { stub } = await connected(tenantId);
		// The earliest job is the tick deadline: firing the alarm is "time passes without a tick".
		await runDurableObjectAlarm(stub);
		const status = await stub.status();
		expect(status.connected && status.reconnectAt === null).toBe(false);
		await runDurableObjectAlarm(stub);
		await eventually(
			() => stub.status(),
			(s) => s.connected,
			"reconnected after silence",
		);
	});

	it("lets a watch expire on its own when unwatch never comes", async () => {
		const tenantId = uniqueId("tenant");
		const { stub } = await connected(tenantId);
		// Jump the clock past the watch's TTL (15 minutes are not waited for): the alarm acts as of
		// the time it was armed for.
		await runInDurableObject(stub, (_instance, state) => {
			state.storage.sql.exec(
				"INSERT OR REPLACE INTO gw_meta (key, value) VALUES ('alarm_at', ?)",
				String(Date.now() + 16 * 60_000),
			);
		});
		await runDurableObjectAlarm(stub);
		const status = await stub.status();
		expect(status.watched).toEqual([]);
		expect(status.idleCloseAt).not.toBeNull();
	});
});
