import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RECONNECT_CAP_MS } from "../src/openclaw/gateway-do.ts";
import { gatewayFor } from "../src/openclaw/registry.ts";
import { FakeGateway, fakeGatewaysInstalled } from "./fake-gateway.ts";
import {
	ADMIN,
	api,
	type Frame,
	type Phone,
	phonesClosedAfterEach,
	runningMandate,
	sessionStub,
	uniqueId,
} from "./helpers.ts";
import { eventually, gatewaySim, gatewayStub } from "./openclaw-helpers.ts";

/**
 * Issue 14 ("Trust"), the Gateway DO's side: an execution's stream belongs to one session, gateway
 * addresses are safe, the connection never gets stuck, the answer is never silently cut or joined,
 * and a late watch does not outlive its unwatch. Time is driven through the alarm, never waited for.
 */

fakeGatewaysInstalled();

const watchRequest = (executionId = uniqueId("exec"), sessionId = uniqueId("sess")) => ({
	executionId,
	sessionId,
	mandateId: uniqueId("mio"),
});

const register = (tenantId: string, url: string, token = "fake-token") =>
	api(`/api/admin/tenants/${tenantId}/gateway`, {
		method: "PUT",
		headers: { ...ADMIN, "content-type": "application/json" },
		body: JSON.stringify({ url, token }),
	});

async function connectedTo(fake: FakeGateway | null) {
	const tenantId = uniqueId("tenant");
	if (fake) expect((await register(tenantId, fake.url)).status).toBe(200);
	const stub = gatewayStub(tenantId);
	const request = watchRequest();
	await stub.watch(tenantId, request);
	await eventually(
		() => stub.status(),
		(s) => s.connected,
		"connected",
	);
	return { tenantId, stub, request };
}

/**
 * A restart of the Gateway DO, as a deploy or a crash does it: in-memory state and the socket are
 * gone, storage stays. (`evictDurableObject` cannot do it: an open outbound WebSocket is an active
 * reference, and eviction times out after 30 s.)
 */
async function restart(tenantId: string) {
	await runInDurableObject(gatewayStub(tenantId), (_instance, state) => state.abort("restart")).catch(
		() => {},
	);
	// A stub that saw its object abort stays broken: a fresh one reaches the new instance.
	return gatewayStub(tenantId);
}

/** The Gateway DO restarts; its alarm reconnects it to the gateway. Returns a stub of the new instance. */
async function restartAndReconnect(tenantId: string) {
	const gateway = await restart(tenantId);
	await runDurableObjectAlarm(gateway);
	await eventually(
		() => gateway.status(),
		(s) => s.connected,
		"reconnected after the restart",
	);
	return gateway;
}

const answerOf = (frames: Frame[]) =>
	frames.flatMap((f) => (f.type === "response_chunk" ? [f.chunk as string] : [])).join("");

describe("an execution's stream belongs to the session that watched it first (finding 1)", () => {
	it("refuses another session's watch of a watched execution and keeps the owner", async () => {
		const tenantId = uniqueId("tenant");
		const stub = gatewayStub(tenantId);
		const owner = watchRequest();
		await stub.watch(tenantId, owner);
		await stub.watch(tenantId, { ...owner, sessionId: uniqueId("sess") });
		const watchers = async () =>
			(await stub.status()).watched.map(({ executionId, sessionId }) => ({ executionId, sessionId }));
		expect(await watchers()).toEqual([{ executionId: owner.executionId, sessionId: owner.sessionId }]);
		// The owner watching again (a retried stage 9) is still welcome.
		await stub.watch(tenantId, owner);
		expect(await watchers()).toEqual([{ executionId: owner.executionId, sessionId: owner.sessionId }]);
	});

	it("matches a run by its runId only: a runId naming nothing is never matched by its sessionKey", async () => {
		const { stub, request } = await connectedTo(null);
		const executionId = request.executionId;
		await gatewaySim("/__sim/runs", {
			runId: uniqueId("someone_elses_run"),
			sessionKey: `agent:main:myndlens-${executionId}`,
			answer: "Another tenant's answer.",
		});
		await gatewaySim("/__sim/runs", { runId: executionId, answer: "Ours." });
		const done = await eventually(
			() => stub.status(),
			(s) => s.watched[0]?.run.ended === true,
			"our run ended",
		);
		expect(done.watched[0]?.run.answerChars).toBe("Ours.".length);
	});
});

