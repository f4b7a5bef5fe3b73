import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DISPATCH_TIMEOUT_MS, STATUS_TIMEOUT_MS } from "../src/obegee/client.ts";
import { forgetGatewayPresence, HAS_GATEWAY_TTL_MS, hasGateway } from "../src/openclaw/registry.ts";
import {
	deliverWebhook,
	phonesClosedAfterEach,
	runAlarmUntilPolled,
	runningMandate,
	sessionStub,
	simComplete,
	uniqueId,
} from "./helpers.ts";
import { watchTimers } from "./push-helpers.ts";

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
