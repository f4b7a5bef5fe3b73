import { DurableObject } from "cloudflare:workers";
import { AlarmSchedule } from "../durable/alarm.ts";
import { MetaStore } from "../durable/meta.ts";
import { runMigrations } from "../durable/migrations.ts";
import { sessionObjects } from "../durable/placement.ts";
import { meteredEnv, WorkMeter } from "../durable/work-meter.ts";
import type { Env } from "../env.ts";
import type { GatewayWatcher, WatchRequest } from "./contract.ts";
import { AgentUpdateDelivery } from "./delivery.ts";
import { loadDeviceIdentity } from "./device-identity.ts";
import { GatewayLink, type RunSignal } from "./gateway-link.ts";
import { GATEWAY_MIGRATIONS, type WatchedExecution, WatchStore } from "./gateway-store.ts";
import {
	type MappingNote,
	type MapResult,
	mapAgentEvent,
	mapChatEvent,
	matchesExecution,
} from "./mapping.ts";

/** A watch outlives a lost `unwatch` by at most this long (issue 3: "expires on its own"). */
export const WATCH_TTL_MS = 15 * 60_000;
/** While its run's events keep flowing a watch is extended once less than this is left. */
export const WATCH_RENEW_BELOW_MS = WATCH_TTL_MS / 2;
/**
 * With nothing watched the socket stays open this long, so back-to-back runs reuse it — and no longer:
 * an open outbound socket keeps the Gateway DO billable (issue 17: closed within 5 s of the last watch).
 */
export const IDLE_CLOSE_MS = 5_000;
export {
	HANDSHAKE_TIMEOUT_MS,
	RECONNECT_BASE_MS,
	RECONNECT_CAP_MS,
	REFUSED_CAP_MS,
	TICK_GRACE_MS,
} from "./gateway-link.ts";

/**
 * One tenant's link to its OpenClaw Gateway (DESIGN.md, "Parts and their rooms"). Opens the outbound
 * WebSocket when the first execution is watched (the connection lifecycle is gateway-link.ts), maps
 * `agent`/`chat` events to AgentUpdates for the session that owns each execution, and closes the
 * socket once nothing is watched (an open outbound socket keeps the object billed). All time-based
 * work — reconnects, the connect and tick deadlines, idle close, watch expiry, delivery retries —
 * goes through the one alarm.
 */
