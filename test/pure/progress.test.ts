import { describe, expect, it } from "vitest";
import {
	nextProgress,
	PROGRESS,
	remoteStatusRank,
	STATUS,
	stillWorkingStatus,
	subStatusForRemote,
} from "../../src/pipeline/progress.ts";

/** The one progress model (seed-spec.md, "Progress Percentage" and "Enhanced Progress Updates"). */

describe("the progress model", () => {
	it("uses the seed's percentages", () => {
		expect(PROGRESS).toEqual({
			queued: 5,
			started: 10,
			perTool: 10,
			toolCap: 90,
			answerStart: 90,
			answerCap: 95,
			done: 100,
		});
	});

	it("writes the seed's sub-status lines", () => {
		expect(STATUS.started).toBe("Agent started");
		expect(STATUS.generating).toBe("Generating response...");
		expect(STATUS.done).toBe("Execution complete");
		expect(STATUS.queued).toBe("Mandate queued");
	});
});

describe("the shown progress", () => {
	it("never goes down", () => {
		expect(nextProgress(40, 10)).toBe(40);
		expect(nextProgress(40, 40)).toBe(40);
		expect(nextProgress(40, 41)).toBe(41);
	});

	it("stays within 0–100 and is a whole number", () => {
		expect(nextProgress(0, -20)).toBe(0);
		expect(nextProgress(90, 140)).toBe(100);
		expect(nextProgress(0, 12.4)).toBe(12);
		expect(nextProgress(0, 12.6)).toBe(13);
	});
});

describe("ObeGee's running statuses while polling", () => {
	it("QUEUED and EXECUTING both say the agent started, at 10 %", () => {
		expect(subStatusForRemote("QUEUED")).toEqual({ status: "Agent started", progress: 10 });
		expect(subStatusForRemote("EXECUTING")).toEqual({ status: "Agent started", progress: 10 });
	});

	it("a status ObeGee may add later shows nothing", () => {
		expect(subStatusForRemote("PAUSED")).toBeNull();
		expect(subStatusForRemote("")).toBeNull();
	});

	it("rank so that a stale QUEUED after EXECUTING never moves back", () => {
		expect(remoteStatusRank("QUEUED")).toBe(1);
		expect(remoteStatusRank("EXECUTING")).toBe(2);
		expect(remoteStatusRank("PAUSED")).toBe(0);
		expect(remoteStatusRank(null)).toBe(0);
	});
});

describe("a long run's sign of life", () => {
	it("counts seconds under a minute and a half", () => {
		expect(stillWorkingStatus(0)).toBe("Still working... (0 s)");
		expect(stillWorkingStatus(45_999)).toBe("Still working... (45 s)");
		expect(stillWorkingStatus(89_999)).toBe("Still working... (89 s)");
	});

	it("counts minutes and seconds from a minute and a half on", () => {
		expect(stillWorkingStatus(90_000)).toBe("Still working... (1 min 30 s)");
		expect(stillWorkingStatus(605_000)).toBe("Still working... (10 min 5 s)");
	});
});
