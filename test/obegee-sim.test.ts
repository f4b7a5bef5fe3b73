import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { executionFailedMessage } from "../src/pipeline/messages.ts";
import {
	answerRelayed,
	connectPhone,
	execute,
	mandateBody,
	phonesClosedAfterEach,
	progressOf,
	relayToWorker,
	runAlarmAt,
	runningMandate,
	sessionStub,
	sim,
	simRequests,
	takeRelayedWebhook,
	uniqueId,
} from "./helpers.ts";
import { TEST_SECRETS, TEST_TIMING } from "./secrets.ts";

/**
 * Issue 19: the ObeGee simulator is as strict as ObeGee, so a broken Worker fails here. First the
 * simulator's own refusals (one test each, so it cannot rot into "accept anything"), then what the
 * Worker sends as ObeGee receives it, then the simulator's own webhook delivery reaching the Worker.
 */

const DISPATCH = "/api/myndlens/dispatch/mandate";
const AUTH = { Authorization: `Bearer ${TEST_SECRETS.OBEGEE_API_TOKEN}` };
const JSON_TYPE = { "Content-Type": "application/json" };

/** A seed-shaped dispatch body of its own, for calls straight to the simulator. */
function seedMandate(overrides: Record<string, unknown> = {}) {
	return {
		mandate_id: uniqueId("mio"),
		tenant_id: "tenant_2545f9a0d50d",
		intent: "Send weekly report to team",
		dimensions: { sim_scenario: "manual" },
		generated_skills: [],
		delivery_channels: ["email"],
		...overrides,
	};
}

function obegee(path: string, init: RequestInit): Promise<Response> {
	return fetch(`${env.SIM_URL}${path}`, init);
}

function dispatchTo(body: unknown, headers: Record<string, string>): Promise<Response> {
	return obegee(DISPATCH, {
		method: "POST",
		headers,
		body: typeof body === "string" ? body : JSON.stringify(body),
	});
}

async function expectRefusal(response: Response, status: number, code: string): Promise<void> {
	expect(response.status).toBe(status);
	expect(response.headers.get("Content-Type")).toBe("application/json");
	const body = (await response.json()) as { error: { code: string; message: string } };
	expect(body).toEqual({ error: { code, message: expect.any(String) } });
}

async function executionIdOf(response: Response): Promise<string> {
	expect(response.status).toBe(202);
	return ((await response.json()) as { execution_id: string }).execution_id;
}

function mandateRow(sessionId: string, mandateId: string) {
	return runInDurableObject(sessionStub(sessionId), (_instance, state) =>
		state.storage.sql
			.exec<{ state: string; next_dispatch_at: number | null; execution_id: string | null }>(
				"SELECT state, next_dispatch_at, execution_id FROM ml_mandates WHERE mandate_id = ?",
				mandateId,
			)
			.one(),
	);
}