export class GatewayDO extends DurableObject<Env> implements GatewayWatcher {
	readonly #meta: MetaStore;
	readonly #alarm: AlarmSchedule;
	readonly #watches: WatchStore;
	readonly #delivery: AgentUpdateDelivery;
	readonly #link: GatewayLink;
	/** Counts each entry point's work when METRICS_LOG is on (the benchmark; src/durable/work-meter.ts). */
	readonly #meter: WorkMeter;
	#tenantId: string | null = null;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, meteredEnv(env));
		this.#meter = new WorkMeter(env, "gateway", () => ({ tenant_id: this.#tenantId }), ctx.storage);
		const sql = this.#meter.sql(ctx.storage.sql);
		runMigrations(sql, GATEWAY_MIGRATIONS);
		this.#meta = new MetaStore(sql, "gw_meta");
		this.#tenantId = this.#meta.get("tenant_id");
		this.#alarm = new AlarmSchedule(ctx.storage, this.#meta);
		this.#watches = new WatchStore(sql);
		this.#delivery = new AgentUpdateDelivery(
			(sessionId, executionId, updates) =>
				sessionObjects(this.env).getByName(sessionId).applyAgentUpdates(sessionId, executionId, updates),
			(executionId, error, dropped) =>
				this.#log("warn", "agent updates not delivered", { executionId, dropped, error: String(error) }),
			{ keepAlive: (drain) => this.#meter.waitUntil(ctx, drain) },
		);
		this.#link = new GatewayLink({
			env: this.env,
			meta: this.#meta,
			waitUntil: (promise) => this.#meter.waitUntil(ctx, promise),
			onFrame: (step) => this.#meter.run("frame", step, false),
			socketOpen: (open) => this.#meter.holdOpen(open),
			watching: () => this.#watches.count() > 0,
			onRunEvent: (signal) => this.#onRunEvent(signal),
			streamLost: (reason) => this.#streamLost(reason),
			armAlarm: () => this.#armAlarm(),
			onReady: (now) => this.#onReady(now),
			log: (level, msg, fields) => this.#log(level, msg, fields),
		});
		// After a restart the socket is gone: with watches left, reconnect now, not at the old alarm.
		if (this.#watches.count() > 0) void this.#armAlarm();
	}

	// ── RPC (contract.ts) ─────────────────────────────────────────────────────────────────────────

	watch(tenantId: string, request: WatchRequest): Promise<void> {
		return this.#meter.run("rpc:watch", () => this.#watch(tenantId, request));
	}

	async #watch(tenantId: string, request: WatchRequest): Promise<void> {
		this.#setTenant(tenantId);
		const { executionId, sessionId, mandateId } = request;
		const outcome = this.#watches.add(executionId, sessionId, mandateId, Date.now() + WATCH_TTL_MS);
		if (outcome === "owned_by_another") {
			// Issue 14, finding 1: an execution's stream goes to its first session, for good.
			this.#log("warn", "watch refused: another session watches this execution", { executionId, sessionId });
			return;
		}
		if (outcome === "unwatched") {
			// Finding 12: this watch was overtaken by its unwatch (the run already ended).
			this.#log("info", "watch ignored: the execution was unwatched", { executionId });
			return;
		}
		this.#meta.delete("idle_close_at");
		this.#link.reconnectIfDue(Date.now());
		await this.#armAlarm();
	}

	unwatch(_tenantId: string, executionId: string): Promise<void> {
		return this.#meter.run("rpc:unwatch", async () => {
			this.#watches.unwatch(executionId, Date.now() + WATCH_TTL_MS);
			await this.#afterWatchesShrank();
		});
	}

	#setTenant(tenantId: string): void {
		if (this.#tenantId === tenantId) return;
		this.#meta.set("tenant_id", tenantId);
		this.#tenantId = tenantId;
	}

	/** The admin route changed this tenant's gateway: forget the old one and its device token. */
	async gatewayChanged(tenantId: string): Promise<void> {
		this.#setTenant(tenantId);
		this.#meta.delete("device_token");
		this.#meta.delete("reconnect_at");
		this.#meta.set("failures", 0);
		this.#link.restart();
		await this.#armAlarm();
	}

	/** What an operator or a test may see; never a token. */
	async status() {
		return {
			connected: this.#link.connected,
			connecting: this.#link.connecting,
			watched: this.#watches
				.all()
				.map(({ executionId, sessionId, run }) => ({ executionId, sessionId, run })),
			failures: this.#meta.getNumber("failures") ?? 0,
			reconnectAt: this.#meta.getNumber("reconnect_at"),
			idleCloseAt: this.#meta.getNumber("idle_close_at"),
			lastRefusal: this.#meta.get("last_refusal"),
			hasDeviceToken: this.#meta.get("device_token") !== null,
			// Public: the gateway shows it to operators when they approve the device.
			deviceId: this.#meta.get("device_private_jwk") ? (await loadDeviceIdentity(this.#meta)).deviceId : null,
			gatewaySource: this.#link.source,
			delivery: { queued: this.#delivery.queued(), ...this.#delivery.stats },
		};
	}

	// ── The alarm ─────────────────────────────────────────────────────────────────────────────────

	/**
	 * The one alarm. It may run early (tests fire it on demand) or twice: it acts as of the time it
	 * was armed for, does whatever is due and re-arms for the next job.
	 */
	override alarm(): Promise<void> {
		return this.#meter.run("alarm", () => this.#onAlarm());
	}

	async #onAlarm(): Promise<void> {
		const now = this.#alarm.fired();
		this.#link.onAlarm(now);
		this.#delivery.retryNow();
		const expired = this.#watches.expire(now);
		if (expired.length > 0) this.#log("info", "watches expired", { executionIds: expired });
		const watched = this.#watches.count();
		const idleAt = this.#meta.getNumber("idle_close_at");
		if (watched === 0 && expired.length > 0 && idleAt === null)
			this.#meta.set("idle_close_at", now + IDLE_CLOSE_MS);
		else if (watched === 0 && this.#link.open && idleAt !== null && idleAt <= now) this.#link.closeIdle();
		this.#link.reconnectIfDue(now);
		await this.#armAlarm();
	}

	async #armAlarm(): Promise<void> {
		const now = Date.now();
		const jobs = this.#link.jobs(now);
		const idleAt = this.#meta.getNumber("idle_close_at");
		if (this.#watches.count() === 0 && this.#link.open && idleAt !== null) jobs.push(idleAt);
		const expiry = this.#watches.earliestExpiry();
		if (expiry !== null) jobs.push(expiry);
		this.#alarm.arm(jobs);
	}

	// ── Runs ──────────────────────────────────────────────────────────────────────────────────────

	async #onReady(now: number): Promise<void> {
		if (this.#watches.count() === 0 && this.#meta.get("idle_close_at") === null) {
			this.#meta.set("idle_close_at", now + IDLE_CLOSE_MS);
		}
		await this.#armAlarm();
	}

	#onRunEvent(signal: RunSignal): void | Promise<void> {
		// Runs are started with idempotencyKey = execution id, so a runId names its watch or nothing
		// of ours; only an event without a runId is matched by its sessionKey (finding 1).
		const runId = signal.event.runId;
		const watch = runId
			? this.#watches.get(runId)
			: this.#watches.find((candidate) => matchesExecution(signal.event, candidate.executionId));
		if (!watch) return;
		const now = Date.now();
		const result: MapResult =
			signal.kind === "agent"
				? mapAgentEvent(watch.run, signal.event)
				: mapChatEvent(watch.run, signal.event);
		for (const note of result.notes) this.#logNote(watch, note);
		this.#watches.saveRun(watch.executionId, result.state, now);
		// The lane keeps its drain alive (see the constructor); its promise is not needed here.
		if (result.updates.length > 0)
			void this.#delivery.push(watch.sessionId, watch.executionId, result.updates);
		// A run that keeps talking is alive: its watch must not expire under it (finding 10). The
		// frames behind this one wait for the alarm (the one answer event whose handling waits).
		if (watch.expiresAt - now < WATCH_RENEW_BELOW_MS) {
			this.#watches.extend(watch, now + WATCH_TTL_MS);
			return this.#armAlarm();
		}
	}

	/** Polling at the sessions goes back to its base pace (issue 3, "Push and poll together"). */
	#streamLost(reason: string): void {
		const bySession = new Map<string, string[]>();
		for (const watch of this.#watches.all())
			bySession.set(watch.sessionId, [...(bySession.get(watch.sessionId) ?? []), watch.executionId]);
		for (const [sessionId, executionIds] of bySession) {
			const call = sessionObjects(this.env)
				.getByName(sessionId)
				.agentStreamLost(sessionId, executionIds)
				.catch((error: unknown) =>
					this.#log("warn", "agentStreamLost failed", { sessionId, reason, error: String(error) }),
				);
			this.#meter.waitUntil(this.ctx, call);
		}
	}

	async #afterWatchesShrank(): Promise<void> {
		if (this.#watches.count() === 0) {
			this.#meta.delete("reconnect_at");
			if (this.#link.open && this.#meta.get("idle_close_at") === null) {
				this.#meta.set("idle_close_at", Date.now() + IDLE_CLOSE_MS);
			}
		}
		await this.#armAlarm();
	}

	#logNote(watch: WatchedExecution, note: MappingNote): void {
		const fields = { executionId: watch.executionId, ...note };
		// Per-run seq gaps are normal on the real gateway (it numbers events other clients see):
		// informational; a diverged answer source or a gap in the answer is worth a warning.
		const level = note.kind === "diverged" || note.kind === "resumed_gap" ? "warn" : "info";
		this.#log(level, `run event ${note.kind}`, fields);
	}

	#log(level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown> = {}): void {
		const line = JSON.stringify({ msg: `openclaw: ${msg}`, tenant: this.#tenantId, ...fields });
		if (level === "error") console.error(line);
		else if (level === "warn") console.warn(line);
		else console.log(line);
	}
}
