import { evictDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DISPATCH_TIMEOUT_MS, STATUS_TIMEOUT_MS } from "../src/obegee/client.ts";
import {
	deliverWebhook,
	phonesClosedAfterEach,
	runAlarmUntilPolled,
	runningMandate,
	sessionStub,
	simComplete,
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