describe("gateway addresses are wss://, ws:// only on loopback, with nothing secret in them (finding 8)", () => {
	it.each([
		["plain ws:// to a remote host", "ws://gw.example/"],
		["http://", "http://127.0.0.1:8789/"],
		["https://", "https://gw.example/"],
		["a query", "wss://gw.example/?token=secret"],
		["an empty query", "wss://gw.example/?"],
		["a fragment", "wss://gw.example/#token"],
		["credentials", "wss://user:pw@gw.example/"],
	])("the registry refuses %s with 400", async (_what, url) => {
		const response = await register(uniqueId("tenant"), url);
		expect(response.status).toBe(400);
	});

	it.each([
		"wss://gw.example/",
		"wss://gw.example:8443/openclaw",
		"ws://localhost:8789",
		"ws://127.0.0.2:8789",
		"ws://[::1]:8789",
	])("the registry accepts %s", async (url) => {
		expect((await register(uniqueId("tenant"), url)).status).toBe(200);
	});

	it("refuses an unsafe OPENCLAW_GATEWAY_URL as not configured, saying why", async () => {
		const unsafe = await gatewayFor(
			{ ...env, OPENCLAW_GATEWAY_URL: "ws://gw.example/?token=secret" },
			uniqueId("tenant"),
		);
		expect(unsafe.ok).toBe(false);
		if (!unsafe.ok) {
			expect(unsafe.reason).toContain("OPENCLAW_GATEWAY_URL");
			expect(unsafe.reason).not.toContain("secret");
		}
		const fine = await gatewayFor(env, uniqueId("tenant"));
		expect(fine.ok).toBe(true);
	});
});

