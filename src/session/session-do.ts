import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env.ts";
import type { AgentUpdate, AgentUpdateSink } from "../openclaw/contract.ts";
import type { ExecuteRequest, ExecuteResponse, StageReport } from "../protocol/api.ts";
import type { LiveActivityRegistration } from "../protocol/devices.ts";
import type { SnapshotFrame } from "../protocol/frames.ts";
import type { DeliveryWebhook } from "../protocol/obegee.ts";
import { agentStreamLost, applyAgentUpdates } from "./agent-stream.ts";
import { armAlarm, flush, runAlarm } from "./alarm.ts";
import { SessionContext } from "./context.ts";
import { execute } from "./dispatch.ts";
import { snapshot } from "./emission.ts";
import { eraseSession, type SessionErasure } from "./erasure.ts";
import { registerLiveActivity } from "./live.ts";
import { takeWebhook, type WebhookOutcome } from "./outcomes.ts";
import { admitViewer, sessionOwner, type Viewer } from "./owner.ts";
import { noteLastPhoneLeft } from "./retention.ts";
import { fail, ok, type RpcResult } from "./rpc-result.ts";
import { acceptPhone, autoRespondToPings, onPhoneClose, onPhoneMessage, socketsExpireAt } from "./sockets.ts";
import { reportStage, type StageReportResult } from "./stage-reports.ts";

export type { SessionErasure } from "./erasure.ts";
export type { WebhookOutcome } from "./outcomes.ts";
export type { Viewer } from "./owner.ts";
export type { RpcError, RpcResult } from "./rpc-result.ts";
export type { StageReportResult } from "./stage-reports.ts";

/**
 * One session (DESIGN.md, "Parts and their rooms"): its phones' hibernatable WebSockets, every
 * mandate's stage machine, the event log phones resume from, the polling schedule (one alarm for all
 * running executions), timeouts and the D1 outbox. All state lives in SQLite, so the object can be
 * evicted at any moment between two events and lose nothing; there are no timers, only the alarm.
 *
 * This class is the shell: each entry point binds the session and hands over to its room —
 * sockets.ts, stage-reports.ts, dispatch.ts, poll.ts, outcomes.ts, agent-stream.ts, alarm.ts — which
 * share one SessionContext and tell the phones through emission.ts. docs/ARCHITECTURE.md has the map.
 */
