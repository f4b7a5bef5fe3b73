import { describe, expect, it } from "vitest";
import {
	dispatchFailure,
	executionFailedMessage,
	pollRefusedMessage,
	timeoutMessage,
} from "../../src/pipeline/messages.ts";

/** What the user reads when something goes wrong (seed-spec.md, Test 3): friendly, never internal. */

const INVALID_TENANT = {
	httpStatus: 422,
	code: "invalid_tenant",
	message:
		"Your workspace isn't set up to run this request. Please check your MyndLens account or contact support.",
};
const REJECTED = {
	httpStatus: 422,
	code: "mandate_rejected",
	message: "This request couldn't be accepted for execution. Please rephrase it and try again.",
};
const UNAVAILABLE = {
	httpStatus: 502,
	code: "obegee_unavailable",
	message: "The service that runs your request isn't reachable right now. Please try again in a moment.",
};

describe("a dispatch ObeGee refused", () => {
	it("is an invalid tenant for each of ObeGee's tenant codes, in any case", () => {
		for (const code of ["invalid_tenant", "unknown_tenant", "tenant_not_found", "Unknown_Tenant"]) {
			expect(dispatchFailure({ kind: "rejected", httpStatus: 400, code, detail: null })).toEqual(
				INVALID_TENANT,
			);
		}
	});

	it("is a rejected mandate for any other code, or none", () => {
		for (const code of ["validation_error", "tenant", null]) {
			expect(
				dispatchFailure({ kind: "rejected", httpStatus: 400, code, detail: "tenant_x unknown" }),
			).toEqual(REJECTED);
		}
	});

	it("asks for a retry later when our credentials were refused, and says we were alerted", () => {
		expect(dispatchFailure({ kind: "unauthorized", httpStatus: 401 })).toEqual({
			httpStatus: 502,
			code: "obegee_unauthorized",
			message: "MyndLens couldn't start this task right now. We've been alerted; please try again later.",
		});
	});

	it("asks for a retry in a moment when ObeGee was unreachable or answered nonsense", () => {
		expect(dispatchFailure({ kind: "unavailable", httpStatus: 503, detail: "down" })).toEqual(UNAVAILABLE);
		expect(dispatchFailure({ kind: "bad_response", detail: "not JSON" })).toEqual(UNAVAILABLE);
	});
});

describe("the timeout message", () => {
	const said = (span: string) =>
		`This is taking longer than expected, so we stopped waiting after ${span}. If it still finishes, the result will appear here.`;

	it("says the wait in minutes, singular or plural", () => {
		expect(timeoutMessage(300_000)).toBe(said("5 minutes"));
		expect(timeoutMessage(60_000)).toBe(said("1 minute"));
		expect(timeoutMessage(90_000)).toBe(said("2 minutes"));
	});

	it("says the wait in seconds below half a minute's rounding", () => {
		expect(timeoutMessage(29_000)).toBe(said("29 seconds"));
		expect(timeoutMessage(1_500)).toBe(said("2 seconds"));
	});
});

describe("a run ObeGee ended without success", () => {
	it("gets our own words per kind", () => {
		expect(executionFailedMessage("FAILED")).toBe(
			"The agent couldn't complete this request. Please try again in a moment.",
		);
		expect(executionFailedMessage("CANCELLED")).toBe(
			"This request was cancelled before it finished, so it didn't complete.",
		);
		expect(executionFailedMessage("REJECTED")).toBe(
			"This request couldn't be run by the agent. Please rephrase it and try again.",
		);
	});
});

describe("a poll ObeGee refused for good", () => {
	it("says whether we lost access or ObeGee forgot the run", () => {
		expect(pollRefusedMessage("unauthorized")).toBe(
			"MyndLens lost access to the service running this request, so we can't tell how it ended. We've been alerted; please check before trying again.",
		);
		expect(pollRefusedMessage("unknown_execution")).toBe(
			"The service running this request no longer knows about it, so we can't tell how it ended. We've been alerted; please try again.",
		);
	});
});
