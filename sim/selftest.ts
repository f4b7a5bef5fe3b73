import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { DeliveryWebhook, DispatchResponse, ExecutionStatus } from "../src/protocol/obegee.ts";
import {
	agentAnswer,
	agentPlan,
	gatewayAgent,
	type ObeGeeSim,
	scriptEvents,
	startObeGeeSim,
} from "./obegee.ts";
import { StatusBody, WebhookBody } from "./obegee-schemas.ts";
import {
	CHAT_DELTA_THROTTLE_MS,
	ChatDeltaThrottle,
	type GatewaySim,
	type RunScript,
	startGatewaySim,
	verifyEd25519,
} from "./openclaw.ts";
import { deviceAuthPayloadV3 } from "./openclaw-spec.ts";

/**
 * Self-test of the ObeGee simulator, runnable without the Worker: `node sim/selftest.ts`.
 * It drives the sim over HTTP, receives its webhooks on a local server that verifies every signature
 * with the `standardwebhooks` reference library, and checks every answer against the seed's shapes
 * (sim/obegee-schemas.ts) and the Worker's parser, so the sim can drift from neither.
 */

const API_TOKEN = "selftest-token";
const SECRET = `whsec_${Buffer.from("selftest-secret-of-32-bytes-long").toString("base64")}`;
const AUTH = { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" };

interface Received {
	headers: IncomingHttpHeaders;
	body: string;
	/** Whether its Standard Webhooks signature verified (with the reference library) when it arrived. */
	verified: boolean;
}

/** A webhook receiver that records what arrives and answers with queued status codes (then 200). */
function startReceiver() {
	const received: Received[] = [];
	const answers: number[] = [];
	const server = createServer(async (req, res) => {
		const chunks: Uint8Array[] = [];
		for await (const chunk of req) chunks.push(chunk as Uint8Array);
		const body = Buffer.concat(chunks).toString("utf8");
		let verified = true;
		try {
			new Webhook(SECRET).verify(body, {
				"webhook-id": String(req.headers["webhook-id"]),
				"webhook-timestamp": String(req.headers["webhook-timestamp"]),
				"webhook-signature": String(req.headers["webhook-signature"]),
			});
		} catch {
			verified = false;
		}
		received.push({ headers: req.headers, body, verified });
		res.writeHead(answers.shift() ?? 200).end();
	});
	return new Promise<{ url: string; received: Received[]; answers: number[]; close: () => void }>(
		(resolve) => {
			server.listen(0, "127.0.0.1", () => {
				const { port } = server.address() as AddressInfo;
				resolve({
					url: `http://127.0.0.1:${port}/webhook`,
					received,
					answers,
					close: () => {
						server.close();
						server.closeAllConnections();
					},
				});
			});
		},
	);
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!check()) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 20));
	}
}

function verify(message: { id: string; timestamp: string; signature: string; body: string }): unknown {
	return new Webhook(SECRET).verify(message.body, {
		"webhook-id": message.id,
		"webhook-timestamp": message.timestamp,
		"webhook-signature": message.signature,
	});
}

type SignedMessage = ReturnType<typeof headerMessage>;

function headerMessage(received: Received) {
	return {
		id: String(received.headers["webhook-id"]),
		timestamp: String(received.headers["webhook-timestamp"]),
		signature: String(received.headers["webhook-signature"]),
		body: received.body,
	};
}

