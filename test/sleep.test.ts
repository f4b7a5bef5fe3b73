import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DISPATCH_TIMEOUT_MS, STATUS_TIMEOUT_MS } from "../src/obegee/client.ts";
import { IDLE_CLOSE_MS } from "../src/openclaw/gateway-do.ts";
import { forgetGatewayPresence, HAS_GATEWAY_TTL_MS, hasGateway } from "../src/openclaw/registry.ts";
import {
	auditSettled,
	deliverWebhook,
	execute,
	mandateBody,
	phonesClosedAfterEach,
	runAlarmAt,
	runAlarmUntilPolled,
	runningMandate,
	sessionStub,
	simCalls,
	simComplete,
	uniqueId,
} from "./helpers.ts";
import { eventually, gatewaySim, gatewayStub } from "./openclaw-helpers.ts";
import { watchTimers } from "./push-helpers.ts";
import { TEST_TIMING } from "./secrets.ts";

/**
 * Issue 17, item 3: nothing keeps a Session DO awake after its work. A timer left pending after a call
 * (as `AbortSignal.timeout` leaves one) keeps the object from hibernating and billable until it fires.
 */
describe("objects that sleep", () => {
	const phones = phonesClosedAfterEach();
	const watches: Array<ReturnType<typeof watchTimers>> = [];
	afterEach(() => {
		for (const watch of watches.splice(0)) watch.restore();
		vi.restoreAllMocks();
	});

	it("leaves no ObeGee timer pending after a dispatch, a poll or a finished run, and can be evicted at once", async () => {
		// A timer no one can clear (it lives on after the call it guarded) must never be started.
		const uncleared = vi.spyOn(AbortSignal, "timeout");
		const dispatch = watchTimers(DISPATCH_TIMEOUT_MS);
		const status = watchTimers(STATUS_TIMEOUT_MS);
		watches.push(dispatch, status);
		const { sessionId, body, executionId, phone } = await runningMandate(phones);
		expect(dispatch.created()).toBeGreaterThan(0);
		expect(dispatch.pending()).toBe(0);
		// Between two polls: the poll's timer is gone with its answer.
		await runAlarmUntilPolled(sessionId, body.mandate_id);
		expect(status.created()).toBeGreaterThan(0);
		expect(status.pending()).toBe(0);
		await evictDurableObject(sessionStub(sessionId));
		// After the run: nothing left either.
		await deliverWebhook(await simComplete(executionId));
		await phone.waitForStage(body.mandate_id, 10, "completed");
		expect([dispatch.pending(), status.pending()]).toEqual([0, 0]);
		expect(uncleared).not.toHaveBeenCalled();
	});
});

/**
 * workerd hibernates an object this long after its last request or event ended, if nothing keeps it
 * in memory (no timer, no I/O awaited, only hibernatable WebSockets): `handleShutdown` in
 * workerd/server/server.c++ waits 10 s, as the docs say ("currently, it is after 10 seconds of
 * inactivity"). Measured on workerd 1.20261102.1: the same instance after 9.5 s idle, a new one after 11 s.
 */
const HIBERNATES_AFTER_MS = 10_000;
/** How long the test leaves the objects alone: the runtime's window and a margin for a busy machine. */
const IDLE_WAIT_MS = HIBERNATES_AFTER_MS + 2_500;

type SessionStub = ReturnType<typeof sessionStub>;

/** The object's live instance and its armed alarm, read in one request (which wakes it if it slept). */
function liveInstance(stub: SessionStub) {
	return runInDurableObject(stub, async (instance, state) => ({
		instance,
		alarm: await state.storage.getAlarm(),
	}));
}

/** How often ObeGee was asked for this execution's status. */
async function statusPolls(executionId: string): Promise<number> {
	return (await simCalls()).status[executionId] ?? 0;
}

/**
 * Runs the alarm as if the clock read `at` and checks that it polled ObeGee: the next poll is then
 * due POLL_INTERVAL_MS after `at`, so no real alarm fires before it (a test's `at` lies far enough
 * ahead for the idle wait to end first).
 */
