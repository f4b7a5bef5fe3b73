import { describe, expect, it } from "vitest";
import {
	connectPhone,
	execute,
	mandateBody,
	phonesClosedAfterEach,
	progressOf,
	runAlarmAt,
	simCalls,
	uniqueId,
} from "./helpers.ts";
import { TEST_TIMING } from "./secrets.ts";

// Seed-spec Test 3: ObeGee refusing or failing a dispatch gives a clear error to the caller and a
// failed stage with the same user-friendly message on the phone.
describe("dispatch errors", () => {
	const phones = phonesClosedAfterEach();

	it("an invalid tenant fails stage 6 with a friendly message, once", async () => {
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		const body = mandateBody(sessionId, { tenant_id: "tenant_invalid_42", dimensions: {} });
		const before = (await simCalls()).dispatch;

		const { response, json } = await execute(body);
		expect(response.status).toBe(422);
		const error = (json as unknown as { error: { code: string; message: string } }).error;
		expect(error.code).toBe("invalid_tenant");
		expect(error.message).toMatch(/workspace/i);
		expect(error.message).not.toContain("tenant_invalid_42");

		const failed = await phone.waitForStage(body.mandate_id, 6, "failed");
		expect(failed.data).toMatchObject({ stage_name: "Agents assigned", message: error.message });
		expect(phone.stages(body.mandate_id).map((s) => `${s.stage}:${s.status}`)).toEqual([
			"1:completed",
			"2:completed",
			"3:completed",
			"4:completed",
			"5:completed",
			"6:failed",
		]);

		// Asking again answers the same, without dispatching again.
		const again = await execute(body);
		expect(again.response.status).toBe(422);
		expect(again.json).toEqual(json);
		expect((await simCalls()).dispatch - before).toBe(1);

		const mandate = (await progressOf(sessionId)).mandates[0];
		expect(mandate).toMatchObject({ state: "failed", execution_id: null, error: error.message });
	});

	it("an unreachable ObeGee (5xx) is retried until the deadline, then fails stage 6 with a retry-later message", async () => {
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		const body = mandateBody(sessionId, { dimensions: { sim_dispatch_error: 503 } });
		const before = (await simCalls()).dispatch;
		// Issue 14: an outage is not an answer. The caller hears that we keep trying.
		const first = await execute(body);
		expect(first.response.status).toBe(503);
		expect((first.json as unknown as { error: { code: string } }).error.code).toBe("dispatch_pending");
		expect((await progressOf(sessionId)).mandates[0]?.state).toBe("dispatching");

		// The alarm retries with the same Idempotency-Key until the mandate's deadline.
		await runAlarmAt(sessionId, Date.now() + Number(TEST_TIMING.EXECUTION_TIMEOUT_MS) + 1_000);
		const { response, json } = await execute(body);
		expect(response.status).toBe(502);
		const error = (json as unknown as { error: { code: string; message: string } }).error;
		expect(error).toEqual({ code: "obegee_unavailable", message: expect.stringMatching(/try again/i) });
		const failed = await phone.waitForStage(body.mandate_id, 6, "failed");
		expect((failed.data as { message: string }).message).toBe(error.message);
		expect((await simCalls()).dispatch - before).toBe(2);
	});
});
