import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, api, uniqueId } from "./helpers.ts";
import { eventually, gatewaySim, gatewayStub, simConnects, simStats } from "./openclaw-helpers.ts";

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
	// Issue 19: a real gateway issues no device token to a gateway-client backend on loopback (no pairing
	// record is made for it); these two tests used to expect one. Device tokens: "a remote gateway" below.
	it("completes the v4 handshake with a signed device identity; on loopback no device token is issued", async () => {
		const before = await simStats();
		const tenantId = uniqueId("tenant");
		const { stub } = await connected(tenantId);
		const status = await stub.status();
		expect(status).toMatchObject({
			connected: true,
			hasDeviceToken: false,
			failures: 0,
			gatewaySource: "default",
		});
		const after = await simStats();
		expect(after.hellos).toBe(before.hellos + 1);
		const [connect] = await simConnects(status.deviceId as string);
		// What the Worker needs to see its runs: agent/chat events (operator.read) and tool events (caps).
		expect(connect).toMatchObject({
			peer: "loopback",
			outcome: "hello-ok",
			deviceTokenIssued: false,
			params: { scopes: ["operator.read", "operator.write"], caps: ["tool-events"] },
		});
	});

	it("reconnects after a drop as the same device, with the shared token", async () => {
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
		const connects = await simConnects(deviceId as string);
		expect(connects.map((c) => c.outcome)).toEqual(["hello-ok", "hello-ok"]);
		expect(connects.every((c) => c.params.auth?.deviceToken === undefined)).toBe(true);
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

	it("waits as long as an UNAVAILABLE gateway asks (retryAfterMs), then connects", async () => {
		const tenantId = uniqueId("tenant");
		const { stub } = await connected(tenantId);
		const { deviceId } = await stub.status();
		await gatewaySim("/__sim/devices", { deviceId, unavailable: 1, retryAfterMs: 4_000 });
		await gatewaySim("/__sim/drop", { code: 1012, deviceId });
		await eventually(
			() => stub.status(),
			(s) => !s.connected,
			"drop noticed",
		);
		await runDurableObjectAlarm(stub);
		const started = Date.now();
		const refused = await eventually(
			() => stub.status(),
			(s) => s.lastRefusal === "UNAVAILABLE",
			"UNAVAILABLE",
		);
		expect(refused.connected).toBe(false);
		expect(refused.reconnectAt).toBeGreaterThanOrEqual(started + 3_900);
		await runDurableObjectAlarm(stub);
		await eventually(
			() => stub.status(),
			(s) => s.connected,
			"connected once the gateway is up",
		);
	});

	it("treats shutdown as a restart: the socket closes and it reconnects after the hinted wait", async () => {
		const tenantId = uniqueId("tenant");
		const { stub } = await connected(tenantId);
		const { deviceId } = await stub.status();
		const started = Date.now();
		await gatewaySim("/__sim/shutdown", { restartExpectedMs: 3_000, deviceId });
		const lost = await eventually(
			() => stub.status(),
			(s) => !s.connected && s.reconnectAt !== null,
			"shutdown noticed",
		);
		expect(lost.reconnectAt).toBeGreaterThanOrEqual(started + 2_900);
		await runDurableObjectAlarm(stub);
		await eventually(
			() => stub.status(),
			(s) => s.connected,
			"reconnected after the restart",
		);
	});

	it("a gateway that never challenges closes the socket at its pre-connect limit; the Worker retries", async () => {
		const tenantId = uniqueId("tenant");
		const put = await api(`/api/admin/tenants/${tenantId}/gateway`, {
			method: "PUT",
			headers: { ...ADMIN, "content-type": "application/json" },
			body: JSON.stringify({
				url: `${env.OPENCLAW_GATEWAY_URL}/no-challenge/preauth-ms/150`,
				token: env.OPENCLAW_GATEWAY_TOKEN,
			}),
		});
		expect(put.status).toBe(200);
		const stub = gatewayStub(tenantId);
		await stub.watch(tenantId, watchRequest());
		const lost = await eventually(
			() => stub.status(),
			(s) => !s.connected && !s.connecting && s.reconnectAt !== null,
			"pre-connect close noticed",
		);
		expect(lost.failures).toBe(1);
		expect((await simStats()).preauthCloses).toContain("handshake-timeout");
	});
});

