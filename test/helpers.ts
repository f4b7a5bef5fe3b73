import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, expect } from "vitest";
import { mintMobileToken } from "../src/auth/mobile-token.ts";
import { ServerFrame, type SnapshotFrame } from "../src/protocol/frames.ts";
import { TEST_SECRETS } from "./secrets.ts";

/** Shared test helpers: call the Worker, open phones, drive the simulator and the alarm. */

export const SERVICE = { Authorization: `Bearer ${TEST_SECRETS.SERVICE_TOKEN}` };
export const ADMIN = { Authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` };

export function uniqueId(prefix: string): string {
	return `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
}

export function api(path: string, init: RequestInit = {}): Promise<Response> {
	return exports.default.fetch(new Request(`https://progress.test${path}`, init));
}

export function postJson(
	path: string,
	body: unknown,
	headers: Record<string, string> = SERVICE,
): Promise<Response> {
	return api(path, {
		method: "POST",
		headers: { "Content-Type": "application/json", ...headers },
		body: typeof body === "string" ? body : JSON.stringify(body),
	});
}

/** A valid mobile token for a session (1 h); `expiresIn` is an absolute `exp` (seconds since the epoch). */
export function mobileToken(
	sid: string,
	options: { expiresIn?: number; tenantId?: string; secret?: string; sub?: string } = {},
): Promise<string> {
	return mintMobileToken(options.secret ?? TEST_SECRETS.SESSION_TOKEN_SECRET, {
		sid,
		sub: options.sub ?? "user_1",
		tenantId: options.tenantId,
		...(options.expiresIn === undefined ? {} : { expiresAt: options.expiresIn }),
	});
}

export function mandateBody(sessionId: string, overrides: Record<string, unknown> = {}) {
	return {
		session_id: sessionId,
		mandate_id: uniqueId("mio"),
		tenant_id: "tenant_2545f9a0d50d",
		intent: "Send weekly report to team",
		dimensions: { sim_scenario: "manual" },
		generated_skills: [],
		delivery_channels: ["email"],
		...overrides,
	};
}

export async function execute(body: ReturnType<typeof mandateBody>) {
	const response = await postJson("/api/mandate/execute", body);
	return { response, json: (await response.json()) as Record<string, unknown> & { execution_id: string } };
}

export function reportStage(sessionId: string, mandateId: string, stage: number, status = "completed") {
	return postJson(`/api/sessions/${sessionId}/stages`, { mandate_id: mandateId, stage, status });
}

export function sessionStub(sessionId: string) {
	return env.SESSION.getByName(sessionId);
}

/** Fires the session's alarm now (time is driven, not waited for). */
export function runAlarm(sessionId: string): Promise<boolean> {
	return runDurableObjectAlarm(sessionStub(sessionId));
}

/**
 * Fires the session's alarm as if the clock read `at` (time is driven, not waited for): the alarm acts
 * as of the time it was armed for, so arming it for `at` jumps the session's clock there.
 */
export async function runAlarmAt(sessionId: string, at: number): Promise<boolean> {
	await runInDurableObject(sessionStub(sessionId), (_instance, state) => {
		state.storage.sql.exec(
			"INSERT INTO ml_meta (key, value) VALUES ('alarm_at', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
			String(at),
		);
	});
	return runAlarm(sessionId);
}

/**
 * Runs the session's alarm until it has polled ObeGee for `mandateId` once: alarms in between may be
 * a sign of life (every 10 s) or another job, not a poll. A poll always moves `next_poll_at`.
 */
export async function runAlarmUntilPolled(sessionId: string, mandateId: string, maxRuns = 8): Promise<void> {
	const nextPoll = () =>
		runInDurableObject(sessionStub(sessionId), (_instance, state) =>
			state.storage.sql
				.exec<{ next_poll_at: number | null }>(
					"SELECT next_poll_at FROM ml_mandates WHERE mandate_id = ?",
					mandateId,
				)
				.one(),
		);
	const before = (await nextPoll()).next_poll_at;
	for (let run = 0; run < maxRuns; run++) {
		await runAlarm(sessionId);
		if ((await nextPoll()).next_poll_at !== before) return;
	}
	throw new Error(`no poll of ${mandateId} in ${maxRuns} alarm runs`);
}

