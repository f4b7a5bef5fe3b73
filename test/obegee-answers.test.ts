import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { executionFailedMessage } from "../src/pipeline/messages.ts";
import {
	MAX_RECIPIENT_CHARS,
	MAX_RECIPIENTS,
	MAX_SUMMARY_CHARS,
	TRUNCATION_MARK,
} from "../src/protocol/obegee.ts";
import {
	connectPhone,
	deliverWebhook,
	execute,
	mandateBody,
	type Phone,
	phonesClosedAfterEach,
	phoneTokenExpiry,
	progressOf,
	runAlarmAt,
	runningMandate,
	sessionStub,
	sim,
	uniqueId,
} from "./helpers.ts";
import { TEST_SECRETS, TEST_TIMING } from "./secrets.ts";

/**
 * Issue 16: ObeGee's answers read right. The poll and the webhook share one parser, so each finding
 * about an answer's body runs on both paths; the rest are about the poll's and the dispatch's HTTP.
 * The simulator misbehaves per execution (status calls) or per mandate (dispatch calls) on request.
 */

const POLL_INTERVAL_MS = Number(TEST_TIMING.POLL_INTERVAL_MS);

type Path = "poll" | "webhook";

function misbehave(executionId: string, spec: Record<string, unknown>) {
	return sim(`/__sim/executions/${executionId}/misbehave`, spec);
}

function misbehaveDispatch(mandateId: string, spec: Record<string, unknown>) {
	return sim(`/__sim/mandates/${mandateId}/misbehave`, spec);
}

function signed(body: object | string, id = uniqueId("msg"), at = new Date()) {
	const text = typeof body === "string" ? body : JSON.stringify(body);
	return {
		id,
		timestamp: String(Math.floor(at.getTime() / 1000)),
		signature: new Webhook(TEST_SECRETS.WEBHOOK_SECRET).sign(id, at, text),
		body: text,
	};
}

/** Fires the alarm at the mandate's next poll (other jobs, like an outbox retry, may come first). */
async function pollNow(sessionId: string, mandateId: string): Promise<void> {
	const { next_poll_at: at } = await mandateRow(sessionId, mandateId);
	expect(at).not.toBeNull();
	expect(await runAlarmAt(sessionId, at as number)).toBe(true);
}

/** ObeGee says `body` about the execution: in the next status answer, or in a signed webhook. */
async function answer(
	path: Path,
	running: { sessionId: string; executionId: string; body: { mandate_id: string } },
	body: object,
): Promise<Response | null> {
	if (path === "webhook") return deliverWebhook(signed(body));
	expect((await misbehave(running.executionId, { body, times: 1 })).status).toBe(200);
	await pollNow(running.sessionId, running.body.mandate_id);
	return null;
}

function mandateRow(sessionId: string, mandateId: string) {
	return runInDurableObject(sessionStub(sessionId), (_instance, state) =>
		state.storage.sql
			.exec<{
				state: string;
				next_poll_at: number | null;
				poll_failures: number;
				next_dispatch_at: number | null;
				result: string | null;
				remote_status: string | null;
			}>(
				"SELECT state, next_poll_at, poll_failures, next_dispatch_at, result, remote_status FROM ml_mandates WHERE mandate_id = ?",
				mandateId,
			)
			.one(),
	);
}