describe("the gateway connection never gets stuck (finding 10)", () => {
	it("abandons an upgrade that never answers when its deadline passes, then retries", async () => {
		const fake = new FakeGateway();
		fake.mode = "hang";
		const tenantId = uniqueId("tenant");
		await register(tenantId, fake.url);
		const stub = gatewayStub(tenantId);
		await stub.watch(tenantId, watchRequest());
		await eventually(
			async () => fake.fetches,
			(n) => n === 1,
			"the upgrade is under way",
		);
		// The earliest job is the connect deadline: firing the alarm is "the upgrade never answered".
		await runDurableObjectAlarm(stub);
		expect(fake.aborted).toBe(1);
		const failed = await stub.status();
		expect(failed).toMatchObject({ connected: false, connecting: false, failures: 1 });
		expect(failed.reconnectAt).not.toBeNull();
		fake.mode = "answer";
		await runDurableObjectAlarm(stub);
		await eventually(
			() => stub.status(),
			(s) => s.connected,
			"reconnected",
		);
	});

	it("keeps backing off from a gateway that accepts and drops, until a connection proves stable", async () => {
		const fake = new FakeGateway();
		const { tenantId, stub } = await connectedTo(fake);
		await fake.close(tenantId);
		await eventually(
			() => stub.status(),
			(s) => !s.connected && s.failures === 1,
			"first drop",
		);
		await runDurableObjectAlarm(stub);
		const again = await eventually(
			() => stub.status(),
			(s) => s.connected,
			"reconnected",
		);
		expect(again.failures).toBe(1);
		await fake.close(tenantId);
		const second = await eventually(
			() => stub.status(),
			(s) => !s.connected && s.reconnectAt !== null,
			"second drop",
		);
		expect(second.failures).toBe(2);
		await runDurableObjectAlarm(stub);
		await eventually(
			() => stub.status(),
			(s) => s.connected,
			"reconnected again",
		);
		// The earliest job now is "stable": the connection outlived it, so the count resets.
		await runDurableObjectAlarm(stub);
		expect(await stub.status()).toMatchObject({ connected: true, failures: 0 });
	});

	it("drops and reconnects a connection whose frame handling failed, instead of going silent", async () => {
		const fake = new FakeGateway();
		const { tenantId, stub, request } = await connectedTo(fake);
		await runInDurableObject(stub, (_instance, state) => {
			state.storage.sql.exec(
				"CREATE TRIGGER gw_fail BEFORE UPDATE ON gw_watch BEGIN SELECT RAISE(ABORT, 'injected storage failure'); END",
			);
		});
		await fake.send(tenantId, "agent", {
			runId: request.executionId,
			seq: 1,
			stream: "lifecycle",
			data: { phase: "start" },
		});
		const lost = await eventually(
			() => stub.status(),
			(s) => !s.connected,
			"the failed connection dropped",
		);
		expect(lost.failures).toBe(1);
		await runInDurableObject(stub, (_instance, state) => state.storage.sql.exec("DROP TRIGGER gw_fail"));
		await runDurableObjectAlarm(stub);
		await eventually(
			() => stub.status(),
			(s) => s.connected,
			"reconnected",
		);
	});

	it("caps the gateway's restartExpectedMs at the reconnect cap", async () => {
		const fake = new FakeGateway();
		const { tenantId, stub } = await connectedTo(fake);
		const before = Date.now();
		await fake.send(tenantId, "shutdown", { reason: "maintenance", restartExpectedMs: 24 * 3_600_000 });
		const parked = await eventually(
			() => stub.status(),
			(s) => !s.connected && s.reconnectAt !== null,
			"shutdown noticed",
		);
		expect(parked.reconnectAt).toBeLessThanOrEqual(Date.now() + RECONNECT_CAP_MS);
		expect(parked.reconnectAt).toBeGreaterThanOrEqual(before);
	});

	it("abandons a connect in flight when an operator changes the gateway, and connects to the new one", async () => {
		const old = new FakeGateway();
		old.mode = "hang";
		const tenantId = uniqueId("tenant");
		await register(tenantId, old.url);
		const stub = gatewayStub(tenantId);
		await stub.watch(tenantId, watchRequest());
		await eventually(
			async () => old.fetches,
			(n) => n === 1,
			"the upgrade to the old gateway is under way",
		);
		const replacement = new FakeGateway();
		expect((await register(tenantId, replacement.url, "new-token")).status).toBe(200);
		await eventually(
			() => stub.status(),
			(s) => s.connected,
			"connected to the new gateway",
		);
		expect(old.aborted).toBe(1);
		expect(replacement.fetches).toBe(1);
		const connect = replacement.last.received.find((frame) => frame.method === "connect") as {
			params: { auth: { token?: string } };
		};
		expect(connect.params.auth.token).toBe("new-token");
	});

	it("reconnects right after a restart while executions are watched", async () => {
		const { tenantId } = await connectedTo(null);
		const stub = await restart(tenantId);
		await eventually(
			() => stub.status(),
			(s) => s.connected,
			"reconnected after the restart",
		);
	});

	it("keeps a watch alive while its run's events keep flowing", async () => {
		const { tenantId, stub: before, request } = await connectedTo(null);
		// The watch is 14 of its 15 minutes old.
		await runInDurableObject(before, (_instance, state) => {
			state.storage.sql.exec(
				"UPDATE gw_watch SET expires_at = ? WHERE execution_id = ?",
				Date.now() + 60_000,
				request.executionId,
			);
		});
		// Reconnecting promptly after a restart is the test above; here the alarm is simply run.
		const stub = await restartAndReconnect(tenantId);
		await gatewaySim("/__sim/runs", { runId: request.executionId, answer: "Still working on it." });
		await eventually(
			() => stub.status(),
			(s) => s.watched[0]?.run.ended === true,
			"the run's events arrived",
		);
		// Two minutes later the old expiry has passed; the run's events renewed the watch.
		await runInDurableObject(stub, (_instance, state) => {
			state.storage.sql.exec(
				"INSERT OR REPLACE INTO gw_meta (key, value) VALUES ('alarm_at', ?)",
				String(Date.now() + 2 * 60_000),
			);
		});
		await runDurableObjectAlarm(stub);
		expect((await stub.status()).watched.map((w) => w.executionId)).toEqual([request.executionId]);
	});
});

