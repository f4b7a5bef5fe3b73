import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { fromState } from "../client/fold.ts";
import { ProgressClient } from "../client/progress-client.ts";
import type { MandateView, SessionView } from "../client/view.ts";
import { executionFailedMessage } from "../src/pipeline/messages.ts";
import {
	deliverWebhook,
	execute,
	mandateBody,
	mobileToken,
	progressOf,
	reportStage,
	runAlarm,
	sessionStub,
	simComplete,
	uniqueId,
} from "./helpers.ts";
import { type TestNetwork, testNetwork } from "./sdk-socket.ts";

// issue 5: the SDK against the real Worker in workerd — a connection dropped mid-run, events while
// it is away, then resume: the folded state equals the server's /progress and no stage goes back.

const RANK = { pending: 0, active: 1, completed: 2, failed: 2 } as const;

interface Watched {
	client: ProgressClient;
	network: TestNetwork;
	/** Every view the client produced, to check that no stage ever moved back. */
	history: SessionView[];
	until(predicate: (view: SessionView) => boolean, what: string, timeoutMs?: number): Promise<SessionView>;
}

const clients: ProgressClient[] = [];
afterEach(() => {
	for (const client of clients.splice(0)) client.close();
});

async function watch(sessionId: string): Promise<Watched> {
	const network = testNetwork();
	const token = await mobileToken(sessionId);
	const client = new ProgressClient({
		baseUrl: "https://progress.test",
		sessionId,
		token,
		WebSocket: network.WebSocket,
		minDelayMs: 20,
		maxDelayMs: 100,
	});
	clients.push(client);
	const history: SessionView[] = [];
	const waiters = new Set<() => void>();
	client.subscribe((view) => {
		history.push(view);
		for (const wake of waiters) wake();
	});
	return {
		client,
		network,
		history,
		async until(predicate, what, timeoutMs = 5_000) {
			const deadline = Date.now() + timeoutMs;
			while (!predicate(client.session)) {
				const left = deadline - Date.now();
				if (left <= 0) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(client.session)}`);
				await new Promise<void>((resolve) => {
					const wake = () => {
						waiters.delete(wake);
						clearTimeout(timer);
						resolve();
					};
					const timer = setTimeout(wake, Math.min(left, 50));
					waiters.add(wake);
				});
			}
			return client.session;
		},
	};
}

function mandateOf(view: SessionView, mandateId: string): MandateView | undefined {
	return view.mandates.find((m) => m.mandate_id === mandateId);
}

function stageIs(view: SessionView, mandateId: string, stage: number, status: string): boolean {
	return mandateOf(view, mandateId)?.stages[stage - 1]?.status === status;
}

function expectNoStageWentBack(history: SessionView[]): void {
	for (let i = 1; i < history.length; i++) {
		for (const after of (history[i] as SessionView).mandates) {
			const before = (history[i - 1] as SessionView).mandates.find((m) => m.mandate_id === after.mandate_id);
			if (!before) continue;
			after.stages.forEach((stage, index) => {
				const was = before.stages[index]?.status ?? "pending";
				expect(
					RANK[stage.status],
					`stage ${stage.stage} went ${was} → ${stage.status}`,
				).toBeGreaterThanOrEqual(RANK[was]);
			});
		}
	}
}

/** Waits until the phone has caught up with the server's seq, then compares the two states. */
async function expectEqualsServer(phone: Watched, sessionId: string): Promise<void> {
	const server = await progressOf(sessionId);
	const view = await phone.until((v) => v.seq === server.seq, `seq ${server.seq}`);
	expect(view.mandates.map(comparable)).toEqual(server.mandates.map(fromState).map(comparable));
}

/** The snapshot names the intent, which live frames never carry; everything else must match. */
function comparable(mandate: MandateView): Omit<MandateView, "intent"> {
	const { intent: _intent, ...rest } = mandate;
	return rest;
}

async function closeServerSockets(sessionId: string): Promise<void> {
	await runInDurableObject(sessionStub(sessionId), (_instance, state) => {
		for (const socket of state.getWebSockets()) socket.close(1012, "service restart");
	});
}

describe("ProgressClient against the Worker", () => {
	it("starts from the snapshot and folds a whole run, live", async () => {
		const sessionId = uniqueId("sess");
		const body = mandateBody(sessionId);
		await reportStage(sessionId, body.mandate_id, 1, "completed");
		const phone = await watch(sessionId);
		await phone.until((v) => stageIs(v, body.mandate_id, 1, "completed"), "the snapshot");
		expect(phone.client.status).toBe("live");

		const { json } = await execute(body);
		await phone.until((v) => stageIs(v, body.mandate_id, 9, "active"), "stage 9 active");
		await deliverWebhook(
			await simComplete(json.execution_id, { status: "COMPLETED", summary: "Report sent" }),
		);
		const view = await phone.until((v) => stageIs(v, body.mandate_id, 10, "completed"), "stage 10");
		expect(mandateOf(view, body.mandate_id)).toMatchObject({
			phase: "completed",
			progress: 100,
			result: { summary: "Report sent", delivered_to: ["email"] },
		});
		await expectEqualsServer(phone, sessionId);
		expectNoStageWentBack(phone.history);
		expect(phone.network.urls).toHaveLength(1);
		expect(phone.network.urls[0]).not.toContain("since=");
		// Issue 14: the token travels in the subprotocol, never in the (logged) URL.
		expect(phone.network.urls[0]).not.toContain("token");
		expect(phone.network.protocols[0]).toEqual(["myndlens.v1", expect.stringMatching(/^bearer\.ey/)]);
	});

	it("resumes with ?since after the server closes the socket mid-run and events happen while away", async () => {
		const sessionId = uniqueId("sess");
		const body = mandateBody(sessionId);
		const phone = await watch(sessionId);
		await phone.until((v) => v.seq !== null, "the first snapshot");
		for (const stage of [1, 2, 3]) await reportStage(sessionId, body.mandate_id, stage);
		await phone.until((v) => stageIs(v, body.mandate_id, 3, "completed"), "stage 3");
		const seenBeforeDrop = phone.client.session.seq as number;

		// The network goes away and the server closes the socket (a deploy restarts the object).
		phone.network.offline = true;
		await closeServerSockets(sessionId);
		await phone.until(() => phone.client.status === "reconnecting", "the drop to be noticed");

		// Meanwhile the mandate is dispatched and keeps running.
		const { json } = await execute(body);
		await runAlarm(sessionId);
		await runAlarm(sessionId);
		expect(phone.client.session.seq).toBe(seenBeforeDrop);

		phone.network.offline = false;
		await phone.until((v) => stageIs(v, body.mandate_id, 9, "active"), "the missed stages", 5_000);
		const resumedFrom = phone.network.urls.filter((url) => url.includes(`since=${seenBeforeDrop}`));
		expect(resumedFrom.length).toBeGreaterThan(0);
		await expectEqualsServer(phone, sessionId);

		await deliverWebhook(await simComplete(json.execution_id));
		await phone.until((v) => stageIs(v, body.mandate_id, 10, "completed"), "stage 10");
		await expectEqualsServer(phone, sessionId);
		expectNoStageWentBack(phone.history);
	});

	it("resumes after the phone's own network drops, with nothing twice", async () => {
		const sessionId = uniqueId("sess");
		const first = mandateBody(sessionId);
		const second = mandateBody(sessionId, { dimensions: { sim_scenario: "manual" } });
		const phone = await watch(sessionId);
		await phone.until((v) => v.seq !== null, "the first snapshot");
		const { json } = await execute(first);
		await phone.until((v) => stageIs(v, first.mandate_id, 9, "active"), "stage 9 of the first mandate");

		phone.network.offline = true;
		phone.network.drop();
		const { json: secondRun } = await execute(second);
		await deliverWebhook(await simComplete(json.execution_id, { status: "FAILED", error: "Mailbox full" }));
		phone.network.offline = false;

		const view = await phone.until(
			(v) => mandateOf(v, first.mandate_id)?.phase === "failed" && stageIs(v, second.mandate_id, 9, "active"),
			"both mandates after the resume",
		);
		// Issue 16: ObeGee's own text never reaches the phone; the SDK shows our words.
		expect(mandateOf(view, first.mandate_id)?.error).toBe(executionFailedMessage("FAILED"));
		await expectEqualsServer(phone, sessionId);

		// A second drop while the other mandate finishes.
		phone.network.drop();
		await deliverWebhook(await simComplete(secondRun.execution_id));
		await phone.until((v) => stageIs(v, second.mandate_id, 10, "completed"), "the second mandate");
		await expectEqualsServer(phone, sessionId);
		expectNoStageWentBack(phone.history);
		// Seqs folded in only ever grew.
		const seqs = phone.history.map((v) => v.seq ?? 0);
		expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
	});

	it("stops reconnecting once closed", async () => {
		const sessionId = uniqueId("sess");
		const phone = await watch(sessionId);
		await phone.until(() => phone.client.status === "live", "live");
		phone.client.close();
		expect(phone.client.status).toBe("closed");
		await new Promise((resolve) => setTimeout(resolve, 200));
		expect(phone.network.urls).toHaveLength(1);
	});
});
