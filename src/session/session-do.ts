import { DurableObject } from "cloudflare:workers";
import { timing } from "../config.ts";
import type { Env } from "../env.ts";
import { ObeGeeClient } from "../obegee/client.ts";
import {
	type AgentUpdate,
	type AgentUpdateSink,
	coalesceChunks,
	type GatewayWatcher,
} from "../openclaw/contract.ts";
import {
	backoffDelay,
	HEARTBEAT_INTERVAL_MS,
	POLL_BACKOFF_CAP_MS,
	STREAM_QUIET_MS,
	streamingPollInterval,
} from "../pipeline/backoff.ts";
import { dispatchFailure, executionFailedMessage, timeoutMessage } from "../pipeline/messages.ts";
import { nextProgress, PROGRESS, stillWorkingStatus, subStatusForRemote } from "../pipeline/progress.ts";
import {
	emptyBoard,
	isFinished,
	planLateSuccess,
	planStageMove,
	type StageBoard,
	type StageChange,
} from "../pipeline/stage-machine.ts";
import { type StageNumber, stageName } from "../pipeline/stages.ts";
import type { ExecuteRequest, ExecuteResponse, StageReport } from "../protocol/api.ts";
import { ClientFrame, type SnapshotFrame } from "../protocol/frames.ts";
import { type DeliveryWebhook, type ExecutionStatus, isTerminalStatus } from "../protocol/obegee.ts";
import { EventLog, type UnsequencedFrame } from "./event-log.ts";
import { type ExecutionResult, type MandateRecord, MandateStore } from "./mandate-store.ts";
import { SessionMetrics } from "./metrics.ts";
import { Outbox, type OutboxRecord } from "./outbox.ts";
import { Meta, migrate } from "./schema.ts";

/** What an RPC call answers: a value, or an error the Worker turns into an HTTP error as is. */
export type RpcResult<T> = { ok: true; value: T } | { ok: false; error: RpcError };
export interface RpcError {
	status: number;
	code: string;
	message: string;
}

export interface StageReportResult {
	mandate_id: string;
	stage: number;
	status: string;
	changed: boolean;
}

/** How a delivery webhook was taken: the HTTP answer is 2xx for all but an unknown execution. */
export type WebhookOutcome = "applied" | "late_success" | "already_final" | "duplicate" | "recorded";

/** Details shown on a stage's frame when it changes. */
interface StageDetails {
	message?: string;
	summary?: string;
	delivered_to?: string[];
}

/** An ObeGee outcome, whether it came from a poll or a webhook. */
type Outcome = Pick<ExecutionStatus, "status" | "summary" | "error" | "delivered_to" | "completed_at">;

/** Phones only ever send pings; these limits leave ample room for that and none for abuse (issue 4). */
const MAX_CLIENT_FRAME_BYTES = 4_096;
const MAX_FRAMES_PER_WINDOW = 20;
const RATE_WINDOW_MS = 10_000;
const MAX_SOCKETS_PER_SESSION = 20;

/** Kept on each socket across hibernation (small by design: the runtime caps attachments at 16 KiB). */
interface SocketAttachment {
	sub: string;
	connected_at: number;
	window_start: number;
	frames: number;
}
const WEBHOOK_DEDUP_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

const ok = <T>(value: T): RpcResult<T> => ({ ok: true, value });
const fail = (status: number, code: string, message: string): RpcResult<never> => ({
	ok: false,
	error: { status, code, message },
});

/**
 * One session: its phones' hibernatable WebSockets, every mandate's stage machine, the event log
 * phones resume from, the polling schedule (one alarm for all running executions), timeouts and the
 * D1 outbox (DESIGN.md, "Parts and their rooms"). All state lives in SQLite, so the object can be
 * evicted at any moment between two events and lose nothing; there are no timers, only the alarm.
 */