describe("the ObeGee simulator refuses what ObeGee refuses", () => {
	it("a dispatch without the bearer token, or with another one, is a 401 and starts nothing", async () => {
		const body = seedMandate();
		const key = { "Idempotency-Key": body.mandate_id };
		await expectRefusal(await dispatchTo(body, { ...JSON_TYPE, ...key }), 401, "unauthorized");
		await expectRefusal(
			await dispatchTo(body, { ...JSON_TYPE, ...key, Authorization: "Bearer not-the-token" }),
			401,
			"unauthorized",
		);
		const requests = await simRequests({ mandate_id: body.mandate_id });
		expect(requests.map((r) => r.response)).toEqual([
			{ status: 401, code: "unauthorized", execution_id: null },
			{ status: 401, code: "unauthorized", execution_id: null },
		]);
		// The key was never used: the right token now starts the execution.
		await executionIdOf(await dispatchTo(body, { ...AUTH, ...JSON_TYPE, ...key }));
	});

	it("a status call without the bearer token is a 401", async () => {
		const executionId = await executionIdOf(await dispatchTo(seedMandate(), { ...AUTH, ...JSON_TYPE }));
		const status = `/api/myndlens/dispatch/status/${executionId}`;
		await expectRefusal(await obegee(status, { method: "GET" }), 401, "unauthorized");
		expect((await obegee(status, { method: "GET", headers: AUTH })).status).toBe(200);
	});

	it("a dispatch that is not application/json is a 415, whatever its body", async () => {
		const body = seedMandate();
		// fetch labels a string body text/plain: that is what a client that sets no Content-Type sends.
		await expectRefusal(await dispatchTo(body, AUTH), 415, "unsupported_media_type");
		for (const type of [
			"text/plain",
			"application/x-www-form-urlencoded",
			"application/json; charset=latin1",
		]) {
			await expectRefusal(
				await dispatchTo(body, { ...AUTH, "Content-Type": type }),
				415,
				"unsupported_media_type",
			);
		}
		await executionIdOf(
			await dispatchTo(body, { ...AUTH, "Content-Type": "application/json; charset=utf-8" }),
		);
	});

	it("a body with a field the seed does not list, a missing one or a null is a 400", async () => {
		const headers = { ...AUTH, ...JSON_TYPE };
		const { intent: _intent, ...noIntent } = seedMandate();
		for (const body of [
			seedMandate({ session_id: "sess_leaked" }),
			noIntent,
			seedMandate({ dimensions: null }),
			seedMandate({ delivery_channels: "email" }),
		]) {
			await expectRefusal(await dispatchTo(body, headers), 400, "invalid_request");
		}
		await expectRefusal(await dispatchTo("{", headers), 400, "invalid_json");
	});

	it("a reused Idempotency-Key replays the first answer for the same body and is a 422 for another", async () => {
		const body = seedMandate();
		const headers = { ...AUTH, ...JSON_TYPE, "Idempotency-Key": uniqueId("key") };
		const executionId = await executionIdOf(await dispatchTo(body, headers));
		const replay = await dispatchTo(body, headers);
		expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
		expect(await executionIdOf(replay)).toBe(executionId);
		await expectRefusal(
			await dispatchTo({ ...body, intent: "Something else" }, headers),
			422,
			"idempotency_key_reused",
		);
	});

	it("an empty Idempotency-Key is a 400", async () => {
		const headers = { ...AUTH, ...JSON_TYPE, "Idempotency-Key": "" };
		await expectRefusal(await dispatchTo(seedMandate(), headers), 400, "invalid_idempotency_key");
	});

	it("a dispatch without an Idempotency-Key is a new execution every time: never deduplicated by mandate_id", async () => {
		const body = seedMandate();
		const first = await executionIdOf(await dispatchTo(body, { ...AUTH, ...JSON_TYPE }));
		const second = await executionIdOf(await dispatchTo(body, { ...AUTH, ...JSON_TYPE }));
		expect(second).not.toBe(first);
		const keyed = { ...AUTH, ...JSON_TYPE, "Idempotency-Key": body.mandate_id };
		const third = await executionIdOf(await dispatchTo(body, keyed));
		expect(new Set([first, second, third]).size).toBe(3);
	});

	it("FAILED carries the seed's summary and fields, and no error field", async () => {
		const executionId = await executionIdOf(await dispatchTo(seedMandate(), { ...AUTH, ...JSON_TYPE }));
		const completed = await sim(`/__sim/executions/${executionId}/complete`, {
			status: "FAILED",
			summary: "Mailbox full",
			send_webhook: false,
		});
		const { webhook } = (await completed.json()) as { webhook: { body: string } };
		const status = await obegee(`/api/myndlens/dispatch/status/${executionId}`, { headers: AUTH });
		for (const body of [JSON.parse(webhook.body), await status.json()]) {
			expect(Object.keys(body)).toEqual([
				"execution_id",
				"status",
				"delivered_to",
				"summary",
				"completed_at",
			]);
			expect(body).toMatchObject({ execution_id: executionId, status: "FAILED", summary: "Mailbox full" });
		}
	});
});

describe("the Worker's requests, as ObeGee receives them", () => {
	const phones = phonesClosedAfterEach();

	it("a dispatch carries the bearer token, JSON, the mandate's Idempotency-Key and exactly the seed's fields", async () => {
		const { sessionId, body, executionId } = await runningMandate(phones);
		const [dispatch, ...others] = await simRequests({ mandate_id: body.mandate_id });
		expect(others).toEqual([]);
		expect(dispatch).toMatchObject({ method: "POST", path: DISPATCH, idempotency_key: body.mandate_id });
		expect(dispatch?.headers).toMatchObject({
			authorization: `Bearer ${TEST_SECRETS.OBEGEE_API_TOKEN}`,
			"content-type": "application/json",
			"idempotency-key": body.mandate_id,
		});
		const { session_id: _session, ...seed } = body;
		expect(JSON.parse(dispatch?.body ?? "null")).toEqual(seed);
		expect(dispatch?.response).toEqual({ status: 202, code: null, execution_id: executionId });

		// Its status polls carry the token too, and no body.
		await runAlarmAt(sessionId, Date.now() + Number(TEST_TIMING.POLL_INTERVAL_MS) + 1_000);
		const polls = await simRequests({ execution_id: executionId, method: "GET" });
		expect(polls.length).toBeGreaterThan(0);
		for (const poll of polls) {
			expect(poll.path).toBe(`/api/myndlens/dispatch/status/${executionId}`);
			expect(poll.headers.authorization).toBe(`Bearer ${TEST_SECRETS.OBEGEE_API_TOKEN}`);
			expect(poll.body).toBeNull();
		}
	});

	it("a dispatch whose answer was lost is retried with the same key and body, and starts one execution", async () => {
		const sessionId = uniqueId("sess");
		const phone = await connectPhone(sessionId);
		phones.push(phone);
		const body = mandateBody(sessionId);
		// ObeGee starts the execution, but a proxy answers 502: only the key keeps a retry from a second one.
		await sim(`/__sim/mandates/${body.mandate_id}/misbehave`, { status_code: 502, executes: true, times: 1 });
		expect((await execute(body)).response.status).toBe(503);
		const row = await mandateRow(sessionId, body.mandate_id);
		expect(row.state).toBe("dispatching");
		await runAlarmAt(sessionId, row.next_dispatch_at ?? 0);
		await phone.waitForStage(body.mandate_id, 9, "active");

		const requests = await simRequests({ mandate_id: body.mandate_id });
		expect(requests.map((r) => r.response.status)).toEqual([502, 202]);
		const [lost, retry] = requests as [(typeof requests)[0], (typeof requests)[0]];
		expect(retry.idempotency_key).toBe(body.mandate_id);
		expect(retry.idempotency_key).toBe(lost.idempotency_key);
		expect(retry.body).toBe(lost.body);
		expect(retry.headers["idempotent-replayed"]).toBeUndefined();
		// The retry was answered with the execution the lost attempt started: one execution in all.
		const { execution_id: stored } = await mandateRow(sessionId, body.mandate_id);
		expect(stored).toBe(retry.response.execution_id);
		const status = await obegee(`/api/myndlens/dispatch/status/${stored}`, { headers: AUTH });
		expect(status.status).toBe(200);
		expect((await progressOf(sessionId)).mandates[0]?.execution_id).toBe(stored);
	});
});

