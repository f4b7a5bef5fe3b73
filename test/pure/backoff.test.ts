import { describe, expect, it } from "vitest";
import {
	backoffDelay,
	HEARTBEAT_INTERVAL_MS,
	honourRetryAfter,
	OUTBOX_BACKOFF_CAP_MS,
	POLL_BACKOFF_CAP_MS,
	pollRetryDelay,
	RETRY_AFTER_CAP_MS,
	STREAM_QUIET_MS,
	streamingPollInterval,
} from "../../src/pipeline/backoff.ts";

/** Backoff with equal jitter, ObeGee's Retry-After, and the poll schedule (README, "The stage machine"). */

const low = () => 0;
const high = () => 1;

describe("the documented limits", () => {
	it("are what README and DESIGN.md promise", () => {
		expect(POLL_BACKOFF_CAP_MS).toBe(30_000);
		expect(OUTBOX_BACKOFF_CAP_MS).toBe(60_000);
		expect(HEARTBEAT_INTERVAL_MS).toBe(10_000);
		expect(STREAM_QUIET_MS).toBe(10_000);
		expect(RETRY_AFTER_CAP_MS).toBe(120_000);
	});
});

describe("backoff with equal jitter", () => {
	it("waits exactly the base delay, without jitter, before any failure (and for a nonsense negative count)", () => {
		for (const random of [low, high]) {
			expect(backoffDelay(0, 1_000, 60_000, random)).toBe(1_000);
			expect(backoffDelay(-3, 1_000, 60_000, random)).toBe(1_000);
		}
	});

	it("doubles per failure: half of the wait is fixed, half is random", () => {
		expect(backoffDelay(1, 1_000, 60_000, low)).toBe(1_000);
		expect(backoffDelay(1, 1_000, 60_000, high)).toBe(2_000);
		expect(backoffDelay(3, 1_000, 60_000, () => 0.5)).toBe(6_000);
		expect(backoffDelay(5, 1_000, 60_000, low)).toBe(16_000);
	});

	it("never waits past the cap, however many failures", () => {
		expect(backoffDelay(6, 1_000, 60_000, high)).toBe(60_000);
		expect(backoffDelay(1_000, 1_000, 60_000, high)).toBe(60_000);
		expect(backoffDelay(1_000, 1_000, 60_000, low)).toBe(30_000);
	});

	it("is random by default, within its bounds", () => {
		for (let i = 0; i < 20; i++) {
			const wait = backoffDelay(2, 1_000, 60_000);
			expect(wait).toBeGreaterThanOrEqual(2_000);
			expect(wait).toBeLessThanOrEqual(4_000);
		}
	});

	it("rounds to whole milliseconds", () => {
		expect(backoffDelay(1, 3, 60_000, () => 0.5)).toBe(5);
	});
});

describe("ObeGee's Retry-After", () => {
	it("is ignored when absent, zero, negative or not a number", () => {
		for (const asked of [null, undefined, 0, -5_000, Number.NaN])
			expect(honourRetryAfter(2_000, asked)).toBe(2_000);
	});

	it("makes a retry wait at least as long as asked, up to its cap", () => {
		expect(honourRetryAfter(2_000, 1)).toBe(2_000);
		expect(honourRetryAfter(2_000, 45_000)).toBe(45_000);
		expect(honourRetryAfter(200_000, 45_000)).toBe(200_000);
		expect(honourRetryAfter(2_000, RETRY_AFTER_CAP_MS + 1)).toBe(RETRY_AFTER_CAP_MS);
	});
});

describe("polling a failing ObeGee", () => {
	it("backs off from the poll interval up to 30 s", () => {
		expect(pollRetryDelay(1, 2_000, null, high)).toBe(4_000);
		expect(pollRetryDelay(3, 2_000, null, high)).toBe(16_000);
		expect(pollRetryDelay(4, 2_000, null, high)).toBe(30_000);
		expect(pollRetryDelay(20, 2_000, null, low)).toBe(15_000);
	});

	it("never polls sooner than the healthy interval", () => {
		expect(pollRetryDelay(1, 2_000, null, low)).toBe(2_000);
		expect(pollRetryDelay(3, 60_000, null, low)).toBe(60_000);
		expect(pollRetryDelay(3, 60_000, null, high)).toBe(60_000);
	});

	it("above a 30 s interval the interval itself is the cap, and jitter still applies", () => {
		expect(pollRetryDelay(1, 40_000, null, high)).toBe(40_000);
		expect(pollRetryDelay(0, 40_000, null, high)).toBe(40_000);
	});

	it("honours Retry-After on top of the backoff", () => {
		expect(pollRetryDelay(1, 2_000, 45_000, low)).toBe(45_000);
		expect(pollRetryDelay(4, 2_000, 5_000, high)).toBe(30_000);
	});

	it("uses Math.random when no source is given", () => {
		const wait = pollRetryDelay(2, 2_000, null);
		expect(wait).toBeGreaterThanOrEqual(4_000);
		expect(wait).toBeLessThanOrEqual(8_000);
	});
});

describe("while the agent's own stream speaks", () => {
	it("ObeGee is polled five times less often", () => {
		expect(streamingPollInterval(2_000)).toBe(10_000);
	});
});
