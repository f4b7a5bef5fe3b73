import {
	createExecutionContext,
	createScheduledController,
	evictDurableObject,
	runInDurableObject,
	waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEFAULT_RETENTION_DAYS } from "../src/config.ts";
import worker from "../src/index.ts";
import { MAX_FINISHED_SHOWN } from "../src/session/mandate-store.ts";
import { EMPTY_SESSION_GRACE_MS } from "../src/session/retention.ts";
import { WEBHOOK_DEDUP_RETENTION_MS } from "../src/session/webhook-log.ts";
import {
	auditSettled,
	connectPhone,
	connectResponse,
	deliverWebhook,
	execute,
	mandateBody,
	mobileToken,
	phonesClosedAfterEach,
	progressOf,
	reportStage,
	runAlarm,
	runAlarmAt,
	sessionStub,
	simComplete,
	uniqueId,
} from "./helpers.ts";

/**
 * Issue 12, item 1: retention. Time is driven — through the session's alarm (runAlarmAt) and the Cron
 * Trigger's scheduled handler with a chosen scheduledTime — never waited for.
 */

const RETENTION_MS = DEFAULT_RETENTION_DAYS * 24 * 60 * 60_000;

async function finishedMandate(sessionId: string) {
	const body = mandateBody(sessionId);
	const executionId = (await execute(body)).json.execution_id;
	await deliverWebhook(await simComplete(executionId, { status: "COMPLETED", summary: "Done" }));
	return { body, executionId };
}

function stored(sessionId: string) {
	return runInDurableObject(sessionStub(sessionId), (_instance, state) => {
		const sql = state.storage.sql;
		const count = (table: string) => {
			try {
				return sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n;
			} catch {
				return 0; // no such table: the storage was deleted
			}
		};
		return { mandates: count("ml_mandates"), events: count("ml_events"), meta: count("ml_meta") };
	});
}

async function d1Count(sql: string, ...binds: unknown[]): Promise<number> {
	return (
		(
			await env.DB.prepare(sql)
				.bind(...binds)
				.first<{ n: number }>()
		)?.n ?? 0
	);
}