describe("a remote gateway (non-loopback peer)", () => {
	async function remoteTenant() {
		const tenantId = uniqueId("tenant");
		const put = await api(`/api/admin/tenants/${tenantId}/gateway`, {
			method: "PUT",
			headers: { ...ADMIN, "content-type": "application/json" },
			body: JSON.stringify({ url: `${env.OPENCLAW_GATEWAY_URL}/remote`, token: env.OPENCLAW_GATEWAY_TOKEN }),
		});
		expect(put.status).toBe(200);
		const stub = gatewayStub(tenantId);
		await stub.watch(tenantId, watchRequest());
		return { tenantId, stub };
	}

	async function paired() {
		const { stub } = await remoteTenant();
		const refused = await eventually(
			() => stub.status(),
			(s) => s.lastRefusal !== null,
			"refusal",
		);
		await gatewaySim("/__sim/approve", { deviceId: refused.deviceId });
		await runDurableObjectAlarm(stub);
		const ready = await eventually(
			() => stub.status(),
			(s) => s.connected,
			"connected after approval",
		);
		return { stub, deviceId: ready.deviceId as string };
	}

	it("refuses the unknown device with PAIRING_REQUIRED; the Worker waits for an operator, then pairs and keeps the device token", async () => {
		const { stub } = await remoteTenant();
		const started = Date.now();
		const refused = await eventually(
			() => stub.status(),
			(s) => s.lastRefusal !== null,
			"refusal",
		);
		expect(refused).toMatchObject({
			connected: false,
			lastRefusal: "PAIRING_REQUIRED",
			hasDeviceToken: false,
		});
		expect(refused.reconnectAt).toBeGreaterThanOrEqual(started + 1_000);
		const { pending } = await gatewaySim<{ pending: { deviceId: string }[] }>("/__sim/pairing");
		expect(pending.map((p) => p.deviceId)).toContain(refused.deviceId);
		// No tight loop while nobody approves.
		const attempts = (await simConnects(refused.deviceId as string)).length;
		await new Promise((resolve) => setTimeout(resolve, 300));
		expect(await simConnects(refused.deviceId as string)).toHaveLength(attempts);

		await gatewaySim("/__sim/approve", { deviceId: refused.deviceId });
		await runDurableObjectAlarm(stub);
		const ready = await eventually(
			() => stub.status(),
			(s) => s.connected,
			"connected after approval",
		);
		expect(ready).toMatchObject({ hasDeviceToken: true, lastRefusal: null });
	});

	it("reconnects with the device token the remote gateway issued", async () => {
		const { stub, deviceId } = await paired();
		await gatewaySim("/__sim/drop", { code: 1012, deviceId });
		await eventually(
			() => stub.status(),
			(s) => !s.connected,
			"drop noticed",
		);
		await runDurableObjectAlarm(stub);
		await eventually(
			() => stub.status(),
			(s) => s.connected,
			"reconnected",
		);
		const connects = await simConnects(deviceId);
		expect(connects.map((c) => c.outcome)).toEqual(["PAIRING_REQUIRED", "hello-ok", "hello-ok"]);
		expect(connects[2]?.params.auth?.deviceToken).toMatch(/^devtok_/);
		expect(connects[2]?.peer).toBe("remote");
	});

	it("on AUTH_SCOPE_MISMATCH waits for an operator and stops presenting the narrowed device token", async () => {
		const { stub, deviceId } = await paired();
		await gatewaySim("/__sim/devices", { deviceId, tokenScopes: ["operator.read"] });
		await gatewaySim("/__sim/drop", { code: 1012, deviceId });
		await eventually(
			() => stub.status(),
			(s) => !s.connected,
			"drop noticed",
		);
		await runDurableObjectAlarm(stub);
		const refused = await eventually(
			() => stub.status(),
			(s) => s.lastRefusal === "AUTH_SCOPE_MISMATCH",
			"AUTH_SCOPE_MISMATCH",
		);
		// Not a bad token: the token is set aside (the pairing decides), and nothing retries in a loop.
		expect(refused.hasDeviceToken).toBe(false);
		const attempts = (await simConnects(deviceId)).length;
		await new Promise((resolve) => setTimeout(resolve, 300));
		expect(await simConnects(deviceId)).toHaveLength(attempts);
		await runDurableObjectAlarm(stub);
		await eventually(
			() => stub.status(),
			(s) => s.connected,
			"connected on the device's approved pairing",
		);
		const last = (await simConnects(deviceId)).at(-1);
		expect(last?.params.auth?.deviceToken).toBeUndefined();
	});
});
