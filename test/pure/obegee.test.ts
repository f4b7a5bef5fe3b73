import { describe, expect, it } from "vitest";
import {
	clampText,
	DeliveryWebhook,
	DispatchResponse,
	ExecutionStatus,
	isTerminalStatus,
	MAX_ERROR_CHARS,
	MAX_RECIPIENT_CHARS,
	MAX_RECIPIENTS,
	MAX_SUMMARY_CHARS,
	MAX_TIMESTAMP_CHARS,
	ObeGeeErrorBody,
	TERMINAL_STATUSES,
	TRUNCATION_MARK,
} from "../../src/protocol/obegee.ts";

/**
 * ObeGee's answers (seed-spec.md; issue 16): one reading for the poll and the webhook, strict about
 * what decides the outcome (status, execution id), generous about what is only displayed.
 */

const status = (body: Record<string, unknown>) =>
	ExecutionStatus.safeParse({ execution_id: "exec_1", ...body });
const read = (body: Record<string, unknown>) => {
	const result = status({ status: "COMPLETED", ...body });
	if (!result.success) throw new Error(`refused: ${JSON.stringify(body)}`);
	return result.data;
};

describe("the dispatch answer", () => {
	it("is ObeGee's execution id and status", () => {
		const answer = { execution_id: "exec_abc123", status: "QUEUED" };
		expect(DispatchResponse.safeParse(answer).data).toEqual(answer);
		expect(DispatchResponse.safeParse({ execution_id: "exec 1", status: "QUEUED" }).success).toBe(false);
		expect(DispatchResponse.safeParse({ execution_id: "exec_1", status: "" }).success).toBe(false);
		expect(DispatchResponse.safeParse({ execution_id: "exec_1", status: "Q".repeat(33) }).success).toBe(
			false,
		);
		expect(DispatchResponse.safeParse({ execution_id: "exec_1" }).success).toBe(false);
	});
});

describe("ObeGee's outcomes", () => {
	it("are COMPLETED, FAILED, CANCELLED and REJECTED; anything else is still running", () => {
		expect(TERMINAL_STATUSES).toEqual(["COMPLETED", "FAILED", "CANCELLED", "REJECTED"]);
		for (const s of TERMINAL_STATUSES) expect(isTerminalStatus(s)).toBe(true);
		for (const s of ["QUEUED", "EXECUTING", "completed", "PAUSED", ""])
			expect(isTerminalStatus(s)).toBe(false);
	});
});

describe("a display field cut to its bound", () => {
	it("is kept whole up to the bound", () => {
		expect(clampText("abcd", 4)).toBe("abcd");
		expect(clampText("", 0)).toBe("");
	});

	it("beyond it, is cut to the bound with the last character the truncation mark", () => {
		expect(TRUNCATION_MARK).toBe("…");
		expect(clampText("abcdef", 4)).toBe("abc…");
		expect(clampText("abcdef", 1)).toBe("…");
	});

	it("the bounds are the documented ones", () => {
		expect([
			MAX_SUMMARY_CHARS,
			MAX_ERROR_CHARS,
			MAX_RECIPIENTS,
			MAX_RECIPIENT_CHARS,
			MAX_TIMESTAMP_CHARS,
		]).toEqual([4000, 2000, 20, 254, 64]);
	});
});

describe("the status: what decides the outcome", () => {
	it("is matched case-insensitively and trimmed; ObeGee's 'CANCELED' is CANCELLED", () => {
		expect(read({ status: " completed " }).status).toBe("COMPLETED");
		expect(read({ status: "Failed" }).status).toBe("FAILED");
		expect(read({ status: "canceled" }).status).toBe("CANCELLED");
		expect(read({ status: "Executing" }).status).toBe("EXECUTING");
	});

	it("must be a non-blank string of at most 32 characters", () => {
		expect(status({ status: "   " }).error?.issues.map((i) => i.message)).toEqual(["must not be blank"]);
		expect(status({ status: "" }).success).toBe(false);
		expect(status({ status: "S".repeat(32) }).success).toBe(true);
		expect(status({ status: "S".repeat(33) }).success).toBe(false);
		expect(status({ status: 1 }).success).toBe(false);
		expect(status({}).success).toBe(false);
	});

	it("a status answer may leave the execution id out; if it names one, it must be an identifier", () => {
		expect(read({ execution_id: undefined }).execution_id).toBeNull();
		expect(read({ execution_id: null }).execution_id).toBeNull();
		expect(read({}).execution_id).toBe("exec_1");
		expect(status({ status: "COMPLETED", execution_id: "exec 1" }).success).toBe(false);
	});

	it("a webhook must name its execution", () => {
		const body = { execution_id: "exec_1", status: "completed", summary: "Sent" };
		expect(DeliveryWebhook.safeParse(body).data).toMatchObject({
			execution_id: "exec_1",
			status: "COMPLETED",
			summary: "Sent",
		});
		expect(DeliveryWebhook.safeParse({ status: "COMPLETED" }).success).toBe(false);
		expect(DeliveryWebhook.safeParse({ execution_id: null, status: "COMPLETED" }).success).toBe(false);
	});
});

