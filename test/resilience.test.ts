import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { HEARTBEAT_INTERVAL_MS, POLL_BACKOFF_CAP_MS } from "../src/pipeline/backoff.ts";
import {
	auditSettled,
	connectPhone,
	deliverWebhook,
	execute,
	mandateBody,
	phonesClosedAfterEach,
	phoneTokenExpiry,
	progressOf,
	reportStage,
	runAlarm,
	runAlarmUntilPolled,
	runningMandate,
	sessionStub,
	simComplete,
	uniqueId,
} from "./helpers.ts";
import { TEST_TIMING } from "./secrets.ts";

const POLL_INTERVAL_MS = Number(TEST_TIMING.POLL_INTERVAL_MS);
const TIMEOUT_MS = Number(TEST_TIMING.EXECUTION_TIMEOUT_MS);

function pollState(sessionId: string, mandateId: string) {
	return runInDurableObject(sessionStub(sessionId), (_instance, state) =>
		state.storage.sql
			.exec<{ next_poll_at: number; poll_failures: number; state: string }>(
				"SELECT next_poll_at, poll_failures, state FROM ml_mandates WHERE mandate_id = ?",
				mandateId,
			)
			.one(),
	);
}

describe("resilience", () => {
	const phones = phonesClosedAfterEach();

	it("survives eviction mid-run: hibernated sockets, stages, log and alarm all carry on", async () => {
		const { sessionId, phone, body, executionId } = await runningMandate(phones);
		const before = await progressOf(sessionId);

		await evictDurableObject(sessionStub(sessionId));
		expect(await progressOf(sessionId)).toEqual(before);
		expect(await runAlarm(sessionId)).toBe(true);
		await evictDurableObject(sessionStub(sessionId));

		await deliverWebhook(await simComplete(executionId));
		// The same socket, never reconnected, gets the rest of the run.
		await phone.waitForStage(body.mandate_id, 10, "completed");
		const seqs = phone.seqs();
		expect(seqs.slice(1)).toEqual(Array.from({ length: seqs.length - 1 }, (_, i) => i + 1));
		expect(phone.closed).toBeNull();
	});

	it("backs off on ObeGee 5xx with jitter, keeps the phone informed, and recovers", async () => {
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		const body = mandateBody(sessionId, { dimensions: { sim_scenario: "manual", sim_status_errors: 3 } });
		const { json } = await execute(body);

		const gaps: number[] = [];
		let last = (await pollState(sessionId, body.mandate_id)).next_poll_at;
		for (let i = 1; i <= 3; i++) {
			await runAlarmUntilPolled(sessionId, body.mandate_id);
			const state = await pollState(sessionId, body.mandate_id);
			expect(state.poll_failures).toBe(i);
			gaps.push(state.next_poll_at - last);
			last = state.next_poll_at;
		}
		// Equal jitter: failure n waits between half and all of min(cap, interval × 2^n).
		gaps.forEach((gap, i) => {
			const ceiling = Math.min(POLL_BACKOFF_CAP_MS, POLL_INTERVAL_MS * 2 ** (i + 1));
			expect(gap).toBeGreaterThanOrEqual(ceiling / 2);
			expect(gap).toBeLessThanOrEqual(ceiling);
		});
		expect(phone.stages(body.mandate_id).find((s) => s.stage === 9)?.status).toBe("active");
		await phone.waitFor(
			(f) => f.type === "progress" && String(f.status).startsWith("Still working"),
			"heartbeat",
		);

		await runAlarmUntilPolled(sessionId, body.mandate_id);
		const recovered = await pollState(sessionId, body.mandate_id);
		expect(recovered.poll_failures).toBe(0);
		expect(recovered.next_poll_at - last).toBe(POLL_INTERVAL_MS);
		await simComplete(json.execution_id);
		await runAlarm(sessionId);
		await phone.waitForStage(body.mandate_id, 10, "completed");

		const audit = await env.DB.prepare("SELECT event FROM audit_log WHERE execution_id = ? ORDER BY seq")
			.bind(json.execution_id)
			.all<{ event: string }>();
		expect(audit.results.filter((r) => r.event === "poll_failed")).toHaveLength(3);
	});

	it("shows a sign of life at least every 10 s while ObeGee fails and polls back off to 30 s", async () => {
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		const body = mandateBody(sessionId, { dimensions: { sim_scenario: "manual", sim_status_errors: 50 } });
		await execute(body);
		await phone.waitForStage(body.mandate_id, 9, "active");
		// Each run acts as of the time the alarm was armed for: the session's clock jumps from one job to the next.
		for (let i = 0; i < 14; i++) await runAlarm(sessionId);
		const state = await pollState(sessionId, body.mandate_id);
		expect(state.state).toBe("running");
		await phone.settle();
		const shown = phone.frames
			.filter((f) => f.type === "progress" || f.event === "pipeline_stage")
			.map((f) =>
				Date.parse(String(f.type === "progress" ? f.timestamp : (f.data as { timestamp: string }).timestamp)),
			);
		const span = (shown.at(-1) as number) - (shown[0] as number);
		// Long enough for the poll backoff to reach its cap: the polls alone would leave 30-s silences.
		expect(POLL_INTERVAL_MS * 2 ** state.poll_failures).toBeGreaterThan(POLL_BACKOFF_CAP_MS);
		expect(span).toBeGreaterThan(2 * POLL_BACKOFF_CAP_MS);
		const gaps = shown.slice(1).map((at, i) => at - (shown[i] as number));
		expect(Math.max(...gaps)).toBeLessThanOrEqual(HEARTBEAT_INTERVAL_MS);
	});

	it("times out after EXECUTION_TIMEOUT_MS, stops polling, and still takes a late success", async () => {
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		const body = mandateBody(sessionId);
		const { json } = await execute(body);

		// Once the execute's audit copy is in D1 (off its path, issue 16), every alarm run is one poll.
		await auditSettled(sessionId);
		for (let i = 0; i < TIMEOUT_MS / POLL_INTERVAL_MS; i++) await runAlarm(sessionId);
		const failed = await phone.waitForStage(body.mandate_id, 9, "failed");
		expect((failed.data as { message: string }).message).toMatch(/taking longer than expected/);
		expect((await progressOf(sessionId)).mandates[0]?.state).toBe("timed_out");
		// Polling stopped: once the audit trail is in D1, the only alarm left is the phone's token expiry.
		await auditSettled(sessionId);
		expect(
			await runInDurableObject(sessionStub(sessionId), (_instance, state) => state.storage.getAlarm()),
		).toBe(await phoneTokenExpiry(sessionId));

		// A late success beats a stale "timed out".
		const late = await deliverWebhook(
			await simComplete(json.execution_id, { status: "COMPLETED", summary: "Sent" }),
		);
		expect(await late.json()).toEqual({ outcome: "late_success" });
		await phone.waitForStage(body.mandate_id, 9, "completed");
		await phone.waitForStage(body.mandate_id, 10, "completed");
		const [mandate] = (await progressOf(sessionId)).mandates;
		expect(mandate).toMatchObject({ state: "completed", error: null, result: { summary: "Sent" } });
	});

	it("keeps audit rows in the outbox while D1 fails and delivers them once it recovers", async () => {
		const sessionId = uniqueId("sess");
		const mandateId = uniqueId("mio");
		const count = () =>
			env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE session_id = ?")
				.bind(sessionId)
				.first<{ n: number }>();
		// A D1 outage, made real but confined to this session: D1 itself refuses its rows for a while.
		const trigger = `fail_${sessionId}`;
		await env.DB.exec(
			`CREATE TRIGGER ${trigger} BEFORE INSERT ON audit_log WHEN NEW.session_id = '${sessionId}' BEGIN SELECT RAISE(ABORT, 'simulated D1 outage'); END;`,
		);
		let response: Response;
		try {
			response = await reportStage(sessionId, mandateId, 2, "active");
			// The copy to D1 runs after the answer (issue 16): the outage lasts until it has failed.
			await auditSettled(sessionId);
		} finally {
			await env.DB.exec(`DROP TRIGGER ${trigger}`);
		}
		// The caller and the phone are not held up by D1.
		expect(response.status).toBe(200);
		expect((await count())?.n).toBe(0);
		const pending = await runInDurableObject(sessionStub(sessionId), async (_i, state) => ({
			rows: state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM ml_outbox").one().n,
			alarm: await state.storage.getAlarm(),
		}));
		expect(pending.rows).toBeGreaterThan(0);
		expect(pending.alarm).not.toBeNull();

		expect(await runAlarm(sessionId)).toBe(true);
		// Stage 1 completed, stage 2 active: both audit rows, in order.
		const audit = await env.DB.prepare(
			"SELECT json_extract(detail, '$.stage') AS stage, json_extract(detail, '$.status') AS status FROM audit_log WHERE session_id = ? ORDER BY seq",
		)
			.bind(sessionId)
			.all();
		expect(audit.results).toEqual([
			{ stage: 1, status: "completed" },
			{ stage: 2, status: "active" },
		]);
	});
});