export class SessionDO extends DurableObject<Env> implements AgentUpdateSink {
	readonly #meta: Meta;
	readonly #log: EventLog;
	readonly #mandates: MandateStore;
	readonly #outbox: Outbox;
	readonly #metrics = new SessionMetrics();
	/** Dispatches in flight, so a concurrent duplicate `execute` waits for the first instead of racing it. */
	readonly #dispatches = new Map<string, Promise<RpcResult<ExecuteResponse>>>();

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		const sql = this.#metrics.counting(ctx.storage.sql);
		migrate(sql);
		this.#meta = new Meta(sql);
		this.#log = new EventLog(sql);
		this.#mandates = new MandateStore(sql);
		this.#outbox = new Outbox(sql, this.#meta, (statements, rows) => this.#metrics.d1Batch(statements, rows));
		// Answered by the runtime without waking the object (DESIGN.md: ping/pong by auto-response).
		ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
	}

	// ── Phones ──────────────────────────────────────────────────────────────────────────────────

	/**
	 * A phone's WebSocket, already authenticated by the Worker. A fresh connection gets a snapshot;
	 * `since` replays the log after that seq, or falls back to a snapshot when the log no longer
	 * reaches back. Catch-up and accept happen in one synchronous turn, so no live event can slip
	 * between them (DESIGN.md, "Mobile wire format").
	 */
	override async fetch(request: Request): Promise<Response> {
		if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
			return Response.json(
				{ error: { code: "upgrade_required", message: "Expected a WebSocket upgrade." } },
				{ status: 426 },
			);
		}
		const sessionId = request.headers.get("X-Session-Id") ?? "";
		const sinceHeader = request.headers.get("X-Resume-Since");
		this.#bindSession(sessionId);
		if (this.ctx.getWebSockets().length >= MAX_SOCKETS_PER_SESSION) {
			return Response.json(
				{ error: { code: "too_many_connections", message: "Too many devices are watching this session." } },
				{ status: 429 },
			);
		}

		const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
		this.ctx.acceptWebSocket(server);
		const attachment: SocketAttachment = {
			sub: request.headers.get("X-Subject") ?? "",
			connected_at: Date.now(),
			window_start: Date.now(),
			frames: 0,
		};
		server.serializeAttachment(attachment);
		const backlog = sinceHeader === null ? null : this.#log.after(Number(sinceHeader));
		if (backlog === null) server.send(JSON.stringify(this.#snapshot()));
		else for (const frame of backlog) server.send(frame);
		return new Response(null, { status: 101, webSocket: client });
	}

	override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
		const size = typeof message === "string" ? message.length : message.byteLength;
		if (size > MAX_CLIENT_FRAME_BYTES) {
			ws.close(1009, "frame too large");
			return;
		}
		if (!withinRate(ws)) {
			// A flooding client is cut off with a policy close; the session's other phones are untouched.
			ws.close(1008, "too many frames");
			return;
		}
		let parsed: unknown;
		try {
			parsed = typeof message === "string" ? JSON.parse(message) : undefined;
		} catch {
			parsed = undefined;
		}
		const frame = ClientFrame.safeParse(parsed);
		if (!frame.success) {
			ws.send(
				JSON.stringify({
					type: "error",
					code: "bad_frame",
					message: 'Unrecognised frame; send {"type":"ping"}.',
				}),
			);
			return;
		}
		ws.send(JSON.stringify({ type: "pong" }));
	}

	override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
		// Reciprocate so the phone sees a clean close; 1005/1006 are reserved and cannot be sent.
		try {
			ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
		} catch {
			// already closed
		}
	}

	// ── RPC from the Worker ─────────────────────────────────────────────────────────────────────

	progress(sessionId: string): SnapshotFrame {
		this.#bindSession(sessionId);
		return this.#snapshot();
	}

	/** Stages 1–5, reported by the MyndLens pipeline. */
	async reportStage(sessionId: string, report: StageReport): Promise<RpcResult<StageReportResult>> {
		this.#bindSession(sessionId);
		const now = Date.now();
		const existing = this.#mandates.get(report.mandate_id);
		const board = existing ? this.#mandates.board(report.mandate_id) : emptyBoard();
		const stage = report.stage as StageNumber;
		const plan = planStageMove(board, stage, report.status);
		if (!plan.ok) return fail(409, plan.code, plan.message);
		const result = {
			mandate_id: report.mandate_id,
			stage,
			status: report.status,
			changed: plan.changes.length > 0,
		};
		if (!result.changed) return ok(result);

		const mandate = existing ?? this.#mandates.create(report.mandate_id, now);
		const details: StageDetails = report.message ? { message: report.message } : {};
		this.#moveStages(mandate, plan.changes, now, { [stage]: details });
		if (report.status === "failed") {
			this.#mandates.update(mandate.mandate_id, {
				state: "failed",
				error: report.message ?? `Stopped at "${stageName(stage)}".`,
			});
		}
		this.#mandates.update(mandate.mandate_id, { updated_at: now });
		await this.#flush();
		return ok(result);
	}

	/** `POST /api/mandate/execute`: idempotent per mandate_id — one dispatch, one execution id. */
	execute(request: ExecuteRequest): Promise<RpcResult<ExecuteResponse>> {
		this.#bindSession(request.session_id);
		const inFlight = this.#dispatches.get(request.mandate_id);
		if (inFlight) return inFlight;
		const attempt = this.#execute(request).finally(() => this.#dispatches.delete(request.mandate_id));
		this.#dispatches.set(request.mandate_id, attempt);
		return attempt;
	}

	/** A verified delivery webhook for an execution of this session. */
	async deliverWebhook(
		sessionId: string,
		webhookId: string,
		payload: DeliveryWebhook,
		rawBody: string,
	): Promise<RpcResult<{ outcome: WebhookOutcome }>> {
		this.#bindSession(sessionId);
		const now = Date.now();
		const mandate = this.#mandates.byExecution(payload.execution_id);
		if (!mandate) return fail(404, "unknown_execution", "No execution with this id is known.");

		const seen = this.ctx.storage.sql
			.exec("SELECT 1 FROM ml_webhooks WHERE webhook_id = ?", webhookId)
			.toArray().length;
		let outcome: WebhookOutcome;
		if (seen) {
			outcome = "duplicate";
			this.#audit("webhook_duplicate", mandate, { webhook_id: webhookId, status: payload.status }, now);
		} else {
			this.ctx.storage.sql.exec(
				"INSERT INTO ml_webhooks (webhook_id, received_at) VALUES (?, ?)",
				webhookId,
				now,
			);
			this.ctx.storage.sql.exec(
				"DELETE FROM ml_webhooks WHERE received_at < ?",
				now - WEBHOOK_DEDUP_RETENTION_MS,
			);
			this.#audit("webhook", mandate, { webhook_id: webhookId, status: payload.status }, now);
			outcome = isTerminalStatus(payload.status)
				? this.#finish(mandate, payload, "webhook", now)
				: "recorded";
			this.#outbox.add({
				kind: "delivery",
				webhook_id: webhookId,
				execution_id: payload.execution_id,
				status: payload.status,
				payload: rawBody,
				outcome,
				at: now,
			});
		}
		await this.#flush();
		return ok({ outcome });
	}

	/**
	 * What the tenant's OpenClaw agent is doing for one of our executions, in order (issue 3). The
	 * answer's chunks are always kept (the last one may arrive after ObeGee's outcome); sub-statuses
	 * and the lifecycle only count while the execution runs.
	 */
	async applyAgentUpdates(sessionId: string, executionId: string, updates: AgentUpdate[]): Promise<void> {
		this.#bindSession(sessionId);
		const now = Date.now();
		const mandate = this.#mandates.byExecution(executionId);
		if (!mandate) return;
		if (mandate.agent_event_at === null) this.#audit("agent_stream", mandate, { event: "started" }, now);
		// Only "has the stream spoken lately" matters (STREAM_QUIET_MS), so a write a second is enough.
		if (mandate.agent_event_at === null || now - mandate.agent_event_at >= 1_000) {
			this.#mandates.update(mandate.mandate_id, { agent_event_at: now });
		}
		for (const update of coalesceChunks(updates)) {
			if (update.kind === "chunk") {
				this.#chunk(mandate, update.text, update.offset, now);
				continue;
			}
			if (this.#mandates.get(mandate.mandate_id)?.state !== "running") continue;
			switch (update.kind) {
				case "status":
					this.#progress(mandate, update.status, update.progress, now);
					break;
				case "error":
					this.#progress(mandate, update.message, 0, now);
					this.#audit("agent_error", mandate, { message: update.message }, now);
					break;
				case "end":
					this.#progress(mandate, "Execution complete", PROGRESS.done, now);
					this.#moveStages(
						mandate,
						stageChanges(this.#mandates.board(mandate.mandate_id), 9, "completed"),
						now,
					);
					this.#audit("agent_end", mandate, {}, now);
					break;
			}
		}
		await this.#flush();
	}

	/** The gateway stream of these executions dropped: ObeGee polling returns to its base pace now. */
	async agentStreamLost(sessionId: string, executionIds: string[]): Promise<void> {
		this.#bindSession(sessionId);
		const now = Date.now();
		const { pollIntervalMs } = timing(this.env);
		for (const executionId of executionIds) {
			const mandate = this.#mandates.byExecution(executionId);
			if (mandate?.state !== "running") continue;
			this.#mandates.update(mandate.mandate_id, {
				agent_event_at: null,
				next_poll_at: Math.min(mandate.next_poll_at ?? now, now + pollIntervalMs),
			});
			this.#audit("agent_stream", mandate, { event: "lost" }, now);
		}
		await this.#flush();
	}

	// ── The alarm: polling, timeouts, outbox retries ────────────────────────────────────────────

	/**
	 * The one alarm of the session. It may run early (tests fire it on demand) or twice; it treats
	 * the time it was armed for as "now", does the work due by then, and re-arms for the next job.
	 */
	override async alarm(): Promise<void> {
		const sessionId = this.#meta.get("session_id");
		if (!sessionId) return;
		if (this.env.METRICS_LOG === "true")
			console.log(JSON.stringify({ metric: "alarm", session_id: sessionId }));
		const now = Math.max(Date.now(), this.#meta.getNumber("alarm_at") ?? 0);
		// The alarm that was armed is spent; whatever #arm computes next must be set again.
		this.#meta.delete("alarm_at");
		const { pollIntervalMs } = timing(this.env);

		// Poll first: at the deadline, one last look at ObeGee lets a finished run end as a success.
		const due = this.#mandates
			.running()
			.filter((mandate) => mandate.execution_id !== null && (mandate.next_poll_at ?? 0) <= now);
		await Promise.all(due.map((mandate) => this.#poll(mandate, now, pollIntervalMs)));
		for (const mandate of this.#mandates.running()) {
			if (mandate.deadline_at !== null && mandate.deadline_at <= now) this.#timeOut(mandate, now);
		}
		await this.#flush();
	}

	// ── Internals ───────────────────────────────────────────────────────────────────────────────

	async #execute(request: ExecuteRequest): Promise<RpcResult<ExecuteResponse>> {
		const { session_id: _session, ...mandateBody } = request;
		const now = Date.now();
		const existing = this.#mandates.get(request.mandate_id);
		if (existing?.execution_id) {
			return ok({ execution_id: existing.execution_id, status: existing.remote_status ?? "QUEUED" });
		}
		if (existing?.error_code) {
			return fail(existing.error_http ?? 422, existing.error_code, existing.error ?? "This request failed.");
		}
		const board = existing ? this.#mandates.board(request.mandate_id) : emptyBoard();
		const created = planStageMove(board, 4, "completed");
		if (!created.ok) return fail(409, created.code, created.message);
		const token = this.env.OBEGEE_API_TOKEN;
		if (!token) return fail(503, "not_configured", "Mandate execution is not configured on this service.");

		const mandate = existing ?? this.#mandates.create(request.mandate_id, now);
		this.#mandates.update(mandate.mandate_id, {
			state: "dispatching",
			tenant_id: request.tenant_id,
			intent: request.intent,
			updated_at: now,
		});
		this.#moveStages(mandate, created.changes, now);
		this.#audit("dispatch_requested", mandate, { tenant_id: request.tenant_id }, now);

		const result = await new ObeGeeClient(this.env.OBEGEE_BASE_URL, token).dispatch(mandateBody);
		const at = Date.now();
		const current = this.#mandates.get(mandate.mandate_id) as MandateRecord;
		const boardNow = this.#mandates.board(mandate.mandate_id);

		if (!result.ok) {
			const failure = dispatchFailure(result.error);
			this.#mandates.update(mandate.mandate_id, {
				state: "failed",
				error: failure.message,
				error_code: failure.code,
				error_http: failure.httpStatus,
				updated_at: at,
			});
			const plan = planStageMove(boardNow, 6, "failed");
			if (plan.ok) this.#moveStages(current, plan.changes, at, { 6: { message: failure.message } });
			this.#audit("dispatch_failed", current, { ...result.error, code: failure.code }, at);
			await this.#flush();
			return fail(failure.httpStatus, failure.code, failure.message);
		}

		const { execution_id, status } = result.value;
		const clash = this.#mandates.byExecution(execution_id);
		if (clash && clash.mandate_id !== mandate.mandate_id) {
			// ObeGee reused an execution id: tracking both would mix two requests up.
			this.#audit("dispatch_conflict", current, { execution_id, other_mandate_id: clash.mandate_id }, at);
			await this.#flush();
			return fail(502, "obegee_conflict", "The execution service answered inconsistently. Please try again.");
		}
		const { pollIntervalMs, executionTimeoutMs } = timing(this.env);
		this.#mandates.update(mandate.mandate_id, {
			state: "running",
			execution_id,
			remote_status: status,
			dispatched_at: at,
			deadline_at: at + executionTimeoutMs,
			next_poll_at: at + pollIntervalMs,
			poll_failures: 0,
			updated_at: at,
		});
		const running = this.#mandates.get(mandate.mandate_id) as MandateRecord;
		const started = planStageMove(boardNow, 9, "active");
		if (started.ok) this.#moveStages(running, started.changes, at);
		this.#progress(running, "Mandate queued", PROGRESS.queued, at);
		this.#audit("dispatched", running, { status }, at);
		this.#recordExecution(running, at);
		await this.#flush();
		this.#watchAgent(running, true);
		return ok({ execution_id, status });
	}

	async #poll(mandate: MandateRecord, now: number, pollIntervalMs: number): Promise<void> {
		const executionId = mandate.execution_id as string;
		const token = this.env.OBEGEE_API_TOKEN ?? "";
		const result = await new ObeGeeClient(this.env.OBEGEE_BASE_URL, token).status(executionId);
		// A webhook or a timeout may have finished the execution while we waited.
		const current = this.#mandates.get(mandate.mandate_id);
		if (current?.state !== "running" || current.execution_id !== executionId) {
			this.#audit("poll_ignored", mandate, { reason: "execution already finished" }, now);
			return;
		}
		if (!result.ok) {
			const failures = current.poll_failures + 1;
			const retryInMs = backoffDelay(failures, pollIntervalMs, POLL_BACKOFF_CAP_MS);
			this.#mandates.update(current.mandate_id, { poll_failures: failures, next_poll_at: now + retryInMs });
			this.#audit("poll_failed", current, { ...result.error, failures, retry_in_ms: retryInMs }, now);
			this.#heartbeat(current, now);
			return;
		}
		const status = result.value.status;
		this.#audit("poll", current, { status }, now);
		// While the agent's own stream is speaking, ObeGee polling is only the safety net (issue 3).
		const streaming = current.agent_event_at !== null && now - current.agent_event_at < STREAM_QUIET_MS;
		this.#mandates.update(current.mandate_id, {
			poll_failures: 0,
			next_poll_at: now + (streaming ? streamingPollInterval(pollIntervalMs) : pollIntervalMs),
			remote_status: status,
		});
		if (isTerminalStatus(status)) {
			this.#finish(current, result.value, "poll", now);
			return;
		}
		// Once the agent's own stream speaks, it says better than ObeGee's coarse status what is going on.
		const sub =
			status !== current.remote_status && current.agent_event_at === null ? subStatusForRemote(status) : null;
		if (sub) this.#progress(current, sub.status, sub.progress, now);
		else this.#heartbeat(current, now);
	}

	/**
	 * Applies ObeGee's outcome exactly once, whichever of webhook and poll brings it first (DESIGN.md,
	 * "The stage machine"). Later signals are audited and change nothing, except that a success after
	 * our own timeout replaces the stale "timed out".
	 */
	#finish(mandate: MandateRecord, outcome: Outcome, source: "poll" | "webhook", now: number): WebhookOutcome {
		const current = this.#mandates.get(mandate.mandate_id) as MandateRecord;
		const board = this.#mandates.board(current.mandate_id);
		const succeeded = outcome.status === "COMPLETED";
		const lateSuccess = current.state === "timed_out" && succeeded;
		if (current.state !== "running" && !lateSuccess) {
			this.#audit("outcome_ignored", current, { source, status: outcome.status, state: current.state }, now);
			return "already_final";
		}
		if (succeeded) {
			const result: ExecutionResult = {
				summary: outcome.summary ?? null,
				delivered_to: outcome.delivered_to ?? [],
				completed_at: outcome.completed_at ?? new Date(now).toISOString(),
			};
			this.#mandates.update(current.mandate_id, {
				state: "completed",
				error: null,
				result: JSON.stringify(result),
				remote_status: outcome.status,
				updated_at: now,
			});
			this.#progress(current, "Execution complete", PROGRESS.done, now);
			const changes = lateSuccess ? planLateSuccess(board) : stageChanges(board, 10, "completed");
			this.#moveStages(current, changes, now, {
				10: { ...(result.summary ? { summary: result.summary } : {}), delivered_to: result.delivered_to },
			});
		} else {
			const message = executionFailedMessage(outcome.error ?? outcome.summary);
			this.#mandates.update(current.mandate_id, {
				state: "failed",
				error: message,
				remote_status: outcome.status,
				updated_at: now,
			});
			this.#failOpenStage(current, board, message, now);
		}
		this.#audit(lateSuccess ? "late_success" : "outcome", current, { source, status: outcome.status }, now);
		this.#recordExecution(this.#mandates.get(current.mandate_id) as MandateRecord, now);
		this.#watchAgent(current, false);
		return lateSuccess ? "late_success" : "applied";
	}

	#timeOut(mandate: MandateRecord, now: number): void {
		const message = timeoutMessage(timing(this.env).executionTimeoutMs);
		this.#mandates.update(mandate.mandate_id, { state: "timed_out", error: message, updated_at: now });
		this.#failOpenStage(mandate, this.#mandates.board(mandate.mandate_id), message, now);
		this.#audit("timeout", mandate, { deadline_at: mandate.deadline_at }, now);
		this.#recordExecution(this.#mandates.get(mandate.mandate_id) as MandateRecord, now);
		this.#watchAgent(mandate, false);
	}

	/**
	 * A failure lands on the first stage of ObeGee's part that is still open: stage 9, or stage 10
	 * when the agent had already finished (lifecycle end) but ObeGee reports the delivery failed.
	 */
	#failOpenStage(mandate: MandateRecord, board: StageBoard, message: string, now: number): void {
		const stage = board[9] === "completed" ? 10 : 9;
		this.#moveStages(mandate, stageChanges(board, stage, "failed"), now, { [stage]: { message } });
	}

	/**
	 * The next piece of the agent's answer: kept with the mandate and streamed to the phones. With an
	 * offset, only what lies beyond the answer already kept is new, so a batch delivered twice is
	 * appended once.
	 */
	#chunk(mandate: MandateRecord, text: string, offset: number | undefined, now: number): void {
		const executionId = mandate.execution_id;
		if (!executionId) return;
		const current = this.#mandates.get(mandate.mandate_id) as MandateRecord;
		const fresh = offset === undefined ? text : text.slice(Math.max(0, current.answer.length - offset));
		if (fresh.length === 0) return;
		this.#mandates.update(mandate.mandate_id, { answer: current.answer + fresh, heartbeat_at: now });
		this.#emit({
			type: "response_chunk",
			execution_id: executionId,
			mandate_id: mandate.mandate_id,
			chunk: fresh,
		});
	}

	/**
	 * Asks the tenant's Gateway DO to stream this execution's agent events to us (or to stop). Best
	 * effort and off the caller's path: ObeGee polling remains the safety net if it fails.
	 */
	#watchAgent(mandate: MandateRecord, watch: boolean): void {
		const gateway = this.#gateway(mandate.tenant_id);
		const sessionId = this.#meta.get("session_id");
		const executionId = mandate.execution_id;
		if (!gateway || !sessionId || !executionId || !mandate.tenant_id) return;
		const call = watch
			? gateway.watch(mandate.tenant_id, { executionId, sessionId, mandateId: mandate.mandate_id })
			: gateway.unwatch(mandate.tenant_id, executionId);
		this.ctx.waitUntil(
			call.catch((error: unknown) =>
				console.warn(
					JSON.stringify({ msg: "gateway watch failed", watch, executionId, error: String(error) }),
				),
			),
		);
	}

	#gateway(tenantId: string | null): Pick<GatewayWatcher, "watch" | "unwatch"> | null {
		return tenantId ? this.env.GATEWAY.getByName(tenantId) : null;
	}

	/** A long run shows it is alive at least every HEARTBEAT_INTERVAL_MS (seed-spec.md, Test 2). */
	#heartbeat(mandate: MandateRecord, now: number): void {
		const last = mandate.heartbeat_at ?? mandate.dispatched_at ?? now;
		if (now - last < HEARTBEAT_INTERVAL_MS) return;
		const elapsed = now - (mandate.dispatched_at ?? now);
		this.#progress(mandate, stillWorkingStatus(elapsed), mandate.progress, now);
	}

	#progress(mandate: MandateRecord, status: string, candidate: number, now: number): void {
		const executionId = mandate.execution_id;
		if (!executionId) return;
		const current = this.#mandates.get(mandate.mandate_id) as MandateRecord;
		const progress = nextProgress(current.progress, candidate);
		// Saying the same thing twice (the agent's end, then ObeGee's outcome) is no news to the phone.
		if (status === current.sub_status && progress === current.progress) return;
		this.#mandates.update(mandate.mandate_id, { sub_status: status, progress, heartbeat_at: now });
		this.#emit({
			type: "progress",
			execution_id: executionId,
			mandate_id: mandate.mandate_id,
			status,
			progress,
			timestamp: new Date(now).toISOString(),
			elapsed_ms: Math.max(0, now - (current.dispatched_at ?? now)),
		});
	}

	/** Stores, audits, logs and broadcasts each stage change, in order. */
	#moveStages(
		mandate: MandateRecord,
		changes: readonly StageChange[],
		now: number,
		details: Partial<Record<StageNumber, StageDetails>> = {},
	): void {
		const executionId = this.#mandates.get(mandate.mandate_id)?.execution_id ?? null;
		for (const { stage, status } of changes) {
			const extra = details[stage] ?? {};
			const message = extra.message ?? null;
			this.#mandates.setStage(mandate.mandate_id, stage, status, message, now);
			this.#outbox.add({ kind: "stage", mandate_id: mandate.mandate_id, stage, status, message, at: now });
			this.#audit("stage", { ...mandate, execution_id: executionId }, { stage, status, message }, now);
			this.#emit({
				event: "pipeline_stage",
				data: {
					stage,
					status,
					timestamp: new Date(now).toISOString(),
					stage_name: stageName(stage),
					mandate_id: mandate.mandate_id,
					...(executionId ? { execution_id: executionId } : {}),
					...extra,
				},
			});
		}
	}

	/** Write to the log first, then send: the log is the truth, the send is best effort. */
	#emit(frame: UnsequencedFrame): void {
		const { text } = this.#log.append(frame);
		const sockets = this.ctx.getWebSockets();
		this.#metrics.event(sockets.length);
		for (const socket of sockets) {
			try {
				socket.send(text);
			} catch {
				// A socket closing under us; the phone resumes from the log when it reconnects.
			}
		}
	}

	#audit(
		event: string,
		mandate: Pick<MandateRecord, "mandate_id" | "execution_id"> | null,
		detail: Record<string, unknown>,
		now: number,
	): void {
		this.#outbox.add({
			kind: "audit",
			mandate_id: mandate?.mandate_id ?? null,
			execution_id: mandate?.execution_id ?? null,
			event,
			detail,
			at: now,
		});
	}

	#recordExecution(mandate: MandateRecord, now: number): void {
		if (!mandate.execution_id) return;
		const result = mandate.result ? (JSON.parse(mandate.result) as ExecutionResult) : null;
		const record: OutboxRecord = {
			kind: "execution",
			execution_id: mandate.execution_id,
			mandate_id: mandate.mandate_id,
			tenant_id: mandate.tenant_id ?? "",
			intent: mandate.intent,
			state: mandate.state,
			summary: result?.summary ?? null,
			delivered_to: result?.delivered_to ?? null,
			error: mandate.error,
			created_at: mandate.dispatched_at ?? now,
			at: now,
			completed_at: result?.completed_at ?? null,
		};
		this.#outbox.add(record);
	}

	#snapshot(): SnapshotFrame {
		return {
			type: "snapshot",
			seq: this.#log.lastSeq(),
			session_id: this.#meta.get("session_id") ?? "",
			mandates: this.#mandates.states(),
		};
	}

	/** Arms the one alarm for the earliest pending job: a poll, a deadline or an outbox retry. */
	#arm(): void {
		const times: number[] = [];
		for (const mandate of this.#mandates.running()) {
			if (mandate.next_poll_at !== null) times.push(mandate.next_poll_at);
			if (mandate.deadline_at !== null) times.push(mandate.deadline_at);
		}
		const retry = this.#outbox.retryAt();
		if (retry !== null) times.push(retry);
		if (times.length === 0) {
			this.#meta.delete("alarm_at");
			void this.ctx.storage.deleteAlarm();
			return;
		}
		const at = Math.min(...times);
		// Re-arming for the same time is a write per operation for nothing (alarm() clears alarm_at).
		if (this.#meta.getNumber("alarm_at") === at) return;
		this.#meta.set("alarm_at", at);
		void this.ctx.storage.setAlarm(at);
	}

	/**
	 * Copies the outbox to D1. The alarm is armed before and after: before, so a state change is
	 * covered even if the object dies mid-flush; after, to drop that cover or schedule a retry.
	 */
	async #flush(): Promise<void> {
		const sessionId = this.#meta.get("session_id");
		if (!sessionId) return;
		this.#arm();
		await this.#outbox.flush(this.env.DB, sessionId);
		this.#arm();
		if (this.env.METRICS_LOG === "true") {
			console.log(
				JSON.stringify({ metric: "session_flush", session_id: sessionId, ...this.#metrics.take() }),
			);
		}
	}

	#bindSession(sessionId: string): void {
		const known = this.#meta.get("session_id");
		if (known === null) this.#meta.set("session_id", sessionId);
		else if (known !== sessionId) throw new Error("session object addressed with a different session id");
	}
}

/** A move the caller has already checked is legal from `board`; an illegal one yields no change. */
function stageChanges(board: StageBoard, stage: StageNumber, status: "completed" | "failed"): StageChange[] {
	if (isFinished(board)) return [];
	const plan = planStageMove(board, stage, status);
	return plan.ok ? plan.changes : [];
}

/** A fixed-window frame counter kept in the socket's attachment, so it survives hibernation. */
function withinRate(ws: WebSocket): boolean {
	const now = Date.now();
	const attachment = (ws.deserializeAttachment() ?? {}) as Partial<SocketAttachment>;
	const fresh = now - (attachment.window_start ?? 0) >= RATE_WINDOW_MS;
	const next = {
		...attachment,
		window_start: fresh ? now : (attachment.window_start ?? now),
		frames: (fresh ? 0 : (attachment.frames ?? 0)) + 1,
	};
	ws.serializeAttachment(next);
	return next.frames <= MAX_FRAMES_PER_WINDOW;
}