export class SessionDO extends DurableObject<Env> implements AgentUpdateSink {
	#context: SessionContext | null;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#context = new SessionContext(ctx, env);
		autoRespondToPings(ctx);
	}

	/** The session's context; made again (empty) after the object erased its storage. */
	get #s(): SessionContext {
		this.#context ??= new SessionContext(this.ctx, this.env);
		return this.#context;
	}

	// ── Phones ──────────────────────────────────────────────────────────────────────────────────

	/** A phone's WebSocket, already authenticated by the Worker (routes/sessions.ts). */
	override fetch(request: Request): Promise<Response> {
		return this.#s.meter.run("connect", () => this.#connect(request));
	}

	async #connect(request: Request): Promise<Response> {
		if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") {
			return Response.json(
				{ error: { code: "upgrade_required", message: "Expected a WebSocket upgrade." } },
				{ status: 426 },
			);
		}
		const headers = request.headers;
		this.#s.bind(headers.get("X-Session-Id") ?? "");
		const since = headers.get("X-Resume-Since");
		const viewer = { sub: headers.get("X-Subject") ?? "", tenantId: headers.get("X-Tenant") || null };
		const expiresAt = Number(headers.get("X-Token-Expires-At") ?? 0);
		const expiryBefore = socketsExpireAt(this.#s);
		const ownerBefore = sessionOwner(this.#s);
		const accepted = acceptPhone(this.#s, viewer, expiresAt, since === null ? null : Number(since));
		// The first phone binds the session to its user: that goes to D1 (session_owners) at once.
		if (ownerBefore === null && sessionOwner(this.#s) !== null) await flush(this.#s);
		// Only a socket whose token expires before every other one moves the alarm.
		else if (socketsExpireAt(this.#s) !== expiryBefore) armAlarm(this.#s);
		return accepted;
	}

	override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
		this.#s.meter.run("ws:message", () => onPhoneMessage(this.#s, ws, message));
	}

	override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
		this.#s.meter.run("ws:close", () => {
			onPhoneClose(ws, code, reason);
			if (this.#s.sessionId() !== null && noteLastPhoneLeft(this.#s, Date.now())) armAlarm(this.#s);
		});
	}

	// ── RPC from the Worker ─────────────────────────────────────────────────────────────────────

	/** The snapshot, for the pipeline (no viewer) or a phone (its token's user and tenant). */
	progress(sessionId: string, viewer: Viewer | null = null): RpcResult<SnapshotFrame> {
		return this.#s.meter.run("rpc:progress", () => this.#progress(sessionId, viewer));
	}

	#progress(sessionId: string, viewer: Viewer | null): RpcResult<SnapshotFrame> {
		this.#s.bind(sessionId);
		if (viewer) {
			const admission = admitViewer(this.#s, viewer);
			if (!admission.ok) return fail(403, "forbidden", "This session belongs to another user.");
			// The first phone bound the session to its user: copy that to D1 (session_owners) soon.
			if (admission.bound) void flush(this.#s);
		}
		return ok(snapshot(this.#s));
	}

	/** The iOS Live Activity a phone of the session's owner started for one of its mandates. */
	registerLiveActivity(
		sessionId: string,
		mandateId: string,
		viewer: Viewer,
		activity: LiveActivityRegistration,
	): Promise<RpcResult<{ mandate_id: string; registered: "created" | "replaced" | "unchanged" }>> {
		return this.#s.meter.run("rpc:registerLiveActivity", async () => {
			this.#s.bind(sessionId);
			if (!admitViewer(this.#s, viewer).ok)
				return fail(403, "forbidden", "This session belongs to another user.");
			const registered = registerLiveActivity(
				this.#s,
				mandateId,
				{
					token: activity.token,
					bundleId: activity.bundle_id,
					environment: activity.environment ?? "production",
				},
				Date.now(),
			);
			if (!registered.ok) return fail(404, "not_found", "No mandate with this id in this session.");
			await flush(this.#s);
			return ok({ mandate_id: mandateId, registered: registered.outcome });
		});
	}

	reportStage(sessionId: string, report: StageReport): Promise<RpcResult<StageReportResult>> {
		return this.#s.meter.run("rpc:reportStage", () => {
			this.#s.bind(sessionId);
			return reportStage(this.#s, report);
		});
	}

	execute(request: ExecuteRequest): Promise<RpcResult<ExecuteResponse>> {
		return this.#s.meter.run("rpc:execute", () => {
			this.#s.bind(request.session_id);
			return execute(this.#s, request);
		});
	}

	deliverWebhook(
		sessionId: string,
		webhookId: string,
		payload: DeliveryWebhook,
		rawBody: string,
	): Promise<RpcResult<{ outcome: WebhookOutcome }>> {
		return this.#s.meter.run("rpc:deliverWebhook", async () => {
			this.#s.bind(sessionId);
			const taken = takeWebhook(this.#s, webhookId, payload, rawBody, Date.now());
			if (taken.ok) await flush(this.#s);
			return taken;
		});
	}

	// ── RPC from the tenant's Gateway DO (openclaw/contract.ts) ─────────────────────────────────

	applyAgentUpdates(sessionId: string, executionId: string, updates: AgentUpdate[]): Promise<void> {
		return this.#s.meter.run("rpc:applyAgentUpdates", async () => {
			this.#s.bind(sessionId);
			const added = this.#s.outbox.added;
			const moved = applyAgentUpdates(this.#s, executionId, updates, Date.now());
			// Nothing to copy to D1 and no job due sooner: the alarm stays as armed.
			if (moved || this.#s.outbox.added !== added) await flush(this.#s);
		});
	}

	agentStreamLost(sessionId: string, executionIds: string[]): Promise<void> {
		return this.#s.meter.run("rpc:agentStreamLost", async () => {
			this.#s.bind(sessionId);
			agentStreamLost(this.#s, executionIds, Date.now());
			await flush(this.#s);
		});
	}

	// ── Operations (erasure.ts) ─────────────────────────────────────────────────────────────────

	/** Erases everything of this session (operators, `DELETE /api/admin/…`); a receipt of what went. */
	async erase(sessionId: string): Promise<RpcResult<SessionErasure>> {
		const known = this.#s.sessionId();
		if (known !== null && known !== sessionId) {
			return fail(409, "conflict", "This object serves another session.");
		}
		const receipt = await eraseSession(this.#s, sessionId, Date.now());
		// Storage is gone: what this instance kept in memory goes with it.
		this.#context = null;
		return ok(receipt);
	}

	// ── The alarm: polling, timeouts, outbox retries (alarm.ts) ─────────────────────────────────

	override async alarm(): Promise<void> {
		const s = this.#s;
		// A session with nothing left deleted its storage: what this instance kept in memory goes too.
		if ((await s.meter.run("alarm", () => runAlarm(s))) === "deleted") this.#context = null;
	}
}
