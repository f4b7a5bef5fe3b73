import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
	deliverWebhook,
	execute,
	mandateBody,
	phonesClosedAfterEach,
	runningMandate,
	simComplete,
	uniqueId,
} from "./helpers.ts";

/**
 * Issue 12, item 5: one Analytics Engine data point per stage transition and per outcome, indexed by
 * tenant, with no personal data in it (Analytics Engine data cannot be erased).
 */

type Point = { indexes?: string[]; blobs?: string[]; doubles?: number[] };

function recordPoints(): Point[] {
	const points: Point[] = [];
	const dataset = env.METRICS as AnalyticsEngineDataset;
	vi.spyOn(dataset, "writeDataPoint").mockImplementation((point?: AnalyticsEngineDataPoint) => {
		points.push(JSON.parse(JSON.stringify(point ?? {})) as Point);
	});
	return points;
}

describe("metrics (Analytics Engine)", () => {
	const phones = phonesClosedAfterEach();
	afterEach(() => vi.restoreAllMocks());

	it("writes one point per stage change and one per outcome, by tenant, naming the signal that ended it", async () => {
		const points = recordPoints();
		const { body, executionId, sessionId } = await runningMandate(phones);
		await deliverWebhook(await simComplete(executionId, { status: "COMPLETED", summary: "Sent to Ann" }));
		await expect.poll(() => points.filter((p) => p.blobs?.[0] === "outcome").length).toBe(1);
		const stages = points.filter((p) => p.blobs?.[0] === "stage");
		// Stages 4–8 completed and 9 active at dispatch, then 9 and 10 completed.
		expect(stages.map((p) => [p.doubles?.[0], p.blobs?.[1]])).toEqual([
			[1, "completed"],
			[2, "completed"],
			[3, "completed"],
			[4, "completed"],
			[5, "completed"],
			[6, "completed"],
			[7, "completed"],
			[8, "completed"],
			[9, "active"],
			[9, "completed"],
			[10, "completed"],
		]);
		const [outcome] = points.filter((p) => p.blobs?.[0] === "outcome");
		expect(outcome?.indexes).toEqual([body.tenant_id]);
		expect(outcome?.blobs).toEqual(["outcome", "completed", "webhook"]);
		expect(outcome?.doubles).toHaveLength(3);
		expect((outcome?.doubles?.[1] ?? -1) >= (outcome?.doubles?.[0] ?? 0)).toBe(true);
		// Nothing personal: no ids, no intent, no summary anywhere in what was written.
		const written = JSON.stringify(points);
		for (const secret of [sessionId, body.mandate_id, executionId, body.intent, "Sent to Ann"]) {
			expect(written).not.toContain(secret);
		}
	});

	it("names the dispatch as the signal when ObeGee refuses the mandate", async () => {
		const points = recordPoints();
		const sessionId = uniqueId("sess");
		await execute(mandateBody(sessionId, { dimensions: { sim_scenario: "invalid_tenant" } }));
		await expect
			.poll(() => points.filter((p) => p.blobs?.[0] === "outcome").map((p) => p.blobs))
			.toEqual([["outcome", "failed", "dispatch"]]);
	});
});
