import fc from "fast-check";
import { describe, it } from "vitest";
import {
	deliverWebhook,
	execute,
	mandateBody,
	reportStage,
	runAlarm,
	simComplete,
	uniqueId,
} from "./helpers.ts";
import {
	clientsClosedAfterEach,
	closeServerSockets,
	expectEqualsServer,
	expectNoStageWentBack,
	watch,
} from "./sdk-watch.ts";

// Issue 15: the fold equals the snapshot in every field — whatever the pipeline does, whenever the
// phone's network drops, the server restarts its sockets or the app reconnects, once the phone has
// caught up its view is exactly `GET /progress` folded (intent, stages, timestamps, progress, answer,
// error and result). At most 3 mandates a run: the snapshot shows the newest 20 finished ones.

clientsClosedAfterEach();

const MANDATES = 3;

type Step =
	| { kind: "stage"; mandate: number; stage: number; status: "active" | "completed" | "failed" }
	| { kind: "execute"; mandate: number }
	| { kind: "finish"; mandate: number; ok: boolean }
	| { kind: "alarm" }
	| { kind: "drop" }
	| { kind: "offline" }
	| { kind: "online" }
	| { kind: "server_close" }
	| { kind: "reconnect" };

const mandate = fc.integer({ min: 0, max: MANDATES - 1 });
const step: fc.Arbitrary<Step> = fc.oneof(
	fc.record({
		kind: fc.constant("stage" as const),
		mandate,
		stage: fc.integer({ min: 1, max: 5 }),
		status: fc.constantFrom("active" as const, "completed" as const, "failed" as const),
	}),
	fc.record({ kind: fc.constant("execute" as const), mandate }),
	fc.record({ kind: fc.constant("finish" as const), mandate, ok: fc.boolean() }),
	fc.constant({ kind: "alarm" as const }),
	fc.constant({ kind: "drop" as const }),
	fc.constant({ kind: "offline" as const }),
	fc.constant({ kind: "online" as const }),
	fc.constant({ kind: "server_close" as const }),
	fc.constant({ kind: "reconnect" as const }),
);

describe("the SDK's fold against the Worker", () => {
	it("property: after random runs, drops and reconnects, the phone's view equals the snapshot in every field", async () => {
		await fc.assert(
			fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 14 }), async (steps) => {
				const sessionId = uniqueId("sess");
				const bodies = Array.from({ length: MANDATES }, (_, i) =>
					mandateBody(sessionId, { intent: `Request number ${i + 1}: send the weekly report` }),
				);
				const executions = new Map<number, string>();
				const phone = await watch(sessionId);
				await phone.untilStatus("live");
				for (const s of steps) {
					switch (s.kind) {
						case "stage":
							await reportStage(
								sessionId,
								(bodies[s.mandate] as (typeof bodies)[number]).mandate_id,
								s.stage,
								s.status,
							);
							break;
						case "execute": {
							if (executions.has(s.mandate)) break;
							const { json } = await execute(bodies[s.mandate] as (typeof bodies)[number]);
							if (typeof json.execution_id === "string") executions.set(s.mandate, json.execution_id);
							break;
						}
						case "finish": {
							const executionId = executions.get(s.mandate);
							if (!executionId) break;
							const outcome = s.ok
								? { status: "COMPLETED" as const, summary: "Report sent" }
								: { status: "FAILED" as const, error: "Mailbox full" };
							await deliverWebhook(await simComplete(executionId, outcome));
							break;
						}
						case "alarm":
							await runAlarm(sessionId);
							break;
						case "drop":
							phone.network.drop();
							break;
						case "offline":
							phone.network.offline = true;
							phone.network.drop();
							break;
						case "online":
							phone.network.offline = false;
							break;
						case "server_close":
							await closeServerSockets(sessionId);
							break;
						case "reconnect":
							phone.client.reconnect();
							break;
					}
				}
				phone.network.offline = false;
				await phone.untilStatus("live");
				await expectEqualsServer(phone, sessionId);
				expectNoStageWentBack(phone.history);
				phone.client.close();
			}),
			{ numRuns: 20 },
		);
	}, 120_000);
});