describe("the simulator's own webhook delivery reaches the Worker (through a relay the test drives)", () => {
	const phones = phonesClosedAfterEach();

	it("a retry is signed anew under the same webhook-id, and the Worker accepts it", async () => {
		const { phone, body, executionId } = await runningMandate(phones, {
			dimensions: { sim_scenario: "manual", sim_webhook: "relay" },
		});
		await sim(`/__sim/executions/${executionId}/complete`, { status: "COMPLETED", summary: "Report sent" });
		const first = await takeRelayedWebhook(executionId);
		// The Worker was out of reach for the first attempt.
		await answerRelayed(first, null);
		const second = await takeRelayedWebhook(executionId);
		expect(second.headers["webhook-id"]).toBe(first.headers["webhook-id"]);
		expect(second.body).toBe(first.body);
		expect(Number(second.headers["webhook-timestamp"])).toBeGreaterThan(
			Number(first.headers["webhook-timestamp"]),
		);
		expect(second.headers["webhook-signature"]).not.toBe(first.headers["webhook-signature"]);
		// Each attempt verifies on its own, with the reference library…
		for (const attempt of [first, second]) {
			expect(new Webhook(TEST_SECRETS.WEBHOOK_SECRET).verify(attempt.body, attempt.headers)).toMatchObject({
				execution_id: executionId,
			});
		}
		// …and with the Worker.
		const response = await relayToWorker(second);
		expect(response.status).toBe(200);
		expect(await response.json()).toEqual({ outcome: "applied" });
		const done = await phone.waitForStage(body.mandate_id, 10, "completed");
		expect(done.data).toMatchObject({ summary: "Report sent", delivered_to: ["email"] });
		const calls = (await (await sim("/__sim/calls")).json()) as {
			webhooks: { execution_id: string; attempt: number; http_status: number | null; target: string }[];
		};
		expect(
			calls.webhooks.filter((w) => w.execution_id === executionId).map((w) => [w.attempt, w.http_status]),
		).toEqual([
			[1, null],
			[2, 200],
		]);
	});

	it("the simulator's FAILED webhook fails the mandate with our own message; its duplicate changes nothing", async () => {
		const { phone, body, executionId } = await runningMandate(phones, {
			dimensions: { sim_scenario: "duplicate_webhook", sim_duration_ms: 60_000, sim_webhook: "relay" },
		});
		await sim(`/__sim/executions/${executionId}/complete`, { status: "FAILED", summary: "Mailbox full" });
		const first = await takeRelayedWebhook(executionId);
		expect(JSON.parse(first.body)).toMatchObject({
			status: "FAILED",
			summary: "Mailbox full",
			delivered_to: [],
		});
		expect(await (await relayToWorker(first)).json()).toEqual({ outcome: "applied" });
		const failed = await phone.waitForStage(body.mandate_id, 9, "failed");
		expect((failed.data as { message: string }).message).toBe(executionFailedMessage("FAILED"));
		const duplicate = await takeRelayedWebhook(executionId);
		expect(duplicate.headers["webhook-id"]).toBe(first.headers["webhook-id"]);
		const again = await relayToWorker(duplicate);
		expect(again.status).toBe(200);
		expect(await again.json()).toEqual({ outcome: "duplicate" });
	});
});
