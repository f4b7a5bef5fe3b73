import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DEFAULT_RETENTION_DAYS } from "../src/config.ts";
import {
	auditSettled,
	deliverWebhook,
	execute,
	mandateBody,
	progressOf,
	reportStage,
	sessionStub,
	simComplete,
	uniqueId,
} from "./helpers.ts";

/**
 * Issue 17, item 1: a signal's path runs the statements its guarantees need and no bookkeeping
 * beside them. Every SQLite statement the Session DO runs for one signed webhook is recorded, from the
 * request until its copy to D1 is done, and the ones that used to ride along are checked absent.
 */

/** Records every statement the object runs from now on (its storage's own `exec`, wrapped in place). */
async function recordStatements(
	sessionId: string,
): Promise<{ recorded: string[]; stop: () => Promise<void> }> {
	const stub = sessionStub(sessionId);
	const recorded: string[] = [];
	let stop = () => {};
	await runInDurableObject(stub, (_instance, state) => {
		const sql = state.storage.sql as unknown as { exec: (query: string, ...bindings: unknown[]) => unknown };
		const exec = sql.exec;
		sql.exec = (query: string, ...bindings: unknown[]) => {
			recorded.push(query.replace(/\s+/g, " ").trim());
			return exec.call(sql, query, ...bindings);
		};
		stop = () => {
			sql.exec = exec;
		};
	});
	return { recorded, stop: () => runInDurableObject(stub, () => stop()) };
}

describe("the hot path", () => {
	it("a signed webhook reads no setting twice, sweeps no webhook ids and finds the outbox empty without asking", async () => {
		const sessionId = uniqueId("sess");
		const body = mandateBody(sessionId);
		const { json } = await execute(body);
		expect(json.execution_id).toBeTruthy();
		await auditSettled(sessionId);
		const webhook = await simComplete(json.execution_id, { status: "COMPLETED", summary: "Sent" });
		const { recorded: statements, stop } = await recordStatements(sessionId);

		expect((await deliverWebhook(webhook)).status).toBe(200);
		// The copy to D1 runs after the answer: wait until it deleted its row, and a little more.
		await expect.poll(() => statements.some((query) => query.startsWith("DELETE FROM ml_outbox"))).toBe(true);
		await new Promise((resolve) => setTimeout(resolve, 200));
		await stop();
		expect((await progressOf(sessionId)).mandates[0]?.state).toBe("completed");

		const matching = (pattern: RegExp) => statements.filter((query) => pattern.test(query)).length;
		// What the webhook needs: its id recorded once, the outcome stored, one outbox row in and out.
		expect(matching(/^INSERT INTO ml_webhooks/)).toBe(1);
		expect(matching(/^INSERT INTO ml_outbox/)).toBe(1);
		expect(matching(/^SELECT id, kind, payload, attempts, records FROM ml_outbox/)).toBe(1);
		expect(matching(/^DELETE FROM ml_outbox/)).toBe(1);
		// What it no longer carries: the settings were read before (kept in memory), the webhook ids are
		// swept by the alarm, the outbox's count is kept, and the alarm is armed once, not again after the copy.
		expect(statements.filter((query) => query.includes("ml_meta"))).toEqual([]);
		expect(matching(/^DELETE FROM ml_webhooks/)).toBe(0);
		expect(matching(/SUM\(records\)/)).toBe(0);
		// Nothing else is due within a minute, so the alarm covered the copy; once done, the cover is dropped.
		const { alarm, retention } = await runInDurableObject(
			sessionStub(sessionId),
			async (_instance, state) => ({
				alarm: await state.storage.getAlarm(),
				retention:
					state.storage.sql
						.exec<{ updated_at: number }>(
							"SELECT updated_at FROM ml_mandates WHERE mandate_id = ?",
							body.mandate_id,
						)
						.one().updated_at +
					DEFAULT_RETENTION_DAYS * 24 * 60 * 60_000,
			}),
		);
		expect(alarm).toBe(retention);
	});

	it("arms the alarm once for a signal when another job is due first: the copy to D1 does not arm it again", async () => {
		const sessionId = uniqueId("sess");
		const running = mandateBody(sessionId);
		expect((await execute(running)).response.status).toBe(200);
		await auditSettled(sessionId);
		const { recorded: statements, stop } = await recordStatements(sessionId);

		expect((await reportStage(sessionId, uniqueId("mio"), 1, "active")).status).toBe(200);
		await expect.poll(() => statements.some((query) => query.startsWith("DELETE FROM ml_outbox"))).toBe(true);
		await new Promise((resolve) => setTimeout(resolve, 200));
		await stop();
		expect(
			statements.filter((query) => query.startsWith("SELECT MIN(due_at) AS at FROM ml_push")),
		).toHaveLength(1);
		// The alarm is the running mandate's next poll, as before the report.
		const { alarm, nextPoll } = await runInDurableObject(
			sessionStub(sessionId),
			async (_instance, state) => ({
				alarm: await state.storage.getAlarm(),
				nextPoll: state.storage.sql
					.exec<{ next_poll_at: number }>(
						"SELECT next_poll_at FROM ml_mandates WHERE mandate_id = ?",
						running.mandate_id,
					)
					.one().next_poll_at,
			}),
		);
		expect(alarm).toBe(nextPoll);
	});
});