describe("the answer is never silently cut or joined (finding 11)", () => {
	const phones = phonesClosedAfterEach();

	async function streamingThroughFake() {
		const fake = new FakeGateway();
		const tenantId = uniqueId("tenant");
		await register(tenantId, fake.url);
		const running = await runningMandate(phones, { tenant_id: tenantId });
		const gateway = gatewayStub(tenantId);
		await eventually(
			() => gateway.status(),
			(s) => s.connected && s.watched.length === 1,
			"the gateway watches the execution",
		);
		let seq = 0;
		const agent = (stream: string, data: Record<string, unknown>) =>
			fake.send(tenantId, "agent", { runId: running.executionId, seq: ++seq, stream, data });
		return { ...running, fake, tenantId, gateway, agent };
	}

	const answerReaches = (phone: Phone, executionId: string, answer: string) =>
		eventually(
			async () => answerOf(phone.frames.filter((f) => f.execution_id === executionId)),
			(text) => text === answer,
			`the answer "${answer}"`,
		);

	it("keeps chunk offsets exact across a Gateway DO restart between two answer items", async () => {
		const { phone, executionId, tenantId, agent, fake } = await streamingThroughFake();
		await agent("lifecycle", { phase: "start" });
		await agent("assistant", { itemId: "item-1", text: "Let me check.", delta: "Let me check." });
		await agent("item", { itemId: "tool:1", toolCallId: "1", kind: "tool", phase: "start", name: "read" });
		await answerReaches(phone, executionId, "Let me check.");
		await restartAndReconnect(tenantId);
		expect(fake.connections.length).toBe(2);
		await agent("assistant", {
			itemId: "item-2",
			text: "The report was sent.",
			delta: "The report was sent.",
		});
		await agent("lifecycle", { phase: "end" });
		await answerReaches(phone, executionId, "Let me check.\n\nThe report was sent.");
	});

	it("keeps the answer whole, nothing twice, across a restart in the middle of an item", async () => {
		const { phone, executionId, tenantId, agent } = await streamingThroughFake();
		await agent("lifecycle", { phase: "start" });
		await agent("assistant", { itemId: "item-1", text: "Hello, ", delta: "Hello, " });
		await agent("assistant", { itemId: "item-1", text: "Hello, wor", delta: "wor" });
		await answerReaches(phone, executionId, "Hello, wor");
		// The item's progress since its start was not persisted yet (RUN_PERSIST_INTERVAL_MS): the
		// restarted object forwards from an older offset, and the session takes only what it lacks.
		await restartAndReconnect(tenantId);
		await agent("assistant", { itemId: "item-1", text: "Hello, world.", delta: "ld." });
		await agent("lifecycle", { phase: "end" });
		await answerReaches(phone, executionId, "Hello, world.");
		expect(
			phone.frames.filter((f) => f.type === "response_chunk").map((f) => (f as { chunk: string }).chunk),
		).toEqual(["Hello, ", "wor", "ld."]);
	});

	it("delivers the answer event that renews its watch, before the events behind it", async () => {
		const { phone, executionId, tenantId, agent } = await streamingThroughFake();
		await agent("lifecycle", { phase: "start" });
		// The watch is 14 of its 15 minutes old: the next event renews it and arms the alarm before its
		// text goes on (the one answer event whose handling waits; the others take no promise).
		await runInDurableObject(gatewayStub(tenantId), (_instance, state) => {
			state.storage.sql.exec(
				"UPDATE gw_watch SET expires_at = ? WHERE execution_id = ?",
				Date.now() + 60_000,
				executionId,
			);
		});
		await restartAndReconnect(tenantId);
		// One burst, the renewing event first.
		await Promise.all([
			agent("assistant", { itemId: "item-1", text: "Hello, ", delta: "Hello, " }),
			agent("assistant", { itemId: "item-1", text: "Hello, world", delta: "world" }),
			agent("assistant", { itemId: "item-1", text: "Hello, world.", delta: "." }),
			agent("lifecycle", { phase: "end" }),
		]);
		// Without the renewing event's text the phone would show " […] world." (a gap, never joined over).
		await answerReaches(phone, executionId, "Hello, world.");
	});

	it("retries a failing session over time and delivers the whole answer once it recovers", async () => {
		const { phone, sessionId, executionId, gateway, agent } = await streamingThroughFake();
		await runInDurableObject(sessionStub(sessionId), (_instance, state) => {
			state.storage.sql.exec(
				// Each answer piece is logged with how much of the answer arrived (src/session/answer.ts).
				`CREATE TRIGGER answer_fails BEFORE INSERT ON ml_events WHEN NEW.answer_chars IS NOT NULL
				 BEGIN SELECT RAISE(ABORT, 'injected session failure'); END`,
			);
		});
		await agent("lifecycle", { phase: "start" });
		await agent("assistant", { itemId: "item-1", text: "Hello, ", delta: "Hello, " });
		await eventually(
			() => gateway.status(),
			(s) => s.delivery.failedCalls >= 3,
			"deliveries failing",
		);
		await runInDurableObject(sessionStub(sessionId), (_instance, state) =>
			state.storage.sql.exec("DROP TRIGGER answer_fails"),
		);
		await agent("assistant", { itemId: "item-1", text: "Hello, world.", delta: "world." });
		// Time is driven: the alarm cuts the retry's wait short.
		await runDurableObjectAlarm(gateway);
		await answerReaches(phone, executionId, "Hello, world.");
		expect((await gateway.status()).delivery.dropped).toBe(0);
	});
});

