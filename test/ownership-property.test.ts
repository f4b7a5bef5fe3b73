import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
	connectPhone,
	deliverWebhook,
	execute,
	type Frame,
	mandateBody,
	type Phone,
	phonesClosedAfterEach,
	progressOf,
	runAlarm,
	type SignedWebhook,
	simComplete,
	uniqueId,
} from "./helpers.ts";
import { eventually, gatewaySim } from "./openclaw-helpers.ts";

/**
 * Issue 14, as a property: random interleavings of executes from several sessions with colliding
 * mandate ids, ObeGee webhooks (first and replayed), polls and the agent's gateway runs. Whatever the
 * order, every frame reaches exactly the session that owns its execution — the first to execute the
 * mandate — and every executed mandate ends in exactly one outcome.
 */

const SESSIONS = 3;
const MANDATES = 3;

type Action =
	| { kind: "execute"; session: number; mandate: number }
	| { kind: "webhook"; mandate: number; status: "COMPLETED" | "FAILED" }
	| { kind: "poll"; session: number }
	| { kind: "agent"; mandate: number };

const action: fc.Arbitrary<Action> = fc.oneof(
	fc.record({
		kind: fc.constant("execute" as const),
		session: fc.nat(SESSIONS - 1),
		mandate: fc.nat(MANDATES - 1),
	}),
	fc.record({
		kind: fc.constant("webhook" as const),
		mandate: fc.nat(MANDATES - 1),
		status: fc.constantFrom("COMPLETED" as const, "FAILED" as const),
	}),
	fc.record({ kind: fc.constant("poll" as const), session: fc.nat(SESSIONS - 1) }),
	fc.record({ kind: fc.constant("agent" as const), mandate: fc.nat(MANDATES - 1) }),
);

function mandateOf(frame: Frame): string | null {
	if (frame.event === "pipeline_stage") return (frame.data as { mandate_id: string }).mandate_id;
	if (frame.type === "progress" || frame.type === "response_chunk") return frame.mandate_id as string;
	return null;
}

describe("ownership under random interleavings", () => {
	const phones = phonesClosedAfterEach();

	it("every frame reaches only the owning session, and every mandate ends in one outcome", async () => {
		await fc.assert(
			fc.asyncProperty(fc.array(action, { minLength: 3, maxLength: 10 }), async (actions) => {
				const tenant = uniqueId("tenant");
				const sessions = Array.from({ length: SESSIONS }, () => uniqueId("sess"));
				const mandates = Array.from({ length: MANDATES }, () => uniqueId("mio"));
				const watching: Phone[] = [];
				for (const sessionId of sessions) watching.push(await connectPhone(sessionId));
				phones.push(...watching);
				const owner = new Map<number, number>();
				const executionOf = new Map<number, string>();
				const webhookOf = new Map<number, SignedWebhook>();

				for (const next of actions) {
					if (next.kind === "execute") {
						const body = mandateBody(sessions[next.session] as string, {
							mandate_id: mandates[next.mandate],
							tenant_id: tenant,
						});
						const { response, json } = await execute(body);
						const first = owner.get(next.mandate);
						if (first === undefined || first === next.session) {
							// Ours (or ours again): the same execution id every time, even after it ended.
							expect(response.status).toBe(200);
							owner.set(next.mandate, next.session);
							const known = executionOf.get(next.mandate);
							if (known) expect(json.execution_id).toBe(known);
							executionOf.set(next.mandate, json.execution_id);
						} else {
							expect(response.status).toBe(409);
							expect((json as unknown as { error: { code: string } }).error.code).toBe("mandate_conflict");
						}
					} else if (next.kind === "webhook") {
						const executionId = executionOf.get(next.mandate);
						if (!executionId) continue;
						// The first outcome is ObeGee's; any later webhook replays that same signed delivery.
						let webhook = webhookOf.get(next.mandate);
						if (!webhook) {
							webhook = await simComplete(executionId, { status: next.status, summary: "Done" });
							webhookOf.set(next.mandate, webhook);
						}
						expect((await deliverWebhook(webhook)).status).toBe(200);
					} else if (next.kind === "poll") {
						// Only while it polls something: an idle session's alarm is its phone's token expiry,
						// and firing that would move its clock an hour on.
						const polling = [...owner].some(
							([mandate, session]) => session === next.session && !webhookOf.has(mandate),
						);
						if (polling) await runAlarm(sessions[next.session] as string);
					} else {
						const executionId = executionOf.get(next.mandate);
						if (!executionId) continue;
						await gatewaySim("/__sim/runs", {
							runId: executionId,
							answer: `Answer for ${mandates[next.mandate]}`,
						});
					}
				}
				// Whatever is still running ends now, by webhook.
				for (const [mandate, executionId] of executionOf) {
					if (webhookOf.has(mandate)) continue;
					const webhook = await simComplete(executionId, { status: "COMPLETED", summary: "Done" });
					webhookOf.set(mandate, webhook);
					expect((await deliverWebhook(webhook)).status).toBe(200);
				}

				for (const [index, sessionId] of sessions.entries()) {
					const phone = watching[index] as Phone;
					const owned = new Set(
						[...owner].filter(([, session]) => session === index).map(([mandate]) => mandates[mandate]),
					);
					for (const mandateId of owned) {
						// One outcome: stage 10 completed, or exactly one failed stage — once, on the phone too.
						const state = await eventually(
							() => progressOf(sessionId),
							(snapshot) =>
								snapshot.mandates.some(
									(m) => m.mandate_id === mandateId && (m.state === "completed" || m.state === "failed"),
								),
							`outcome of ${mandateId}`,
						);
						const mandate = state.mandates.find((m) => m.mandate_id === mandateId);
						const ends = mandate?.stages.filter(
							(s) => s.status === "failed" || (s.stage === 10 && s.status === "completed"),
						);
						expect(ends).toHaveLength(1);
						await phone.settle(50);
						const terminalFrames = phone
							.stages(mandateId as string)
							.filter((s) => s.status === "failed" || (s.stage === 10 && s.status === "completed"));
						expect(terminalFrames).toHaveLength(1);
					}
					await phone.settle(50);
					for (const frame of phone.frames) {
						const mandateId = mandateOf(frame);
						if (mandateId !== null) expect(owned.has(mandateId), `${mandateId} on ${sessionId}`).toBe(true);
					}
					const snapshot = await progressOf(sessionId);
					for (const m of snapshot.mandates) expect(owned.has(m.mandate_id)).toBe(true);
				}
				for (const phone of watching) phone.close();
			}),
			{ numRuns: 8 },
		);
	});
});