describe("retention", () => {
	const phones = phonesClosedAfterEach();

	it("deletes a finished mandate and its events after RETENTION_DAYS, keeps what runs, and a resume across the hole gets a snapshot", async () => {
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		// A mandate that is still running when a later one finishes: the log holds its frames first.
		const running = mandateBody(sessionId);
		await execute(running);
		await phone.waitForStage(running.mandate_id, 9, "active");
		const old = await finishedMandate(sessionId);
		await phone.waitForStage(old.body.mandate_id, 10, "completed");
		await auditSettled(sessionId);
		const finishedAt = Date.now();

		// One day before: nothing goes.
		await runAlarmAt(sessionId, finishedAt + RETENTION_MS - 24 * 60 * 60_000);
		expect((await progressOf(sessionId)).mandates.map((m) => m.mandate_id)).toContain(old.body.mandate_id);
		await runAlarmAt(sessionId, finishedAt + RETENTION_MS + 60_000);
		const left = (await progressOf(sessionId)).mandates;
		expect(left.map((m) => m.mandate_id)).not.toContain(old.body.mandate_id);
		// The running one is not deleted (it may have timed out meanwhile: its own, later outcome).
		expect(left.map((m) => m.mandate_id)).toContain(running.mandate_id);
		const events = await runInDurableObject(
			sessionStub(sessionId),
			(_i, state) =>
				state.storage.sql
					.exec<{ n: number }>(
						"SELECT COUNT(*) AS n FROM ml_events WHERE mandate_id = ?",
						old.body.mandate_id,
					)
					.one().n,
		);
		expect(events).toBe(0);
		// The log still starts at seq 1 (the running mandate's frames) but has a hole where the deleted
		// ones were: a phone resuming from before it gets a snapshot, never a replay across the hole.
		const oldest = await runInDurableObject(
			sessionStub(sessionId),
			(_i, state) =>
				state.storage.sql.exec<{ seq: number }>("SELECT MIN(seq) AS seq FROM ml_events").one().seq,
		);
		expect(oldest).toBe(1);
		const resumed = await connectPhone(sessionId, { since: 1 });
		phones.push(resumed);
		const first = await resumed.waitFor(() => true, "first frame");
		expect(first.type).toBe("snapshot");
	});

	it("tells a watching phone by a snapshot, and never gives a deleted event's seq to another, even after a restart", async () => {
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		await phone.waitFor((f) => f.type === "snapshot", "snapshot");
		const kept = mandateBody(sessionId);
		const gone = mandateBody(sessionId);
		await reportStage(sessionId, kept.mandate_id, 1, "active");
		// The newest events are the mandate that retention deletes.
		await reportStage(sessionId, gone.mandate_id, 1, "failed");
		await phone.waitForStage(gone.mandate_id, 1, "failed");
		const seen = phone.frames.length;
		// It finished 30 days ago (a phone watching then has a fresh token: the alarm runs as of now).
		await runInDurableObject(sessionStub(sessionId), (_i, state) => {
			state.storage.sql.exec(
				"UPDATE ml_mandates SET updated_at = ? WHERE mandate_id = ?",
				Date.now() - RETENTION_MS - 60_000,
				gone.mandate_id,
			);
		});
		await runAlarmAt(sessionId, Date.now());
		// The phone that watched is told: a snapshot at a seq of its own, without the deleted mandate.
		const told = await phone.waitFor(
			(f) => f.type === "snapshot" && phone.frames.indexOf(f) >= seen,
			"snapshot after retention",
		);
		expect(told.seq).toBe(3);
		expect((told.mandates as Array<{ mandate_id: string }>).map((m) => m.mandate_id)).toEqual([
			kept.mandate_id,
		]);
		expect(await progressOf(sessionId)).toMatchObject({ seq: 3 });

		// A restart does not hand out seq 2 or 3 again (the log's newest row is seq 1 now).
		await evictDurableObject(sessionStub(sessionId));
		await reportStage(sessionId, kept.mandate_id, 1, "completed");
		expect((await progressOf(sessionId)).seq).toBe(4);
		// A phone from before the deletion finds a hole: a snapshot. One from after it: just seq 4.
		const before = await connectPhone(sessionId, { since: 2 });
		phones.push(before);
		expect((await before.waitFor(() => true, "first frame")).type).toBe("snapshot");
		const after = await connectPhone(sessionId, { since: 3 });
		phones.push(after);
		const replayed = await after.waitFor(() => true, "first frame");
		expect(replayed).toMatchObject({ seq: 4, event: "pipeline_stage" });
	});

	it("forgets a delivery webhook's id a week after it came, in the alarm's pass", async () => {
		const sessionId = uniqueId("sess");
		await finishedMandate(sessionId);
		await auditSettled(sessionId);
		const webhookIds = () =>
			runInDurableObject(
				sessionStub(sessionId),
				(_instance, state) =>
					state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM ml_webhooks").one().n,
			);
		expect(await webhookIds()).toBe(1);
		const received = Date.now();
		// A replay is refused by its signature's timestamp after 5 minutes; the id is kept a week anyway.
		expect(await runAlarmAt(sessionId, received + WEBHOOK_DEDUP_RETENTION_MS - 60_000)).toBe(true);
		expect(await webhookIds()).toBe(1);
		expect(await runAlarmAt(sessionId, received + WEBHOOK_DEDUP_RETENTION_MS + 60_000)).toBe(true);
		expect(await webhookIds()).toBe(0);
	});

	it("a session with nothing left and no phone deletes its whole storage, alarm and owner row", async () => {
		const sub = uniqueId("user");
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId, { token: await mobileToken(sessionId, { sub }) });
		await phone.waitFor((f) => f.type === "snapshot", "snapshot");
		await finishedMandate(sessionId);
		phone.close();
		await expect
			.poll(() => runInDurableObject(sessionStub(sessionId), (_i, s) => s.getWebSockets().length))
			.toBe(0);
		await auditSettled(sessionId);
		expect(await d1Count("SELECT COUNT(*) AS n FROM session_owners WHERE session_id = ?", sessionId)).toBe(1);
		await runAlarmAt(sessionId, Date.now() + RETENTION_MS + 60_000);
		expect(await stored(sessionId)).toEqual({ mandates: 0, events: 0, meta: 0 });
		expect(await runAlarm(sessionId)).toBe(false);
		expect(await d1Count("SELECT COUNT(*) AS n FROM session_owners WHERE session_id = ?", sessionId)).toBe(0);
	});

	it("a session a phone opened and left without a mandate is deleted after an hour", async () => {
		const sessionId = uniqueId("sess");
		const response = await connectResponse(sessionId, "", {
			Authorization: `Bearer ${await mobileToken(sessionId)}`,
		});
		const socket = response.webSocket as WebSocket;
		socket.accept();
		socket.close(1000, "bye");
		await expect.poll(async () => (await stored(sessionId)).meta).toBeGreaterThan(0);
		await expect
			.poll(() =>
				runInDurableObject(
					sessionStub(sessionId),
					(_i, state) =>
						state.storage.sql
							.exec<{ n: number }>("SELECT COUNT(*) AS n FROM ml_meta WHERE key = 'empty_cleanup_at'")
							.one().n,
				),
			)
			.toBe(1);
		await runAlarmAt(sessionId, Date.now() + EMPTY_SESSION_GRACE_MS + 1_000);
		expect(await stored(sessionId)).toEqual({ mandates: 0, events: 0, meta: 0 });
	});

	it("shows every unfinished mandate and at most the newest finished ones on connect", async () => {
		const sessionId = uniqueId("sess");
		const finished: string[] = [];
		for (let i = 0; i < MAX_FINISHED_SHOWN + 3; i++)
			finished.push((await finishedMandate(sessionId)).body.mandate_id);
		const running = mandateBody(sessionId);
		await execute(running);
		const shown = (await progressOf(sessionId)).mandates.map((m) => m.mandate_id);
		expect(shown).toHaveLength(MAX_FINISHED_SHOWN + 1);
		expect(shown).toContain(running.mandate_id);
		expect(shown).not.toContain(finished[0]);
		expect(shown).toContain(finished.at(-1));
	});

	it("the Cron Trigger sweeps D1 rows past retention in bounded batches and never a running execution's", async () => {
		const sessionId = uniqueId("sess");
		const done = await finishedMandate(sessionId);
		const running = mandateBody(sessionId);
		const runningExecution = (await execute(running)).json.execution_id;
		await auditSettled(sessionId);
		const rows = (executionId: string) =>
			Promise.all([
				d1Count("SELECT COUNT(*) AS n FROM executions WHERE execution_id = ?", executionId),
				d1Count("SELECT COUNT(*) AS n FROM audit_log WHERE execution_id = ?", executionId),
			]);
		expect((await rows(done.executionId)).every((n) => n > 0)).toBe(true);

		const sweep = async (at: number) => {
			const ctx = createExecutionContext();
			await worker.scheduled(createScheduledController({ scheduledTime: at, cron: "17 3 * * *" }), env, ctx);
			await waitOnExecutionContext(ctx);
		};
		await sweep(Date.now() + RETENTION_MS - 60_000);
		expect((await rows(done.executionId)).every((n) => n > 0)).toBe(true);
		await sweep(Date.now() + RETENTION_MS + 60_000);
		expect(await rows(done.executionId)).toEqual([0, 0]);
		expect(
			await d1Count(
				"SELECT COUNT(*) AS n FROM audit_log WHERE session_id = ? AND mandate_id = ?",
				sessionId,
				done.body.mandate_id,
			),
		).toBe(0);
		// The running execution keeps its record and audit trail.
		expect((await rows(runningExecution)).every((n) => n > 0)).toBe(true);
	});
});