describe("a watch that arrives after its unwatch is ignored (finding 12)", () => {
	it("ignores a watch for an execution unwatched moments ago", async () => {
		const tenantId = uniqueId("tenant");
		const stub = gatewayStub(tenantId);
		const request = watchRequest();
		await stub.unwatch(tenantId, request.executionId);
		await stub.watch(tenantId, request);
		const status = await stub.status();
		expect(status.watched).toEqual([]);
		expect(status.connecting || status.connected).toBe(false);
	});

	it("forgets the tombstone after the watch TTL", async () => {
		const tenantId = uniqueId("tenant");
		const stub = gatewayStub(tenantId);
		const request = watchRequest();
		await stub.unwatch(tenantId, request.executionId);
		await runInDurableObject(stub, (_instance, state) => {
			state.storage.sql.exec(
				"UPDATE gw_unwatched SET until = ? WHERE execution_id = ?",
				Date.now() - 1,
				request.executionId,
			);
		});
		await stub.watch(tenantId, request);
		expect((await stub.status()).watched.map((w) => w.executionId)).toEqual([request.executionId]);
		// Swept by the next unwatch.
		await stub.unwatch(tenantId, uniqueId("exec"));
		const tombstones = await runInDurableObject(
			stub,
			(_instance, state) =>
				state.storage.sql
					.exec<{ n: number }>(
						"SELECT COUNT(*) AS n FROM gw_unwatched WHERE execution_id = ?",
						request.executionId,
					)
					.one().n,
		);
		expect(tombstones).toBe(0);
	});
});