async function pollAt(mandate: Awaited<ReturnType<typeof runningMandate>>, at: number): Promise<void> {
	// An outbox copy still running would re-arm the alarm for its own time under runAlarmAt.
	await auditSettled(mandate.sessionId);
	const polls = await statusPolls(mandate.executionId);
	await runAlarmAt(mandate.sessionId, at);
	expect(await statusPolls(mandate.executionId)).toBe(polls + 1);
	const { next_poll_at } = await runInDurableObject(mandate.stub, (_instance, state) =>
		state.storage.sql
			.exec<{ next_poll_at: number }>(
				"SELECT next_poll_at FROM ml_mandates WHERE mandate_id = ?",
				mandate.body.mandate_id,
			)
			.one(),
	);
	expect(next_poll_at).toBe(at + Number(TEST_TIMING.POLL_INTERVAL_MS));
}

/**
 * Issue 17, item 3, proven on the runtime itself: an idle Session DO whose only remaining things are
 * its phones' hibernatable WebSockets leaves memory on its own (its constructor runs again on the
 * next request), and its phones stay connected and hear it afterwards. Nothing forces it
 * (no evictDurableObject); a control object with one pending timer shows the test sees the difference.
 */
describe("a Session DO hibernates on its own", () => {
	const phones = phonesClosedAfterEach();

	it(
		"between two ObeGee polls and after its run, with a phone connected; a pending timer keeps it awake",
		async () => {
			// The control: a running mandate polled once, plus one timer left pending in the object (as
			// `AbortSignal.timeout` leaves one after the call it guarded).
			const awake = await runningMandate(phones);
			await pollAt(awake, Date.now() + 30_000);
			const timer = await runInDurableObject(awake.stub, () => setTimeout(() => {}, IDLE_WAIT_MS + 30_000));
			try {
				// A finished run: ObeGee's webhook ended it; only its retention is scheduled now.
				const finished = await runningMandate(phones);
				expect((await deliverWebhook(await simComplete(finished.executionId))).status).toBe(200);
				await finished.phone.waitForStage(finished.body.mandate_id, 10, "completed");
				await auditSettled(finished.sessionId);
				// A running mandate polled once, as of 30 s from now (its next alarm is 40 s away); set up
				// last, so whatever its poll left behind is judged from the poll on. The wait catches
				// anything that keeps an object busy more than IDLE_WAIT_MS - HIBERNATES_AFTER_MS after
				// its last request (ObeGee's 5 s status timeout, left pending, is).
				const polling = await runningMandate(phones);
				await pollAt(polling, Date.now() + 30_000);
				const before = {
					polling: await liveInstance(polling.stub),
					finished: await liveInstance(finished.stub),
					awake: await liveInstance(awake.stub),
				};
				// An alarm in the window would wake the object and make the comparison meaningless.
				const windowEnds = Date.now() + IDLE_WAIT_MS;
				for (const { alarm } of Object.values(before)) {
					expect(alarm ?? Number.POSITIVE_INFINITY).toBeGreaterThan(windowEnds + 5_000);
				}

				await new Promise((resolve) => setTimeout(resolve, IDLE_WAIT_MS));

				// The control stayed in memory: the same instance answers.
				const awakeAfter = await liveInstance(awake.stub);
				expect(awakeAfter.instance, "a pending timer keeps the object in memory").toBe(before.awake.instance);

				// Between two polls: it slept (a new instance), no alarm ran meanwhile, the phone is still
				// connected, and the next poll's frame reaches it on the same socket.
				const pollingAfter = await liveInstance(polling.stub);
				expect(pollingAfter.instance, "hibernated between two polls").not.toBe(before.polling.instance);
				expect(pollingAfter.alarm).toBe(before.polling.alarm);
				expect(polling.phone.closed).toBeNull();
				const lastSeq = polling.phone.seqs().at(-1) ?? 0;
				const polls = await statusPolls(polling.executionId);
				await runAlarmUntilPolled(polling.sessionId, polling.body.mandate_id);
				expect(await statusPolls(polling.executionId)).toBe(polls + 1);
				await polling.phone.waitFor(
					(f) => f.type === "progress" && f.mandate_id === polling.body.mandate_id && Number(f.seq) > lastSeq,
					"the second poll's progress frame",
				);

				// After the run: it slept too, and the session's next run reaches the same phone.
				const finishedAfter = await liveInstance(finished.stub);
				expect(finishedAfter.instance, "hibernated after its run").not.toBe(before.finished.instance);
				expect(finishedAfter.alarm).toBe(before.finished.alarm);
				expect(finished.phone.closed).toBeNull();
				const next = mandateBody(finished.sessionId);
				expect((await execute(next)).response.status).toBe(200);
				await finished.phone.waitForStage(next.mandate_id, 9, "active");
			} finally {
				await runInDurableObject(awake.stub, () => clearTimeout(timer));
			}
		},
		IDLE_WAIT_MS + 30_000,
	);
});