/** Waits until the session's outbox is copied to D1 (the copy may run off the caller's path). */
async function outboxCopied(sessionId: string): Promise<void> {
	const deadline = Date.now() + 3_000;
	for (;;) {
		const pending = await runInDurableObject(
			sessionStub(sessionId),
			(_i, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM ml_outbox").one().n,
		);
		if (pending === 0) return;
		if (Date.now() > deadline) throw new Error(`outbox of ${sessionId} still holds ${pending} rows`);
		await new Promise((resolve) => setTimeout(resolve, 10));
	}
}

async function auditRows(sessionId: string, where: { executionId?: string; mandateId?: string }) {
	await outboxCopied(sessionId);
	const rows = await env.DB.prepare(
		"SELECT seq, event, detail, at FROM audit_log WHERE execution_id = ? OR mandate_id = ? ORDER BY seq",
	)
		.bind(where.executionId ?? null, where.mandateId ?? null)
		.all<{ seq: number; event: string; detail: string; at: string }>();
	return rows.results.map((row) => ({ ...row, detail: JSON.parse(row.detail) as Record<string, unknown> }));
}

function stageMessage(phone: Phone, mandateId: string, stage: number): string | undefined {
	return phone.stages(mandateId).find((s) => s.stage === stage && s.status === "failed")?.message;
}

const address = (i: number) =>
	`${String(i).padStart(3, "0")}${"a".repeat(MAX_RECIPIENT_CHARS - 15)}@example.com`;

describe("ObeGee answers, read by one parser on the poll and the webhook", () => {
	const phones = phonesClosedAfterEach();

	for (const path of ["poll", "webhook"] as const) {
		it(`${path}: a COMPLETED with long display fields, a numeric completed_at and nulls completes, clamped`, async () => {
			const { sessionId, phone, body, executionId } = await runningMandate(phones);
			const recipients = Array.from({ length: 25 }, (_, i) => address(i));
			expect(recipients[0]).toHaveLength(MAX_RECIPIENT_CHARS);
			const response = await answer(
				path,
				{ sessionId, executionId, body },
				{
					execution_id: executionId,
					status: "COMPLETED",
					summary: "s".repeat(MAX_SUMMARY_CHARS + 1000),
					delivered_to: [...recipients.slice(0, 3), `${"b".repeat(300)}@example.com`, ...recipients.slice(3)],
					completed_at: 1_767_225_600,
					error: null,
				},
			);
			if (response) expect(response.status).toBe(200);
			const done = await phone.waitForStage(body.mandate_id, 10, "completed");
			const shown = done.data as { summary: string; delivered_to: string[] };
			expect(shown.summary).toHaveLength(MAX_SUMMARY_CHARS);
			expect(shown.summary.endsWith(TRUNCATION_MARK)).toBe(true);
			expect(shown.delivered_to).toHaveLength(MAX_RECIPIENTS);
			expect(shown.delivered_to.slice(0, 3)).toEqual(recipients.slice(0, 3));
			expect(shown.delivered_to[3]).toHaveLength(MAX_RECIPIENT_CHARS);
			expect(shown.delivered_to[3]?.endsWith(TRUNCATION_MARK)).toBe(true);
			const result = JSON.parse((await mandateRow(sessionId, body.mandate_id)).result ?? "null");
			expect(result).toMatchObject({
				delivered_to_count: 26,
				// ObeGee's clock, as it said it (a number, converted); ours is separate.
				reported_completed_at: "2026-01-01T00:00:00.000Z",
			});
			expect(result.completed_at).not.toBe(result.reported_completed_at);
			expect(Date.parse(result.completed_at)).toBeGreaterThan(Date.parse("2026-01-01T00:00:00.000Z"));
			const outcome = (await auditRows(sessionId, { executionId })).find((r) => r.event === "outcome");
			expect([...((outcome?.detail.clamped as string[]) ?? [])].sort()).toEqual([
				"completed_at",
				"delivered_to",
				"summary",
			]);
		});

		it(`${path}: a FAILED with "error": null and null fields fails stage 9 with our own message`, async () => {
			const { sessionId, phone, body, executionId } = await runningMandate(phones);
			const response = await answer(
				path,
				{ sessionId, executionId, body },
				{
					execution_id: executionId,
					status: "FAILED",
					error: null,
					summary: null,
					delivered_to: null,
					completed_at: null,
				},
			);
			if (response) expect(response.status).toBe(200);
			const failed = await phone.waitForStage(body.mandate_id, 9, "failed");
			expect((failed.data as { message: string }).message).toBe(executionFailedMessage("FAILED"));
		});

		it(`${path}: ObeGee's FAILED text never reaches the phone, only the audit (bounded)`, async () => {
			const { sessionId, phone, body, executionId } = await runningMandate(phones);
			const leak = `Traceback (most recent call last): key=sk-live-abc123 ${"x".repeat(5000)}`;
			await answer(
				path,
				{ sessionId, executionId, body },
				{
					execution_id: executionId,
					status: "FAILED",
					error: leak,
				},
			);
			const failed = await phone.waitForStage(body.mandate_id, 9, "failed");
			const message = (failed.data as { message: string }).message;
			expect(message).toBe(executionFailedMessage("FAILED"));
			expect(JSON.stringify(phone.frames)).not.toContain("sk-live");
			expect(JSON.stringify(await progressOf(sessionId))).not.toContain("sk-live");
			const outcome = (await auditRows(sessionId, { executionId })).find((r) => r.event === "outcome");
			expect(String(outcome?.detail.reported_error)).toContain("sk-live-abc123");
			expect(String(outcome?.detail.reported_error).length).toBeLessThanOrEqual(2000);
		});

		it(`${path}: a FAILED reason sent as the seed's summary is audited, never shown`, async () => {
			const { sessionId, phone, body, executionId } = await runningMandate(phones);
			await answer(
				path,
				{ sessionId, executionId, body },
				{ execution_id: executionId, status: "FAILED", summary: "Mailbox full at recipient" },
			);
			const failed = await phone.waitForStage(body.mandate_id, 9, "failed");
			expect((failed.data as { message: string }).message).toBe(executionFailedMessage("FAILED"));
			expect(JSON.stringify(phone.frames)).not.toContain("Mailbox full");
			const outcome = (await auditRows(sessionId, { executionId })).find((r) => r.event === "outcome");
			expect(outcome?.detail.reported_summary).toBe("Mailbox full at recipient");
		});

		it(`${path}: statuses match case-insensitively`, async () => {
			const { sessionId, phone, body, executionId } = await runningMandate(phones);
			await answer(
				path,
				{ sessionId, executionId, body },
				{
					execution_id: executionId,
					status: "completed",
					summary: "Sent",
				},
			);
			await phone.waitForStage(body.mandate_id, 10, "completed");
		});

		it(`${path}: CANCELLED and REJECTED end the run with our own message, not at the timeout`, async () => {
			for (const status of ["CANCELLED", "Rejected"] as const) {
				const { sessionId, phone, body, executionId } = await runningMandate(phones);
				await answer(
					path,
					{ sessionId, executionId, body },
					{ execution_id: executionId, status, error: "internal" },
				);
				const failed = await phone.waitForStage(body.mandate_id, 9, "failed");
				expect((failed.data as { message: string }).message).toBe(
					executionFailedMessage(status.toUpperCase() as "CANCELLED" | "REJECTED"),
				);
				expect((await progressOf(sessionId)).mandates[0]?.state).toBe("failed");
			}
		});

		it(`${path}: a blank or missing status is a bad answer and changes nothing`, async () => {
			const { sessionId, phone, body, executionId } = await runningMandate(phones);
			const response = await answer(
				path,
				{ sessionId, executionId, body },
				{
					execution_id: executionId,
					status: "  ",
				},
			);
			if (response) expect(response.status).toBe(400);
			else expect((await mandateRow(sessionId, body.mandate_id)).poll_failures).toBe(1);
			expect((await progressOf(sessionId)).mandates[0]?.state).toBe("running");
			expect(phone.stages(body.mandate_id).at(-1)).toMatchObject({ stage: 9, status: "active" });
		});
	}
});

describe("the status poll reads ObeGee's HTTP answers right", () => {
	const phones = phonesClosedAfterEach();

	it("an answer about another execution is ignored, never applied", async () => {
		const { sessionId, body, executionId } = await runningMandate(phones);
		await misbehave(executionId, {
			body: { execution_id: "exec_someone_else", status: "COMPLETED" },
			times: 1,
		});
		await pollNow(sessionId, body.mandate_id);
		const row = await mandateRow(sessionId, body.mandate_id);
		expect(row).toMatchObject({ state: "running", poll_failures: 1 });
		const failed = (await auditRows(sessionId, { executionId })).find((r) => r.event === "poll_failed");
		expect(failed?.detail).toMatchObject({ kind: "bad_response" });
	});

	it("a 40 MB status body is not read whole: it is a bad answer", async () => {
		const { sessionId, body, executionId } = await runningMandate(phones);
		// Valid but for its size: a COMPLETED with a 40 MB unknown field, sent without a length.
		await misbehave(executionId, { body_bytes: 40_000_000, times: 1 });
		const started = Date.now();
		await pollNow(sessionId, body.mandate_id);
		expect(Date.now() - started).toBeLessThan(3_000);
		expect(await mandateRow(sessionId, body.mandate_id)).toMatchObject({
			state: "running",
			poll_failures: 1,
		});
		const failed = (await auditRows(sessionId, { executionId })).find((r) => r.event === "poll_failed");
		expect(failed?.detail).toMatchObject({ kind: "bad_response", detail: "response body too large" });
	});

	it("a status body that stalls is given up at the request timeout", async () => {
		const { sessionId, body, executionId } = await runningMandate(phones);
		await misbehave(executionId, { stall_body: true, times: 1 });
		await pollNow(sessionId, body.mandate_id);
		expect(await mandateRow(sessionId, body.mandate_id)).toMatchObject({
			state: "running",
			poll_failures: 1,
		});
		const failed = (await auditRows(sessionId, { executionId })).find((r) => r.event === "poll_failed");
		expect(failed?.detail).toMatchObject({ kind: "unavailable", detail: "timeout" });
	});

	for (const code of [401, 403, 404]) {
		it(`${code} while polling is final: stage 9 fails at once, an operator is alerted, polling stops`, async () => {
			const { sessionId, phone, body, executionId } = await runningMandate(phones);
			await misbehave(executionId, { status_code: code });
			await pollNow(sessionId, body.mandate_id);
			const failed = await phone.waitForStage(body.mandate_id, 9, "failed");
			const message = (failed.data as { message: string }).message;
			expect(message).toMatch(/alerted/);
			expect(message).not.toMatch(/longer than expected/);
			expect(await mandateRow(sessionId, body.mandate_id)).toMatchObject({
				state: "failed",
				next_poll_at: null,
			});
			// No poll is left: the only alarm is the phone's token expiry.
			expect(
				await runInDurableObject(sessionStub(sessionId), (_instance, state) => state.storage.getAlarm()),
			).toBe(await phoneTokenExpiry(sessionId));
			const refused = (await auditRows(sessionId, { executionId })).find((r) => r.event === "poll_refused");
			expect(refused?.detail).toMatchObject({ http_status: code });
			await misbehave(executionId, { off: true });
		});
	}

	it("429 with Retry-After (seconds or HTTP date) delays the next poll, capped, never past the deadline", async () => {
		const { sessionId, body, executionId } = await runningMandate(phones);
		const at = async () => (await mandateRow(sessionId, body.mandate_id)).next_poll_at as number;

		let armed = await at();
		await misbehave(executionId, { status_code: 429, headers: { "Retry-After": "90" }, times: 1 });
		await pollNow(sessionId, body.mandate_id);
		expect((await at()) - armed).toBe(90_000);

		armed = await at();
		const date = new Date(Date.now() + 65_000).toUTCString();
		await misbehave(executionId, { status_code: 429, headers: { "Retry-After": date }, times: 1 });
		await pollNow(sessionId, body.mandate_id);
		expect((await at()) - armed).toBeGreaterThanOrEqual(60_000);

		armed = await at();
		await misbehave(executionId, { status_code: 503, headers: { "Retry-After": "86400" }, times: 1 });
		await pollNow(sessionId, body.mandate_id);
		expect((await at()) - armed).toBe(120_000);

		// Near the deadline: one last poll at the deadline, not after it.
		const { deadline } = await runInDurableObject(sessionStub(sessionId), (_i, state) =>
			state.storage.sql
				.exec<{ deadline: number }>(
					"SELECT deadline_at AS deadline FROM ml_mandates WHERE mandate_id = ?",
					body.mandate_id,
				)
				.one(),
		);
		expect(deadline - (await at())).toBeLessThan(90_000);
		await misbehave(executionId, { status_code: 429, headers: { "Retry-After": "90" }, times: 1 });
		await pollNow(sessionId, body.mandate_id);
		expect(await at()).toBe(deadline);
	});

	it("a slow answer schedules the next poll from when it arrived, and audit time follows seq", async () => {
		const { sessionId, body, executionId } = await runningMandate(phones);
		// The poll is due now (not at the alarm's future time), so the answer's delay is real time.
		await outboxCopied(sessionId);
		const armed = Date.now();
		await runInDurableObject(sessionStub(sessionId), async (_i, state) => {
			state.storage.sql.exec(
				"UPDATE ml_mandates SET next_poll_at = ? WHERE mandate_id = ?",
				armed,
				body.mandate_id,
			);
			await state.storage.setAlarm(armed + 60_000);
		});
		await misbehave(executionId, { delay_ms: 2_000, times: 1 });
		const polling = runAlarmAt(sessionId, armed);
		// While the poll waits, a webhook lands (non-terminal: it only adds an audit row).
		await new Promise((resolve) => setTimeout(resolve, 500));
		const hook = await deliverWebhook(signed({ execution_id: executionId, status: "EXECUTING" }));
		expect(hook.status).toBe(200);
		expect(await polling).toBe(true);
		const next = (await mandateRow(sessionId, body.mandate_id)).next_poll_at as number;
		expect(next - armed).toBeGreaterThanOrEqual(POLL_INTERVAL_MS + 1_900);
		const times = (await auditRows(sessionId, { executionId })).map((r) => Date.parse(r.at));
		expect(times).toEqual([...times].sort((a, b) => a - b));
	});

	it("nothing goes back: EXECUTING, then a stale QUEUED, shows nothing new and keeps EXECUTING", async () => {
		const { sessionId, phone, body, executionId } = await runningMandate(phones);
		await misbehave(executionId, { body: { execution_id: executionId, status: "EXECUTING" }, times: 1 });
		await pollNow(sessionId, body.mandate_id);
		await phone.waitFor((f) => f.type === "progress" && f.status === "Agent started", "agent started");
		expect((await mandateRow(sessionId, body.mandate_id)).remote_status).toBe("EXECUTING");
		const seen = phone.frames.length;
		await misbehave(executionId, { body: { execution_id: executionId, status: "QUEUED" }, times: 1 });
		await pollNow(sessionId, body.mandate_id);
		await phone.settle();
		// Only the heartbeat may speak (the poll moved the clock on); the sub-status never repeats or goes back.
		const statuses = phone.frames
			.slice(seen)
			.flatMap((f) => (f.type === "progress" ? [String(f.status)] : []));
		expect(statuses.filter((status) => !status.startsWith("Still working..."))).toEqual([]);
		expect((await mandateRow(sessionId, body.mandate_id)).remote_status).toBe("EXECUTING");
	});
});

describe("the dispatch reads ObeGee's HTTP answers right", () => {
	const phones = phonesClosedAfterEach();

	async function dispatching(spec: Record<string, unknown>) {
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		const body = mandateBody(sessionId);
		await misbehaveDispatch(body.mandate_id, spec);
		const started = Date.now();
		const executed = await execute(body);
		return { sessionId, phone, body, started, ...executed };
	}

	it("429 with Retry-After delays the dispatch retry (not the 1 s backoff)", async () => {
		const { sessionId, body, started, response } = await dispatching({
			status_code: 429,
			headers: { "Retry-After": "45" },
			times: 1,
		});
		expect(response.status).toBe(503);
		const row = await mandateRow(sessionId, body.mandate_id);
		expect(row.state).toBe("dispatching");
		expect((row.next_dispatch_at as number) - started).toBeGreaterThanOrEqual(45_000);
		await runAlarmAt(sessionId, row.next_dispatch_at as number);
		expect((await mandateRow(sessionId, body.mandate_id)).state).toBe("running");
	});

	it("409 (ObeGee still busy with this Idempotency-Key) is retried like an outage, not 'please rephrase'", async () => {
		const { sessionId, phone, body, response, json } = await dispatching({ status_code: 409, times: 1 });
		expect(response.status).toBe(503);
		expect((json as unknown as { error: { code: string } }).error.code).toBe("dispatch_pending");
		const row = await mandateRow(sessionId, body.mandate_id);
		await runAlarmAt(sessionId, row.next_dispatch_at as number);
		await phone.waitForStage(body.mandate_id, 9, "active");
	});

	it("a 4xx that only mentions 'tenant' is a rejection, and ObeGee's text is stored bounded", async () => {
		const { sessionId, body, response, json } = await dispatching({
			status_code: 422,
			body: {
				error: {
					code: `validation_error${"c".repeat(1000)}`,
					message: `tenant_id is malformed ${"m".repeat(100_000)}`,
				},
			},
		});
		expect(response.status).toBe(422);
		expect((json as unknown as { error: { code: string } }).error.code).toBe("mandate_rejected");
		const failed = (await auditRows(sessionId, { mandateId: body.mandate_id })).find(
			(r) => r.event === "dispatch_failed",
		);
		expect(failed?.detail).toMatchObject({ kind: "rejected", httpStatus: 422 });
		expect(JSON.stringify(failed?.detail).length).toBeLessThan(1_000);
	});

	it("a dispatch answer reusing an execution id known in the session fails stage 6 and leaves nothing dispatching", async () => {
		const { sessionId, phone, executionId } = await runningMandate(phones);
		const second = mandateBody(sessionId);
		await misbehaveDispatch(second.mandate_id, {
			status_code: 202,
			body: { execution_id: executionId, status: "QUEUED" },
		});
		const { response, json } = await execute(second);
		expect(response.status).toBe(502);
		expect((json as unknown as { error: { code: string } }).error.code).toBe("obegee_conflict");
		await phone.waitForStage(second.mandate_id, 6, "failed");
		const states = (await progressOf(sessionId)).mandates.map((m) => [
			m.mandate_id === second.mandate_id,
			m.state,
		]);
		expect(states).toContainEqual([true, "failed"]);
		expect(states).toContainEqual([false, "running"]);
		expect((await progressOf(sessionId)).mandates.filter((m) => m.state === "dispatching")).toEqual([]);
		expect(stageMessage(phone, second.mandate_id, 6)).toMatch(/try again/i);
	});
});

describe("webhook replays", () => {
	const phones = phonesClosedAfterEach();

	it("replays of one signed webhook within its tolerance are audited once", async () => {
		const { sessionId, executionId } = await runningMandate(phones);
		const webhook = signed({ execution_id: executionId, status: "COMPLETED" });
		for (let i = 0; i < 4; i++) expect((await deliverWebhook(webhook)).status).toBe(200);
		const events = (await auditRows(sessionId, { executionId })).map((r) => r.event);
		expect(events.filter((e) => e === "webhook")).toHaveLength(1);
		expect(events.filter((e) => e === "webhook_duplicate")).toHaveLength(1);
	});
});
