import { describe, expect, it } from "vitest";
import { backoffDelay } from "../src/pipeline/backoff.ts";
import { dispatchFailure, executionFailedMessage, timeoutMessage } from "../src/pipeline/messages.ts";
import { nextProgress, stillWorkingStatus } from "../src/pipeline/progress.ts";

describe("polling backoff", () => {
	it("polls at the base interval while healthy", () => {
		expect(backoffDelay(0, 2_000, 30_000)).toBe(2_000);
	});

	it("doubles per failure, with half of the wait random, up to the cap", () => {
		expect(backoffDelay(1, 2_000, 30_000, () => 0)).toBe(2_000);
		expect(backoffDelay(1, 2_000, 30_000, () => 1)).toBe(4_000);
		expect(backoffDelay(2, 2_000, 30_000, () => 1)).toBe(8_000);
		expect(backoffDelay(10, 2_000, 30_000, () => 1)).toBe(30_000);
		expect(backoffDelay(10, 2_000, 30_000, () => 0)).toBe(15_000);
	});
});

describe("progress", () => {
	it("never decreases and stays within 0–100", () => {
		expect(nextProgress(40, 10)).toBe(40);
		expect(nextProgress(40, 55)).toBe(55);
		expect(nextProgress(90, 140)).toBe(100);
	});

	it("tells how long a run has been going", () => {
		expect(stillWorkingStatus(45_000)).toBe("Still working... (45 s)");
		expect(stillWorkingStatus(150_000)).toBe("Still working... (2 min 30 s)");
	});
});

describe("user-facing messages", () => {
	it("explains an unknown tenant without internal detail", () => {
		const failure = dispatchFailure({
			kind: "rejected",
			httpStatus: 422,
			code: "invalid_tenant",
			detail: "Tenant tenant_x does not exist",
		});
		expect(failure).toMatchObject({ httpStatus: 422, code: "invalid_tenant" });
		expect(failure.message).not.toContain("tenant_x");
	});

	it("maps an unreachable ObeGee to a retry-later message", () => {
		const failure = dispatchFailure({ kind: "unavailable", httpStatus: null, detail: "timeout" });
		expect(failure).toMatchObject({ httpStatus: 502, code: "obegee_unavailable" });
	});

	it("says how long we waited before giving up", () => {
		expect(timeoutMessage(300_000)).toContain("5 minutes");
	});

	it("keeps ObeGee's failure text short and never empty", () => {
		expect(executionFailedMessage(undefined)).toBe("The agent couldn't complete this request.");
		expect(executionFailedMessage("x".repeat(1000))).toHaveLength(300);
	});
});
