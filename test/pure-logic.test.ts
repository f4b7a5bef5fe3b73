import { describe, expect, it } from "vitest";
import { latestStages } from "../src/d1/executions.ts";
import { parseRetryAfter } from "../src/obegee/client.ts";
import {
	backoffDelay,
	honourRetryAfter,
	POLL_BACKOFF_CAP_MS,
	pollRetryDelay,
	RETRY_AFTER_CAP_MS,
} from "../src/pipeline/backoff.ts";
import {
	dispatchFailure,
	executionFailedMessage,
	pollRefusedMessage,
	timeoutMessage,
} from "../src/pipeline/messages.ts";
import { nextProgress, remoteStatusRank, stillWorkingStatus } from "../src/pipeline/progress.ts";
import { DeliveryWebhook, ExecutionStatus } from "../src/protocol/obegee.ts";

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

	it("ranks ObeGee's running statuses so a sub-status never goes back", () => {
		expect(remoteStatusRank("EXECUTING")).toBeGreaterThan(remoteStatusRank("QUEUED"));
		expect(remoteStatusRank("QUEUED")).toBeGreaterThan(remoteStatusRank("SOMETHING_NEW"));
		expect(remoteStatusRank(null)).toBe(0);
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

	// Issue 16 changes this: ObeGee's failure text never reaches the phone; ours is per kind.
	it("shows our own words per failure kind, never ObeGee's text", () => {
		const messages = (["FAILED", "CANCELLED", "REJECTED"] as const).map(executionFailedMessage);
		expect(new Set(messages).size).toBe(3);
		for (const message of messages) expect(message.length).toBeGreaterThan(0);
		expect(messages[0]).toMatch(/^The agent couldn't complete this request\./);
		expect(pollRefusedMessage("unauthorized")).toMatch(/alerted/);
		expect(pollRefusedMessage("unknown_execution")).toMatch(/alerted/);
	});

	it("only an explicit tenant error code is an invalid tenant, not a text that mentions one", () => {
		const failure = dispatchFailure({
			kind: "rejected",
			httpStatus: 422,
			code: "validation_error",
			detail: "tenant_id has the wrong format",
		});
		expect(failure.code).toBe("mandate_rejected");
		expect(
			dispatchFailure({ kind: "rejected", httpStatus: 422, code: null, detail: "unknown tenant" }).code,
		).toBe("mandate_rejected");
		expect(
			dispatchFailure({ kind: "rejected", httpStatus: 404, code: "TENANT_NOT_FOUND", detail: null }).code,
		).toBe("invalid_tenant");
	});
});

describe("ObeGee's Retry-After and the retry schedule (issue 16)", () => {
	it("reads delay-seconds and HTTP dates, and ignores anything else", () => {
		const now = Date.parse("2026-03-01T12:00:00Z");
		expect(parseRetryAfter("120", now)).toBe(120_000);
		expect(parseRetryAfter(" 0 ", now)).toBe(0);
		expect(parseRetryAfter("Sun, 01 Mar 2026 12:00:30 GMT", now)).toBe(30_000);
		expect(parseRetryAfter("Sun, 01 Mar 2026 11:00:00 GMT", now)).toBe(0);
		expect(parseRetryAfter("soon", now)).toBeNull();
		expect(parseRetryAfter("-5", now)).toBeNull();
		expect(parseRetryAfter(null, now)).toBeNull();
	});

	it("waits at least Retry-After, up to its cap, never less than the backoff", () => {
		expect(honourRetryAfter(2_000, null)).toBe(2_000);
		expect(honourRetryAfter(2_000, 45_000)).toBe(45_000);
		expect(honourRetryAfter(20_000, 5_000)).toBe(20_000);
		expect(honourRetryAfter(2_000, 86_400_000)).toBe(RETRY_AFTER_CAP_MS);
	});

	it("never polls a failing ObeGee sooner than a healthy one, even with an interval above the cap", () => {
		for (const random of [() => 0, () => 0.5, () => 1]) {
			for (let failures = 1; failures <= 10; failures++) {
				expect(pollRetryDelay(failures, 60_000, null, random)).toBeGreaterThanOrEqual(60_000);
				expect(pollRetryDelay(failures, 2_000, null, random)).toBeLessThanOrEqual(POLL_BACKOFF_CAP_MS);
			}
		}
		expect(pollRetryDelay(1, 2_000, 45_000, () => 0)).toBe(45_000);
	});
});

describe("ObeGee's status answers and webhooks: one parser (issue 16)", () => {
	const parsers = { status: ExecutionStatus, webhook: DeliveryWebhook };
	for (const [name, parser] of Object.entries(parsers)) {
		it(`${name}: strict about status and execution id, generous about display fields`, () => {
			const good = parser.safeParse({
				execution_id: "exec_1",
				status: " Completed ",
				summary: null,
				error: null,
				delivered_to: null,
				completed_at: 1_767_225_600_000,
			});
			expect(good.success && good.data).toMatchObject({
				status: "COMPLETED",
				summary: null,
				delivered_to: [],
				completed_at: "2026-01-01T00:00:00.000Z",
			});
			expect(parser.safeParse({ execution_id: "exec_1", status: "canceled" }).data?.status).toBe("CANCELLED");
			expect(parser.safeParse({ execution_id: "exec_1", summary: "x" }).success).toBe(false);
			expect(parser.safeParse({ execution_id: "exec_1", status: 7 }).success).toBe(false);
			expect(parser.safeParse({ execution_id: "bad id!", status: "COMPLETED" }).success).toBe(false);
			const odd = parser.safeParse({
				execution_id: "exec_1",
				status: "FAILED",
				summary: 42,
				delivered_to: "me",
			});
			expect(odd.data).toMatchObject({
				summary: null,
				delivered_to: [],
				clamped: ["delivered_to", "summary"],
			});
		});
	}
	it("a webhook must name its execution; a status answer may leave it out", () => {
		expect(DeliveryWebhook.safeParse({ status: "COMPLETED" }).success).toBe(false);
		expect(ExecutionStatus.safeParse({ status: "COMPLETED", execution_id: null }).success).toBe(true);
	});
});

describe("an execution's stages, from its audit timeline (issue 17: no second copy in D1)", () => {
	it("keeps each stage's last row, ignores other events and malformed rows, and sorts by stage", () => {
		const row = (event: string, detail: unknown, at: string) => ({ event, detail, at });
		expect(
			latestStages([
				row("stage", { stage: 2, status: "active", message: null }, "t1"),
				row("dispatched", { stage: 9 }, "t2"),
				row("stage", { stage: 1, status: "completed", message: "Heard" }, "t3"),
				row("stage", { stage: 2, status: "failed", message: "No contacts" }, "t4"),
				row("stage", { stage: "3", status: "active" }, "t5"),
				row("stage", null, "t6"),
				row("stage", { stage: 4 }, "t7"),
			]),
		).toEqual([
			{ stage: 1, status: "completed", message: "Heard", updated_at: "t3" },
			{ stage: 2, status: "failed", message: "No contacts", updated_at: "t4" },
		]);
	});
});