describe("the display fields: generous", () => {
	it("a plain answer is read as sent, nothing clamped", () => {
		expect(
			read({
				summary: "Weekly report sent",
				error: null,
				delivered_to: ["email", "slack"],
				completed_at: "2026-02-18T22:05:00Z",
			}),
		).toEqual({
			execution_id: "exec_1",
			status: "COMPLETED",
			summary: "Weekly report sent",
			error: null,
			delivered_to: ["email", "slack"],
			delivered_to_count: 2,
			completed_at: "2026-02-18T22:05:00Z",
			clamped: [],
		});
	});

	it("absent or null fields are absent, and not clamped", () => {
		for (const value of [undefined, null]) {
			expect(read({ summary: value, error: value, delivered_to: value, completed_at: value })).toMatchObject({
				summary: null,
				error: null,
				delivered_to: [],
				delivered_to_count: 0,
				completed_at: null,
				clamped: [],
			});
		}
	});

	it("fields of the wrong type count as absent and are named as clamped, in a fixed order", () => {
		expect(read({ summary: 42, error: { a: 1 }, delivered_to: "me", completed_at: true })).toMatchObject({
			summary: null,
			error: null,
			delivered_to: [],
			completed_at: null,
			clamped: ["delivered_to", "completed_at", "summary", "error"],
		});
	});

	it("a summary is cut to 4000 characters, an error to 2000", () => {
		const exact = read({ summary: "s".repeat(4000), error: "e".repeat(2000) });
		expect(exact).toMatchObject({ summary: "s".repeat(4000), error: "e".repeat(2000), clamped: [] });
		const long = read({ summary: "s".repeat(4001), error: "e".repeat(2001) });
		expect(long.summary).toBe(`${"s".repeat(3999)}…`);
		expect(long.error).toBe(`${"e".repeat(1999)}…`);
		expect(long.clamped).toEqual(["summary", "error"]);
	});

	it("recipients: strings only, at most 20, each at most 254 characters; the count is what ObeGee named", () => {
		const many = Array.from({ length: 25 }, (_, i) => `r${i}`);
		expect(read({ delivered_to: many })).toMatchObject({
			delivered_to: many.slice(0, 20),
			delivered_to_count: 25,
			clamped: ["delivered_to"],
		});
		expect(read({ delivered_to: many.slice(0, 20) })).toMatchObject({ delivered_to_count: 20, clamped: [] });
		expect(read({ delivered_to: ["email", 7, null, "sms"] })).toMatchObject({
			delivered_to: ["email", "sms"],
			delivered_to_count: 2,
			clamped: ["delivered_to"],
		});
		const long = read({ delivered_to: ["a".repeat(254), "b".repeat(255)] });
		expect(long.delivered_to).toEqual(["a".repeat(254), `${"b".repeat(253)}…`]);
		expect(long.clamped).toEqual(["delivered_to"]);
		expect(read({ delivered_to: ["a".repeat(254)] }).clamped).toEqual([]);
	});

	it("a recipient list that breaks every rule is named as clamped once", () => {
		const list = [7, ...Array.from({ length: 21 }, () => "x".repeat(300))];
		expect(read({ delivered_to: list }).clamped).toEqual(["delivered_to"]);
	});

	it("completed_at as a string is kept up to 64 characters", () => {
		expect(read({ completed_at: "t".repeat(64) })).toMatchObject({
			completed_at: "t".repeat(64),
			clamped: [],
		});
		expect(read({ completed_at: "t".repeat(65) })).toMatchObject({
			completed_at: `${"t".repeat(63)}…`,
			clamped: ["completed_at"],
		});
	});

	it("completed_at as a number is epoch seconds below 10^11, else milliseconds, read as ISO", () => {
		expect(read({ completed_at: 1_767_225_600 })).toMatchObject({
			completed_at: "2026-01-01T00:00:00.000Z",
			clamped: ["completed_at"],
		});
		expect(read({ completed_at: 1_767_225_600_000 }).completed_at).toBe("2026-01-01T00:00:00.000Z");
		expect(read({ completed_at: 1e11 }).completed_at).toBe("1973-03-03T09:46:40.000Z");
		expect(read({ completed_at: 0 }).completed_at).toBe("1970-01-01T00:00:00.000Z");
	});

	it("a number that is no real time is absent, and still named as clamped", () => {
		for (const completed_at of [-1, Number.NaN, Number.POSITIVE_INFINITY, 1e17]) {
			expect(read({ completed_at })).toMatchObject({ completed_at: null, clamped: ["completed_at"] });
		}
	});
});

describe("ObeGee's refusal bodies", () => {
	it("are read best-effort: error as a string or {code, message}, detail, message", () => {
		for (const body of [
			{},
			{ error: "invalid_tenant" },
			{ error: { code: "invalid_tenant", message: "Tenant not found" } },
			{ error: {} },
			{ detail: "Tenant not found" },
			{ message: "Bad request" },
		]) {
			expect(ObeGeeErrorBody.safeParse(body).data).toEqual(body);
		}
	});

	it("other shapes are not read", () => {
		for (const body of [{ error: 42 }, { error: { code: 7 } }, { detail: ["x"] }, { message: 1 }]) {
			expect(ObeGeeErrorBody.safeParse(body).success).toBe(false);
		}
	});
});