async function main(): Promise<void> {
	const receiver = await startReceiver();
	const sim: ObeGeeSim = await startObeGeeSim({
		apiToken: API_TOKEN,
		webhookSecret: SECRET,
		webhookUrl: receiver.url,
	});
	let mandateCounter = 0;

	const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
		fetch(sim.url + path, { method: "POST", headers: { ...AUTH, ...headers }, body: JSON.stringify(body) });
	const getJson = async (path: string) => (await fetch(sim.url + path, { headers: AUTH })).json();
	const status = (id: string, signal?: AbortSignal) =>
		fetch(`${sim.url}/api/myndlens/dispatch/status/${id}`, { headers: AUTH, signal });
	const dispatch = async (dimensions: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => {
		const mandate_id = `mio_selftest_${++mandateCounter}`;
		const body = { mandate_id, tenant_id: "tenant_a", intent: "Send report", dimensions, ...extra };
		const response = await post("/api/myndlens/dispatch/mandate", body);
		assert.equal(response.status, 202, await response.clone().text());
		return DispatchResponse.parse(await response.json()).execution_id;
	};
	const statusBody = async (id: string) => {
		const response = await status(id);
		assert.equal(response.status, 200);
		return ExecutionStatus.parse(await response.json());
	};
	const expectError = async (response: Response, httpStatus: number, code?: string) => {
		assert.equal(response.status, httpStatus);
		const body = (await response.json()) as { error: { code: string; message: string } };
		assert.equal(typeof body.error.message, "string");
		if (code) assert.equal(body.error.code, code);
	};

	const tests: [string, () => Promise<void>][] = [
		[
			"health answers ok",
			async () => {
				assert.deepEqual(await (await fetch(`${sim.url}/health`)).json(), { ok: true });
			},
		],
		[
			"ObeGee endpoints need the bearer token; bad bodies get 400",
			async () => {
				const noAuth = await fetch(`${sim.url}/api/myndlens/dispatch/mandate`, {
					method: "POST",
					body: "{}",
				});
				await expectError(noAuth, 401, "unauthorized");
				await expectError(await fetch(`${sim.url}/api/myndlens/dispatch/status/exec_x`), 401, "unauthorized");
				await expectError(
					await post("/api/myndlens/dispatch/mandate", { mandate_id: "m" }),
					400,
					"invalid_request",
				);
				const badJson = await fetch(`${sim.url}/api/myndlens/dispatch/mandate`, {
					method: "POST",
					headers: AUTH,
					body: "{",
				});
				await expectError(badJson, 400, "invalid_json");
				await expectError(await status("exec_unknown"), 404, "not_found");
			},
		],
		[
			"dispatch is deduplicated by Idempotency-Key only; a reused key with another body is a 422",
			async () => {
				const body = { mandate_id: "mio_idem", tenant_id: "tenant_a", intent: "x" };
				const first = await post("/api/myndlens/dispatch/mandate", body, { "idempotency-key": "k1" });
				assert.equal(first.status, 202);
				const { execution_id } = DispatchResponse.parse(await first.json());
				assert.match(execution_id, /^exec_[0-9a-f]{12}$/);
				// The same key and body (keys in another order): the first answer, replayed.
				const reordered = { intent: "x", tenant_id: "tenant_a", mandate_id: "mio_idem" };
				const again = await post("/api/myndlens/dispatch/mandate", reordered, { "idempotency-key": "k1" });
				assert.equal(again.status, 202);
				assert.equal(again.headers.get("idempotent-replayed"), "true");
				assert.deepEqual(await again.json(), { execution_id, status: "QUEUED" });
				const other = { ...body, mandate_id: "mio_other" };
				const sameKey = await post("/api/myndlens/dispatch/mandate", other, { "idempotency-key": "k1" });
				await expectError(sameKey, 422, "idempotency_key_reused");
				// No key: a new execution every time, the same mandate_id notwithstanding.
				const noKey1 = DispatchResponse.parse(
					await (await post("/api/myndlens/dispatch/mandate", body)).json(),
				);
				const noKey2 = DispatchResponse.parse(
					await (await post("/api/myndlens/dispatch/mandate", body)).json(),
				);
				assert.equal(new Set([execution_id, noKey1.execution_id, noKey2.execution_id]).size, 3);
				// Another key, the same mandate: another execution.
				const k2 = await post("/api/myndlens/dispatch/mandate", body, { "idempotency-key": "k2" });
				assert.notEqual(DispatchResponse.parse(await k2.json()).execution_id, execution_id);
				await expectError(
					await post("/api/myndlens/dispatch/mandate", body, { "idempotency-key": " " }),
					400,
					"invalid_idempotency_key",
				);
				await expectError(
					await post("/api/myndlens/dispatch/mandate", body, { "idempotency-key": "k".repeat(256) }),
					400,
					"invalid_idempotency_key",
				);
				assert.equal(((await getJson("/__sim/calls")) as { dispatch: number }).dispatch, 8);
			},
		],
		[
			"dispatch takes JSON only (415) and the seed's fields only (400)",
			async () => {
				const body = JSON.stringify({ mandate_id: "mio_ct", tenant_id: "tenant_a", intent: "x" });
				const url = `${sim.url}/api/myndlens/dispatch/mandate`;
				const auth = { authorization: AUTH.authorization };
				const as = (headers: Record<string, string>) =>
					fetch(url, { method: "POST", headers: { ...auth, ...headers }, body });
				// fetch itself labels a string body text/plain: a client that sets no Content-Type sends that.
				await expectError(await as({}), 415, "unsupported_media_type");
				await expectError(await as({ "content-type": "text/plain" }), 415, "unsupported_media_type");
				await expectError(
					await as({ "content-type": "application/x-www-form-urlencoded" }),
					415,
					"unsupported_media_type",
				);
				await expectError(
					await as({ "content-type": "application/json; charset=iso-8859-1" }),
					415,
					"unsupported_media_type",
				);
				assert.equal((await as({ "content-type": "Application/JSON; charset=UTF-8" })).status, 202);
				// Without the token it is a 401 first, whatever the Content-Type.
				const anonymous = await fetch(url, {
					method: "POST",
					headers: { "content-type": "text/plain" },
					body,
				});
				await expectError(anonymous, 401, "unauthorized");
				assert.equal(anonymous.headers.get("www-authenticate"), "Bearer");
				const extra = { mandate_id: "mio_x", tenant_id: "t", intent: "x", session_id: "sess_1" };
				await expectError(await post("/api/myndlens/dispatch/mandate", extra), 400, "invalid_request");
				const nulled = { mandate_id: "mio_x", tenant_id: "t", intent: "x", dimensions: null };
				await expectError(await post("/api/myndlens/dispatch/mandate", nulled), 400, "invalid_request");
				const seed = {
					mandate_id: "mio_seed",
					tenant_id: "tenant_2545f9a0d50d",
					intent: "Send weekly report to team",
					dimensions: { when: "friday", nested: { free: ["form"] } },
					generated_skills: [{ name: "email" }, "anything"],
					delivery_channels: ["email"],
				};
				assert.equal((await post("/api/myndlens/dispatch/mandate", seed)).status, 202);
			},
		],
		[
			"every request to ObeGee's API is recorded with its headers, body and answer",
			async () => {
				const body = { mandate_id: "mio_rec", tenant_id: "tenant_a", intent: "x" };
				const first = await post("/api/myndlens/dispatch/mandate", body, { "idempotency-key": "rec-1" });
				const { execution_id } = DispatchResponse.parse(await first.json());
				await fetch(`${sim.url}/api/myndlens/dispatch/mandate`, {
					method: "POST",
					headers: { authorization: "Bearer wrong", "content-type": "application/json" },
					body: JSON.stringify(body),
				});
				await statusBody(execution_id);
				await post("/__sim/faults", {});
				const { requests } = (await getJson("/__sim/requests?mandate_id=mio_rec")) as {
					requests: {
						method: string;
						path: string;
						headers: Record<string, string>;
						body: string | null;
						idempotency_key: string | null;
						response: { status: number; code: string | null; execution_id: string | null };
					}[];
				};
				assert.deepEqual(
					requests.map((r) => [r.method, r.path, r.response.status, r.response.code]),
					[
						["POST", "/api/myndlens/dispatch/mandate", 202, null],
						["POST", "/api/myndlens/dispatch/mandate", 401, "unauthorized"],
					],
				);
				const [created, refused] = requests as [(typeof requests)[0], (typeof requests)[0]];
				assert.equal(created.headers.authorization, `Bearer ${API_TOKEN}`);
				assert.equal(created.headers["content-type"], "application/json");
				assert.equal(created.headers["idempotency-key"], "rec-1");
				assert.equal(created.idempotency_key, "rec-1");
				assert.equal(created.body, JSON.stringify(body));
				assert.equal(created.response.execution_id, execution_id);
				assert.equal(refused.headers.authorization, "Bearer wrong");
				assert.equal(refused.body, JSON.stringify(body));
				const byExecution = (await getJson(`/__sim/requests?execution_id=${execution_id}`)) as {
					requests: { method: string; body: string | null }[];
				};
				assert.deepEqual(
					byExecution.requests.map((r) => [r.method, r.body]),
					[
						["POST", JSON.stringify(body)],
						["GET", null],
					],
				);
				// The control API is the test's own and is not recorded.
				const all = (await getJson("/__sim/requests")) as { requests: { path: string }[] };
				assert.ok(all.requests.every((r) => r.path.startsWith("/api/")));
			},
		],
		[
			"happy: QUEUED, EXECUTING, COMPLETED with a signed webhook",
			async () => {
				const id = await dispatch({ sim_duration_ms: 1300 }, { delivery_channels: ["email"] });
				assert.equal((await statusBody(id)).status, "QUEUED");
				await new Promise((resolve) => setTimeout(resolve, 1050));
				assert.equal((await statusBody(id)).status, "EXECUTING");
				await waitFor(() => receiver.received.length === 1, 2000, "the webhook");
				const done = await statusBody(id);
				assert.equal(done.status, "COMPLETED");
				assert.equal(done.summary, "Done: Send report");
				assert.deepEqual(done.delivered_to, ["email"]);
				StatusBody.parse(await (await status(id)).json());
				const hook = receiver.received[0];
				assert.ok(hook);
				assert.equal(hook.verified, true);
				WebhookBody.parse(JSON.parse(hook.body));
				assert.match(String(hook.headers["webhook-id"]), /^msg_/);
				const payload = DeliveryWebhook.parse(verify(headerMessage(hook)));
				assert.equal(payload.execution_id, id);
				assert.equal(payload.status, "COMPLETED");
				assert.deepEqual(payload.delivered_to, ["email"]);
				assert.ok(payload.completed_at);
			},
		],
		[
			"invalid tenant answers 422 invalid_tenant and creates nothing",
			async () => {
				const body = { mandate_id: "mio_bad", tenant_id: "tenant_invalid_9", intent: "x" };
				const response = await post("/api/myndlens/dispatch/mandate", body);
				assert.equal(response.status, 422);
				assert.deepEqual(await response.json(), {
					error: { code: "invalid_tenant", message: "Tenant tenant_invalid_9 does not exist" },
				});
				const byScenario = {
					...body,
					tenant_id: "tenant_ok",
					dimensions: { sim_scenario: "invalid_tenant" },
				};
				await expectError(await post("/api/myndlens/dispatch/mandate", byScenario), 422, "invalid_tenant");
				const unknown = { ...body, tenant_id: "tenant_ok", dimensions: { sim_scenario: "nope" } };
				await expectError(await post("/api/myndlens/dispatch/mandate", unknown), 400, "invalid_request");
			},
		],
		[
			"fail: ends FAILED with the seed's fields, the reason in summary and no invented error field",
			async () => {
				const id = await dispatch({ sim_scenario: "fail", sim_duration_ms: 50 });
				await waitFor(() => receiver.received.length === 1, 2000, "the webhook");
				const failed = await statusBody(id);
				assert.equal(failed.status, "FAILED");
				assert.equal(failed.summary, "The agent could not finish the task");
				assert.equal(failed.error, null);
				const raw = JSON.parse(receiver.received[0]?.body ?? "");
				assert.deepEqual(Object.keys(raw), [
					"execution_id",
					"status",
					"delivered_to",
					"summary",
					"completed_at",
				]);
				const payload = WebhookBody.parse(raw);
				assert.equal(payload.status, "FAILED");
				assert.deepEqual(payload.delivered_to, []);
				StatusBody.parse(await (await status(id)).json());
				// The control API's `error` is another name for the reason: it goes out as summary.
				const manual = await dispatch({ sim_scenario: "manual" });
				const done = await post(`/__sim/executions/${manual}/complete`, {
					status: "FAILED",
					error: "Mailbox full",
					send_webhook: false,
				});
				const { webhook } = (await done.json()) as { webhook: { body: string } };
				assert.deepEqual(WebhookBody.parse(JSON.parse(webhook.body)).summary, "Mailbox full");
			},
		],
		[
			"injected faults: status and dispatch errors, then recovery",
			async () => {
				const id = await dispatch({ sim_scenario: "manual" });
				await post("/__sim/faults", { status_errors: 2, dispatch_errors: 1, dispatch_error_code: 500 });
				await expectError(await status(id), 503, "injected_fault");
				await expectError(await status(id), 503, "injected_fault");
				assert.equal((await statusBody(id)).status, "EXECUTING");
				const body = { mandate_id: "mio_fault", tenant_id: "tenant_a", intent: "x" };
				await expectError(await post("/api/myndlens/dispatch/mandate", body), 500, "injected_fault");
				assert.equal((await post("/api/myndlens/dispatch/mandate", body)).status, 202);
				await post("/__sim/faults", { status_delay_ms: 300 });
				const started = Date.now();
				await statusBody(id);
				assert.ok(Date.now() - started >= 280, "status answered without the injected delay");
				const calls = (await getJson("/__sim/calls")) as { status: Record<string, number> };
				assert.equal(calls.status[id], 4);
				await expectError(await post("/__sim/faults", { status_errors: -1 }), 400, "invalid_request");
			},
		],
		[
			"control complete returns a verifiable webhook and can skip delivery",
			async () => {
				const id = await dispatch({ sim_scenario: "manual" });
				assert.equal((await statusBody(id)).status, "EXECUTING");
				const response = await post(`/__sim/executions/${id}/complete`, {
					status: "COMPLETED",
					summary: "All sent",
					send_webhook: false,
				});
				assert.equal(response.status, 200);
				const { execution_id, webhook } = (await response.json()) as {
					execution_id: string;
					webhook: { id: string; timestamp: string; signature: string; body: string };
				};
				assert.equal(execution_id, id);
				const payload = DeliveryWebhook.parse(verify(webhook));
				assert.equal(payload.summary, "All sent");
				assert.equal((await statusBody(id)).status, "COMPLETED");
				await new Promise((resolve) => setTimeout(resolve, 150));
				assert.equal(receiver.received.length, 0);
				await post(`/__sim/executions/${id}/complete`, { status: "FAILED" });
				await waitFor(() => receiver.received.length === 1, 2000, "the webhook");
				assert.equal(
					DeliveryWebhook.parse(verify(headerMessage(receiver.received[0] as Received))).status,
					"FAILED",
				);
				await expectError(await post("/__sim/executions/exec_nope/complete", { status: "COMPLETED" }), 404);
				await expectError(await post(`/__sim/executions/${id}/complete`, { status: "DONE" }), 400);
			},
		],
		[
			"duplicate_webhook delivers the same id and body twice; early_webhook comes first",
			async () => {
				await dispatch({ sim_scenario: "duplicate_webhook", sim_duration_ms: 50 });
				await waitFor(() => receiver.received.length === 2, 2000, "two webhooks");
				const [first, second] = receiver.received as [Received, Received];
				assert.equal(first.headers["webhook-id"], second.headers["webhook-id"]);
				assert.equal(first.body, second.body);
				receiver.received.length = 0;
				const early = await dispatch({ sim_scenario: "early_webhook" });
				await waitFor(() => receiver.received.length === 1, 1000, "the early webhook");
				assert.equal(DeliveryWebhook.parse(JSON.parse(receiver.received[0]?.body ?? "")).execution_id, early);
				assert.equal((await statusBody(early)).status, "COMPLETED");
			},
		],
		[
			"no_webhook completes silently; failed deliveries are retried, 400 is not",
			async () => {
				const silent = await dispatch({ sim_scenario: "no_webhook", sim_duration_ms: 30 });
				await new Promise((resolve) => setTimeout(resolve, 200));
				assert.equal((await statusBody(silent)).status, "COMPLETED");
				assert.equal(receiver.received.length, 0);
				receiver.answers.push(500, 200);
				const retried = await dispatch({ sim_duration_ms: 10 });
				await waitFor(() => receiver.received.length === 2, 3000, "the retried webhook");
				receiver.answers.push(400);
				const rejected = await dispatch({ sim_duration_ms: 10 });
				await waitFor(() => receiver.received.length === 3, 1000, "the rejected webhook");
				await new Promise((resolve) => setTimeout(resolve, 1200));
				assert.equal(receiver.received.length, 3, "a 400 answer must not be retried");
				const calls = (await getJson("/__sim/calls")) as {
					webhooks: { execution_id: string; status: string; http_status: number | null }[];
				};
				const summary = calls.webhooks.map((w) => [w.execution_id, w.http_status]);
				assert.deepEqual(summary, [
					[retried, 500],
					[retried, 200],
					[rejected, 400],
				]);
			},
		],
		[
			"webhook retries: each attempt is signed anew under the same webhook-id, and verifies",
			async () => {
				receiver.answers.push(503, 503);
				const id = await dispatch({ sim_duration_ms: 10, sim_webhook_retry_ms: [1000, 1000] });
				await waitFor(() => receiver.received.length === 3, 4000, "three attempts");
				const [a, b, c] = receiver.received.map(headerMessage) as [
					SignedMessage,
					SignedMessage,
					SignedMessage,
				];
				assert.ok(
					receiver.received.every((r) => r.verified),
					"every attempt verifies",
				);
				assert.equal(new Set([a.id, b.id, c.id]).size, 1, "one webhook-id");
				assert.equal(new Set([a.body, b.body, c.body]).size, 1, "one body");
				assert.ok(Number(a.timestamp) < Number(b.timestamp) && Number(b.timestamp) < Number(c.timestamp));
				assert.equal(new Set([a.signature, b.signature, c.signature]).size, 3, "a signature per attempt");
				const calls = (await getJson("/__sim/calls")) as {
					webhooks: { execution_id: string; http_status: number; timestamp: string; attempt: number }[];
				};
				assert.deepEqual(
					calls.webhooks.map((w) => [w.execution_id, w.attempt, w.http_status, w.timestamp]),
					[
						[id, 1, 503, a.timestamp],
						[id, 2, 503, b.timestamp],
						[id, 3, 200, c.timestamp],
					],
				);
			},
		],
		[
			"webhook retry schedule is configurable; 404/409/429 are retried, other 4xx are not",
			async () => {
				const quick = await startObeGeeSim({
					apiToken: API_TOKEN,
					webhookSecret: SECRET,
					webhookUrl: receiver.url,
					webhookRetryDelaysMs: [30, 30],
				});
				try {
					const send = async (mandate_id: string) => {
						const response = await fetch(`${quick.url}/api/myndlens/dispatch/mandate`, {
							method: "POST",
							headers: AUTH,
							body: JSON.stringify({
								mandate_id,
								tenant_id: "tenant_a",
								intent: "x",
								dimensions: { sim_duration_ms: 10 },
							}),
						});
						assert.equal(response.status, 202);
					};
					receiver.answers.push(500, 404, 500);
					await send("mio_quick_1");
					await waitFor(() => receiver.received.length === 3, 1000, "three attempts");
					await new Promise((resolve) => setTimeout(resolve, 200));
					assert.equal(receiver.received.length, 3, "gives up after its last retry");
					receiver.answers.push(410);
					await send("mio_quick_2");
					await waitFor(() => receiver.received.length === 4, 1000, "the refused attempt");
					await new Promise((resolve) => setTimeout(resolve, 200));
					assert.equal(receiver.received.length, 4, "a 410 is final");
				} finally {
					await quick.close();
				}
			},
		],
		[
			"relay: a test carries each attempt to the receiver and its answer back",
			async () => {
				const id = await dispatch({
					sim_scenario: "manual",
					sim_webhook: "relay",
					sim_webhook_retry_ms: [0],
				});
				assert.deepEqual(await getJson(`/__sim/relay?execution_id=${id}`), { attempt: null });
				await post(`/__sim/executions/${id}/complete`, { status: "COMPLETED" });
				type Relayed = { relay_id: string; headers: Record<string, string>; body: string };
				const take = async () =>
					((await getJson(`/__sim/relay?execution_id=${id}&wait_ms=2000`)) as { attempt: Relayed }).attempt;
				const first = await take();
				assert.equal(receiver.received.length, 0, "a relayed webhook never goes to the URL");
				verify({
					id: first.headers["webhook-id"] ?? "",
					timestamp: first.headers["webhook-timestamp"] ?? "",
					signature: first.headers["webhook-signature"] ?? "",
					body: first.body,
				});
				assert.equal(first.headers["content-type"], "application/json");
				assert.equal((await post(`/__sim/relay/${first.relay_id}`, { http_status: 502 })).status, 200);
				const second = await take();
				assert.equal(second.headers["webhook-id"], first.headers["webhook-id"]);
				await post(`/__sim/relay/${second.relay_id}`, { http_status: 200 });
				await expectError(await post(`/__sim/relay/${second.relay_id}`, { http_status: 200 }), 404);
				const calls = (await getJson("/__sim/calls")) as {
					webhooks: { http_status: number; target: string }[];
				};
				assert.deepEqual(
					calls.webhooks.map((w) => [w.target, w.http_status]),
					[
						["relay", 502],
						["relay", 200],
					],
				);
			},
		],
		[
			"flaky: status calls 2-4 answer 503 and call 5 hangs",
			async () => {
				const id = await dispatch({ sim_scenario: "flaky", sim_duration_ms: 60_000 });
				assert.equal((await status(id)).status, 200);
				for (let call = 2; call <= 4; call++) await expectError(await status(id), 503);
				await assert.rejects(status(id, AbortSignal.timeout(300)), /abort|timeout/i);
				assert.equal((await status(id)).status, 200);
			},
		],
		[
			"default scenario and reset",
			async () => {
				await expectError(
					await post("/__sim/default-scenario", { scenario: "bogus" }),
					400,
					"invalid_request",
				);
				assert.equal((await post("/__sim/default-scenario", { scenario: "manual" })).status, 200);
				const id = await dispatch();
				assert.equal((await statusBody(id)).status, "EXECUTING");
				assert.equal((await post("/__sim/reset", {})).status, 200);
				await expectError(await status(id), 404, "not_found");
				assert.deepEqual(await getJson("/__sim/calls"), { dispatch: 0, status: { [id]: 1 }, webhooks: [] });
				const fresh = await dispatch({ sim_duration_ms: 5000 });
				assert.equal((await statusBody(fresh)).status, "QUEUED", "reset must restore the happy default");
			},
		],
	];

	/** A second simulator whose agent hook records the runs it is asked to start. */
	const withAgent = async (
		check: (agentSim: ObeGeeSim, runs: { script: RunScript; at: number }[]) => Promise<void>,
	) => {
		const runs: { script: RunScript; at: number }[] = [];
		const agentSim = await startObeGeeSim({
			apiToken: API_TOKEN,
			webhookSecret: SECRET,
			agent: {
				run: async (script) => {
					runs.push({ script, at: Date.now() });
				},
			},
		});
		try {
			await check(agentSim, runs);
		} finally {
			await agentSim.close();
		}
	};
	const dispatchTo = async (target: ObeGeeSim, dimensions: Record<string, unknown>, tenant = "tenant_a") => {
		const body = {
			mandate_id: `mio_agent_${++mandateCounter}`,
			tenant_id: tenant,
			intent: "Send report",
			dimensions,
		};
		const response = await fetch(`${target.url}/api/myndlens/dispatch/mandate`, {
			method: "POST",
			headers: AUTH,
			body: JSON.stringify(body),
		});
		return { status: response.status, body: (await response.json()) as { execution_id?: string } };
	};

	tests.push(
		[
			"agent hook: a paced gateway run with runId = execution id, ending before COMPLETED",
			async () => {
				await withAgent(async (agentSim, runs) => {
					const started = Date.now();
					const { body } = await dispatchTo(agentSim, { sim_duration_ms: 2000 });
					await waitFor(() => runs.length === 1, 2000, "the agent run");
					const [run] = runs;
					assert.ok(run);
					assert.equal(run.script.runId, body.execution_id);
					assert.equal(run.script.answer, agentAnswer("Send report"));
					assert.deepEqual(run.script.tools, [{ name: "read", title: "Read from REPORT.md" }]);
					assert.equal(run.script.dropMidRun, undefined);
					assert.equal(run.script.lifecycleError, undefined);
					// Starts at 15 % of the run (capped at 1 s) and is paced to end by 70 %.
					assert.ok(run.at - started >= 280, `started after ${run.at - started} ms`);
					const endsAt = 300 + scriptEvents(run.script) * (run.script.paceMs ?? 0);
					assert.ok(endsAt <= 1400, `the run would end at ${endsAt} ms`);
					assert.ok((run.script.paceMs ?? 0) > 5, `pace ${run.script.paceMs}`);
				});
			},
		],
		[
			"agent hook: gateway_drop and agent_error script the fault and still end COMPLETED",
			async () => {
				await withAgent(async (agentSim, runs) => {
					const drop = await dispatchTo(agentSim, { sim_scenario: "gateway_drop", sim_duration_ms: 800 });
					const error = await dispatchTo(agentSim, { sim_scenario: "agent_error", sim_duration_ms: 800 });
					await waitFor(() => runs.length === 2, 2000, "two agent runs");
					const byId = new Map(runs.map((run) => [run.script.runId, run.script]));
					assert.equal(byId.get(drop.body.execution_id ?? "")?.dropMidRun, true);
					assert.equal(byId.get(error.body.execution_id ?? "")?.lifecycleError, true);
					await new Promise((resolve) => setTimeout(resolve, 900));
					for (const id of [drop.body.execution_id, error.body.execution_id]) {
						const response = await fetch(`${agentSim.url}/api/myndlens/dispatch/status/${id}`, {
							headers: AUTH,
						});
						assert.equal(ExecutionStatus.parse(await response.json()).status, "COMPLETED");
					}
				});
			},
		],
		[
			"agent hook: no run for invalid_tenant, fail, too-short runs, or manual unless asked",
			async () => {
				await withAgent(async (agentSim, runs) => {
					assert.equal((await dispatchTo(agentSim, {}, "tenant_invalid_1")).status, 422);
					await dispatchTo(agentSim, { sim_scenario: "fail", sim_duration_ms: 600 });
					await dispatchTo(agentSim, { sim_scenario: "early_webhook" });
					await dispatchTo(agentSim, { sim_scenario: "manual" });
					await dispatchTo(agentSim, { sim_duration_ms: 600, sim_agent: false });
					const asked = await dispatchTo(agentSim, { sim_scenario: "manual", sim_agent: true });
					await new Promise((resolve) => setTimeout(resolve, 1300));
					assert.deepEqual(
						runs.map((run) => run.script.runId),
						[asked.body.execution_id],
					);
					// Reset cancels a run that has not started yet.
					await dispatchTo(agentSim, { sim_duration_ms: 5000 });
					await fetch(`${agentSim.url}/__sim/reset`, { method: "POST" });
					await new Promise((resolve) => setTimeout(resolve, 900));
					assert.equal(runs.length, 1);
				});
			},
		],
		[
			"gatewayAgent: a run waits until the Worker is connected and keeps its planned end",
			async () => {
				let open = 0;
				const ran: RunScript[] = [];
				const agent = gatewayAgent({
					stats: () => ({ open }) as ReturnType<GatewaySim["stats"]>,
					run: async (script) => {
						ran.push(script);
						return { events: 0 };
					},
				});
				const script: RunScript = { runId: "exec_w", answer: "x".repeat(90), paceMs: 100 };
				setTimeout(() => {
					open = 1;
				}, 400);
				const started = Date.now();
				await agent.run(script);
				assert.ok(Date.now() - started >= 380, "did not wait for the connection");
				const paced = ran[0]?.paceMs ?? 0;
				const planned = scriptEvents(script) * 100;
				assert.ok(paced < 100 && paced * scriptEvents(script) <= planned - 380, `pace ${paced}`);
				await agent.run(script);
				assert.equal(ran[1]?.paceMs, 100, "with a client connected a run starts at once, unchanged");
			},
		],
		[
			"agent pacing: slow streams slowly, and the event count matches the gateway simulator's",
			async () => {
				const mandate = { mandate_id: "m", tenant_id: "t", intent: "Plan a weekend trip" };
				const happy = agentPlan("exec_h", mandate, "happy", 6000);
				const slow = agentPlan("exec_s", mandate, "slow", 45_000);
				assert.ok(happy && slow);
				assert.ok((slow.script.paceMs ?? 0) >= 5 * (happy.script.paceMs ?? 0), "slow paces slower");
				const gateway = await startGatewaySim({ token: "t", log: () => {} });
				try {
					for (const extra of [{}, { lifecycleError: true }]) {
						const script: RunScript = { ...happy.script, ...extra, paceMs: 1 };
						const { events } = await gateway.run(script);
						assert.equal(events, scriptEvents(script), `events of ${JSON.stringify(extra)}`);
					}
				} finally {
					await gateway.close();
				}
			},
		],
	);

	tests.push([
		"gateway: chat deltas are throttled as server-chat.ts throttles them (a clock of our own)",
		async () => {
			let now = 1_000;
			const chat = new ChatDeltaThrottle(() => now);
			// The first goes at once.
			assert.deepEqual(chat.next("The"), { text: "The", deltaText: "The", at: 1_000 });
			// Inside the window nothing goes; the text is held.
			now += CHAT_DELTA_THROTTLE_MS - 1;
			assert.equal(chat.next("The weekly"), null);
			// At the window's end the held text goes as one delta.
			now += 1;
			assert.deepEqual(chat.next("The weekly report"), {
				text: "The weekly report",
				deltaText: " weekly report",
				at: 1_150,
			});
			// Nothing held: the end flushes nothing.
			assert.equal(chat.flush(), null);
			now += 10;
			assert.equal(chat.next("The weekly report was"), null);
			// The end flushes what is held, inside the window too, and only once.
			assert.deepEqual(chat.flush(), { text: "The weekly report was", deltaText: " was", at: 1_160 });
			assert.equal(chat.flush(), null);
		},
	]);

	tests.push([
		"gateway: the simulator's own verifier accepts the known-answer signature vector, and only it",
		async () => {
			// The vector of test/gateway-sim-strictness.test.ts (seed 0x00…0x1f, the recorded run's challenge).
			const payload = deviceAuthPayloadV3({
				deviceId: "56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c",
				clientId: "gateway-client",
				clientMode: "backend",
				role: "operator",
				scopes: ["operator.read", "operator.write"],
				signedAtMs: 1795519235076,
				token: "gw-token-1",
				nonce: "89e7aea9-8b79-4715-86cf-da7d65840c64",
				platform: "cloudflare-workers",
				deviceFamily: "",
			});
			const publicKey = "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg";
			const signature =
				"VafbaYSw7JTZqwzwB3dNAr51XqEL8b-TtGBkmxeihyjlJKRQL5PKkeB3NYqU59JD9auFGc-RY2KwysBIm7tABQ";
			assert.equal(verifyEd25519(publicKey, payload, signature), true);
			assert.equal(verifyEd25519(publicKey, payload.replace("gw-token-1", ""), signature), false);
		},
	]);

	let passed = 0;
	let failed = 0;
	for (const [name, run] of tests) {
		await post("/__sim/reset", {});
		receiver.received.length = 0;
		receiver.answers.length = 0;
		try {
			await run();
			passed++;
			console.log(`ok - ${name}`);
		} catch (error) {
			failed++;
			console.log(`FAIL - ${name}\n  ${error instanceof Error ? error.message : String(error)}`);
		}
	}
	await sim.close();
	receiver.close();
	console.log(`${passed} passed, ${failed} failed`);
	process.exitCode = failed === 0 ? 0 : 1;
}

await main();