/** Issue 17: "the Gateway DO closes its socket within 5 s of its last watch" — by its own alarm. */
describe("a Gateway DO with nothing left to watch", () => {
	it("closes its gateway socket IDLE_CLOSE_MS after the last unwatch, without the test driving its alarm", async () => {
		// The bound: the socket is kept at most 5 s for a back-to-back run.
		expect(IDLE_CLOSE_MS).toBeLessThanOrEqual(5_000);
		const tenantId = uniqueId("tenant");
		const stub = gatewayStub(tenantId);
		const executionId = uniqueId("exec");
		await stub.watch(tenantId, { executionId, sessionId: uniqueId("sess"), mandateId: uniqueId("mio") });
		await eventually(
			() => stub.status(),
			(s) => s.connected,
			"connected",
		);
		const openBefore = (await gatewaySim<{ open: number }>("/__sim/state")).open;
		const unwatchFrom = Date.now();
		await stub.unwatch(tenantId, executionId);
		const unwatchedBy = Date.now();
		// Kept open for a moment (a back-to-back run reuses it), with the close due IDLE_CLOSE_MS after
		// the unwatch and the alarm armed for it.
		const idle = await stub.status();
		expect(idle).toMatchObject({ connected: true, watched: [] });
		const closeAt = idle.idleCloseAt as number;
		expect(closeAt).toBeGreaterThanOrEqual(unwatchFrom + IDLE_CLOSE_MS);
		expect(closeAt).toBeLessThanOrEqual(unwatchedBy + IDLE_CLOSE_MS);
		expect(await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm())).toBe(closeAt);
		// The runtime fires that alarm; the socket closes then, not before.
		const closed = await eventually(
			() => stub.status(),
			(s) => !s.connected,
			"the idle close",
			closeAt - Date.now() + 5_000,
		);
		expect(Date.now()).toBeGreaterThanOrEqual(closeAt);
		expect(closed).toMatchObject({ connected: false, idleCloseAt: null, reconnectAt: null });
		await eventually(
			() => gatewaySim<{ open: number }>("/__sim/state"),
			(s) => s.open < openBefore,
			"the gateway sees the socket closed",
		);
	});
});

describe("no Gateway DO request for a tenant without a gateway", () => {
	it("answers from OPENCLAW_GATEWAY_URL without D1, else from the registry, remembered per isolate", async () => {
		const reads: string[] = [];
		const db = {
			prepare(sql: string) {
				reads.push(sql);
				return env.DB.prepare(sql);
			},
		} as unknown as D1Database;
		// A valid default gateway serves every tenant: no read at all.
		expect(await hasGateway({ DB: db, OPENCLAW_GATEWAY_URL: "wss://gateway.example" }, "tenant_x")).toBe(
			true,
		);
		expect(reads).toEqual([]);
		// No default: the registry says; the answer is kept for a while, then read again.
		const tenant = uniqueId("tenant");
		const noDefault = { DB: db, OPENCLAW_GATEWAY_URL: "" };
		const now = Date.now();
		expect(await hasGateway(noDefault, tenant, now)).toBe(false);
		expect(await hasGateway(noDefault, tenant, now + 1_000)).toBe(false);
		expect(reads).toHaveLength(1);
		await env.DB.prepare(
			"INSERT INTO tenant_gateways (tenant_id, url, token, updated_at) VALUES (?, 'wss://gw.example', '', ?)",
		)
			.bind(tenant, new Date().toISOString())
			.run();
		expect(await hasGateway(noDefault, tenant, now + HAS_GATEWAY_TTL_MS + 1)).toBe(true);
		// The admin route forgets at once what this isolate knew.
		forgetGatewayPresence(tenant);
		await env.DB.prepare("DELETE FROM tenant_gateways WHERE tenant_id = ?").bind(tenant).run();
		expect(await hasGateway(noDefault, tenant, now + HAS_GATEWAY_TTL_MS + 2)).toBe(false);
	});
});