// ── The simulated ObeGee ────────────────────────────────────────────────────────────────────────

export async function sim(path: string, body?: unknown): Promise<Response> {
	return fetch(`${env.SIM_URL}${path}`, {
		method: body === undefined ? "GET" : "POST",
		headers: { "Content-Type": "application/json" },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
}

export interface SignedWebhook {
	id: string;
	timestamp: string;
	signature: string;
	body: string;
}

/** Makes the simulator finish an execution and returns the webhook it signed (without sending it). */
export async function simComplete(
	executionId: string,
	outcome: { status: "COMPLETED" | "FAILED"; summary?: string; error?: string } = { status: "COMPLETED" },
): Promise<SignedWebhook> {
	const response = await sim(`/__sim/executions/${executionId}/complete`, {
		...outcome,
		send_webhook: false,
	});
	expect(response.status).toBe(200);
	return ((await response.json()) as { webhook: SignedWebhook }).webhook;
}

export function deliverWebhook(webhook: SignedWebhook, overrides: Partial<Record<string, string>> = {}) {
	return api("/api/dispatch/delivery-webhook", {
		method: "POST",
		headers: {
			"Content-Type": "application/json",
			"webhook-id": webhook.id,
			"webhook-timestamp": webhook.timestamp,
			"webhook-signature": webhook.signature,
			...overrides,
		},
		body: webhook.body,
	});
}

export async function simCalls(): Promise<{ dispatch: number; status: Record<string, number> }> {
	return (await (await sim("/__sim/calls")).json()) as { dispatch: number; status: Record<string, number> };
}

/** A request to ObeGee's API as the simulator received it, and how it answered (sim/obegee.ts). */
export interface SimRecordedRequest {
	seq: number;
	method: string;
	path: string;
	headers: Record<string, string>;
	body: string | null;
	mandate_id: string | null;
	execution_id: string | null;
	idempotency_key: string | null;
	response: { status: number; code: string | null; execution_id: string | null };
}

/** The requests ObeGee received, oldest first, filtered (by `mandate_id`, `execution_id`, `method`…). */
export async function simRequests(filter: Record<string, string>): Promise<SimRecordedRequest[]> {
	const response = await sim(`/__sim/requests?${new URLSearchParams(filter)}`);
	expect(response.status).toBe(200);
	return ((await response.json()) as { requests: SimRecordedRequest[] }).requests;
}

/** One webhook attempt the simulator signed for a `sim_webhook: "relay"` mandate, waiting to be carried. */
export interface RelayedWebhook {
	relay_id: string;
	execution_id: string;
	path: string;
	headers: Record<string, string>;
	body: string;
}

/**
 * The next webhook attempt the simulator made for an execution: the test's Worker listens on no port
 * the simulator could reach, so the simulator hands its attempts to the test, which carries them.
 */
export async function takeRelayedWebhook(executionId: string, waitMs = 5_000): Promise<RelayedWebhook> {
	const query = new URLSearchParams({ execution_id: executionId, wait_ms: String(waitMs) });
	const { attempt } = (await (await sim(`/__sim/relay?${query}`)).json()) as {
		attempt: RelayedWebhook | null;
	};
	if (!attempt) throw new Error(`the simulator made no webhook attempt for ${executionId} in ${waitMs} ms`);
	return attempt;
}

/** Tells the simulator how a relayed attempt was answered (null: as if the network failed). */
export async function answerRelayed(attempt: RelayedWebhook, httpStatus: number | null): Promise<void> {
	const response = await sim(`/__sim/relay/${attempt.relay_id}`, { http_status: httpStatus });
	expect(response.status).toBe(200);
}

/** Carries a relayed attempt to the Worker exactly as the simulator made it, and its answer back. */
export async function relayToWorker(attempt: RelayedWebhook): Promise<Response> {
	const response = await api(attempt.path, { method: "POST", headers: attempt.headers, body: attempt.body });
	await answerRelayed(attempt, response.status);
	return response;
}

// ── Phones ──────────────────────────────────────────────────────────────────────────────────────

export type Frame = ServerFrame & Record<string, unknown>;

/** A connected phone that records every frame and can wait for one (rejecting after a timeout). */
export class Phone {
	readonly frames: Frame[] = [];
	closed: { code: number; reason: string } | null = null;
	#waiters: Array<() => void> = [];

	readonly socket: WebSocket;

	constructor(socket: WebSocket) {
		this.socket = socket;
		socket.addEventListener("message", (event) => {
			const frame = JSON.parse(String(event.data)) as Frame;
			expect(ServerFrame.safeParse(frame).success, `frame matches the wire schema: ${event.data}`).toBe(true);
			this.frames.push(frame);
			this.#wake();
		});
		socket.addEventListener("close", (event) => {
			this.closed = { code: event.code, reason: event.reason };
			this.#wake();
		});
	}

	#wake() {
		for (const waiter of this.#waiters.splice(0)) waiter();
	}

	async waitFor(predicate: (frame: Frame) => boolean, what: string, timeoutMs = 3_000): Promise<Frame> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const found = this.frames.find(predicate);
			if (found) return found;
			if (this.closed) throw new Error(`socket closed while waiting for ${what}`);
			const left = deadline - Date.now();
			if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.frames)}`);
			await new Promise<void>((resolve) => {
				const timer = setTimeout(resolve, left);
				this.#waiters.push(() => {
					clearTimeout(timer);
					resolve();
				});
			});
		}
	}

	waitForStage(mandateId: string, stage: number, status: string): Promise<Frame> {
		return this.waitFor(
			(f) => f.event === "pipeline_stage" && isStage(f, mandateId, stage, status),
			`stage ${stage} ${status} of ${mandateId}`,
		);
	}

	/** Waits until nothing new arrives for a moment (to prove something was NOT sent). */
	async settle(quietMs = 100): Promise<void> {
		let count = -1;
		while (count !== this.frames.length) {
			count = this.frames.length;
			await new Promise((resolve) => setTimeout(resolve, quietMs));
		}
	}

	stages(mandateId: string): Array<{ stage: number; status: string; message?: string }> {
		return this.frames
			.filter(
				(f) => f.event === "pipeline_stage" && (f.data as { mandate_id: string }).mandate_id === mandateId,
			)
			.map((f) => f.data as { stage: number; status: string; message?: string });
	}

	seqs(): number[] {
		return this.frames.filter((f) => f.type !== "pong").map((f) => f.seq as number);
	}

	snapshot(): SnapshotFrame {
		const snapshot = this.frames.find((f) => f.type === "snapshot");
		if (!snapshot) throw new Error("no snapshot received");
		return snapshot as unknown as SnapshotFrame;
	}

	close() {
		if (!this.closed) this.socket.close(1000, "test done");
	}
}

function isStage(frame: Frame, mandateId: string, stage: number, status: string): boolean {
	const data = frame.data as { mandate_id: string; stage: number; status: string };
	return data.mandate_id === mandateId && data.stage === stage && data.status === status;
}

export async function connectResponse(sessionId: string, query = "", headers: Record<string, string> = {}) {
	return api(`/api/sessions/${sessionId}/ws${query}`, { headers: { Upgrade: "websocket", ...headers } });
}

/**
 * The close a refused upgrade ends in: the Worker accepts a socket with a bad token and closes it at
 * once (4401/4403), since a phone never sees the status of a refused upgrade (issue 14).
 */
export async function refusal(response: Response): Promise<{ code: number; reason: string }> {
	expect(response.status).toBe(101);
	const socket = response.webSocket;
	if (!socket) throw new Error("no websocket in the upgrade response");
	const closed = new Promise<{ code: number; reason: string }>((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error("the refused socket was never closed")), 5_000);
		socket.addEventListener("close", (event) => {
			clearTimeout(timer);
			resolve({ code: event.code, reason: event.reason });
		});
	});
	socket.accept();
	return closed;
}

export async function connectPhone(
	sessionId: string,
	options: { since?: number; token?: string } = {},
): Promise<Phone> {
	const token = options.token ?? (await mobileToken(sessionId));
	const query = options.since === undefined ? "" : `?since=${options.since}`;
	const response = await connectResponse(sessionId, query, { Authorization: `Bearer ${token}` });
	expect(response.status).toBe(101);
	const socket = response.webSocket;
	if (!socket) throw new Error("no websocket in the upgrade response");
	const phone = new Phone(socket);
	socket.accept();
	return phone;
}

/**
 * Waits until the session's audit outbox has been copied to D1 (or a copy failed and waits for its
 * retry) and its outcomes' pushes have fanned out: both run off the caller's path (issues 16 and 10),
 * so a test that reads D1 or the alarm waits for them.
 */
export async function auditSettled(sessionId: string, timeoutMs = 3_000): Promise<{ pending: number }> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const state = await runInDurableObject(sessionStub(sessionId), (_instance, storage) => ({
			pending: storage.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM ml_outbox").one().n,
			failed:
				storage.storage.sql.exec("SELECT 1 FROM ml_meta WHERE key = 'outbox_retry_at'").toArray().length > 0,
			// An outcome's push fans out to the owner's devices off the caller's path too (issue 10).
			fanningOut:
				storage.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'ml_push'").toArray().length > 0 &&
				storage.storage.sql.exec("SELECT 1 FROM ml_push WHERE target IS NULL").toArray().length > 0,
		}));
		if ((state.pending === 0 || state.failed) && !state.fanningOut) return { pending: state.pending };
		if (Date.now() > deadline)
			throw new Error(`audit outbox of ${sessionId} never settled (${state.pending} rows)`);
		await new Promise((resolve) => setTimeout(resolve, 10));
	}
}

/** When the earliest phone token of a session expires: the alarm closes its socket then (issue 14). */
export function phoneTokenExpiry(sessionId: string): Promise<number | null> {
	return runInDurableObject(sessionStub(sessionId), (_instance, state) => {
		const row = state.storage.sql
			.exec<{ value: string }>("SELECT value FROM ml_meta WHERE key = 'sockets_expire_at'")
			.toArray()[0];
		return row ? Number(row.value) : null;
	});
}

export async function progressOf(sessionId: string): Promise<SnapshotFrame> {
	const response = await api(`/api/sessions/${sessionId}/progress`, { headers: SERVICE });
	expect(response.status).toBe(200);
	return (await response.json()) as SnapshotFrame;
}

/** Phones a test opens; every one is closed after each test of the file. */
export function phonesClosedAfterEach(): Phone[] {
	const phones: Phone[] = [];
	afterEach(() => {
		for (const phone of phones.splice(0)) phone.close();
	});
	return phones;
}

/** A fresh session with one phone watching a mandate that ObeGee is running (stage 9 active). */
export async function runningMandate(phones: Phone[], overrides: Record<string, unknown> = {}) {
	const sessionId = uniqueId("sess");
	const phone = await connectPhone(sessionId);
	phones.push(phone);
	const body = mandateBody(sessionId, overrides);
	const { json } = await execute(body);
	await phone.waitForStage(body.mandate_id, 9, "active");
	return { sessionId, phone, body, executionId: json.execution_id, stub: sessionStub(sessionId) };
}
