import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { STAGE_NAMES } from "../src/protocol/stages.ts";
import {
	connectPhone,
	deliverWebhook,
	execute,
	mandateBody,
	phonesClosedAfterEach,
	progressOf,
	reportStage,
	simCalls,
	simComplete,
	uniqueId,
} from "./helpers.ts";

// Seed-spec Test 1: stages 1–5 from the pipeline, 6–8 at dispatch, 9 executing, 10 on the webhook.
describe("basic flow", () => {
	const phones = phonesClosedAfterEach();

	it("moves a mandate through all 10 stages on every phone of the session, in order", async () => {
		const sessionId = uniqueId("sess");
		const phoneA = await connectPhone(sessionId);
		const phoneB = await connectPhone(sessionId);
		phones.push(phoneA, phoneB);
		const body = mandateBody(sessionId);

		for (const stage of [1, 2, 3]) {
			expect((await reportStage(sessionId, body.mandate_id, stage, "active")).status).toBe(200);
			expect((await reportStage(sessionId, body.mandate_id, stage, "completed")).status).toBe(200);
		}
		const { response, json } = await execute(body);
		expect(response.status).toBe(200);
		expect(json).toEqual({ execution_id: expect.stringMatching(/^exec_/), status: "QUEUED" });

		for (const phone of [phoneA, phoneB]) {
			await phone.waitForStage(body.mandate_id, 9, "active");
			const stage9 = phone.stages(body.mandate_id).find((s) => s.stage === 9);
			expect(stage9).toMatchObject({ stage_name: "OpenClaw executing", execution_id: json.execution_id });
		}

		const webhook = await simComplete(json.execution_id, {
			status: "COMPLETED",
			summary: "Weekly report sent",
		});
		const delivered = await deliverWebhook(webhook);
		expect(delivered.status).toBe(200);
		expect(await delivered.json()).toEqual({ outcome: "applied" });

		for (const phone of [phoneA, phoneB]) {
			const done = await phone.waitForStage(body.mandate_id, 10, "completed");
			expect(done.data).toMatchObject({
				stage_name: "Results delivered",
				summary: "Weekly report sent",
				delivered_to: ["email"],
			});
			// Every stage name is the seed's, and each stage only ever moved forward.
			const moves = phone.stages(body.mandate_id);
			for (const move of moves)
				expect((move as { stage_name?: string }).stage_name).toBe(STAGE_NAMES[move.stage as 1]);
			expect(moves.filter((m) => m.status === "completed").map((m) => m.stage)).toEqual([
				1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
			]);
			const seqs = phone.seqs();
			expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
			expect(new Set(seqs).size).toBe(seqs.length);
		}
		// Both phones saw the same frames.
		expect(phoneA.frames.slice(1)).toEqual(
			phoneB.frames.slice(phoneB.frames.length - (phoneA.frames.length - 1)),
		);

		const progress = await progressOf(sessionId);
		const mandate = progress.mandates.find((m) => m.mandate_id === body.mandate_id);
		expect(mandate).toMatchObject({ state: "completed", progress: 100, execution_id: json.execution_id });
		expect(mandate?.stages.every((s) => s.status === "completed")).toBe(true);
		expect((await simCalls()).dispatch).toBeGreaterThan(0);

		// The D1 audit trail has the execution, its stages and its webhook.
		const row = await env.DB.prepare("SELECT session_id, state FROM executions WHERE execution_id = ?")
			.bind(json.execution_id)
			.first();
		expect(row).toEqual({ session_id: sessionId, state: "completed" });
	});
});
