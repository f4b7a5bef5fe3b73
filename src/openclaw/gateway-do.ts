import { DurableObject } from "cloudflare:workers";
import { AlarmSchedule } from "../durable/alarm.ts";
import { MetaStore } from "../durable/meta.ts";
import { runMigrations } from "../durable/migrations.ts";
import type { Env } from "../env.ts";
import { backoffDelay } from "../pipeline/backoff.ts";
import type { AgentUpdate, GatewayWatcher, WatchRequest } from "./contract.ts";
import { AgentUpdateDelivery } from "./delivery.ts";
import { loadDeviceIdentity } from "./device-identity.ts";
import type { AgentEvent, ChatEvent } from "./frames.ts";
import { GATEWAY_MIGRATIONS, type WatchedExecution, WatchStore } from "./gateway-store.ts";
import {
	type MappingNote,
	type MapResult,
	mapAgentEvent,
	mapChatEvent,
	matchesExecution,
} from "./mapping.ts";
import { type ConnectRefusal, GatewayProtocol, type Hello, type ProtocolSignal } from "./protocol-client.ts";
import { type GatewayTarget, gatewayFor, redactedUrl, upgradeUrl } from "./registry.ts";

/** A watch outlives a lost `unwatch` by at most this long (issue 3: "expires on its own"). */
export const WATCH_TTL_MS = 15 * 60_000;
/** With nothing watched the socket stays open this long, so back-to-back runs reuse it. */
export const IDLE_CLOSE_MS = 30_000;
/** `hello-ok` must arrive this soon after the socket opens. */
export const HANDSHAKE_TIMEOUT_MS = 15_000;
/** Two tick intervals plus this without a frame means the connection is dead. */
export const TICK_GRACE_MS = 5_000;
export const RECONNECT_BASE_MS = 1_000;
export const RECONNECT_CAP_MS = 60_000;
/** Refusals a retry cannot fix (bad token, pairing needed) back off much further. */
export const REFUSED_CAP_MS = 5 * 60_000;

/** The running connection; everything about it dies with the socket. */
interface Connection {
	ws: WebSocket;
	protocol: GatewayProtocol;
	target: GatewayTarget;
	/** Frames are handled one at a time, in arrival order. */
	chain: Promise<void>;
	tickIntervalMs: number | null;
	/**
	 * When silence means the connection is dead: kept in memory (it only matters while this socket is
	 * up) so a busy stream does not read storage for every event.
	 */
	livenessDeadline: number;
}

/**
 * One tenant's link to its OpenClaw Gateway (DESIGN.md, "Parts and their rooms"). Opens the outbound
 * WebSocket when the first execution is watched, speaks protocol v4, maps `agent`/`chat` events to
 * AgentUpdates for the owning session, reconnects with capped backoff and closes the socket once
 * nothing is watched (an open outbound socket keeps the object billed). All time-based work —
 * reconnects, the tick watchdog, idle close, watch expiry — goes through the one alarm.
 */
export class GatewayDO extends DurableObject<Env> implements GatewayWatcher {
	readonly #meta: MetaStore;
	readonly #alarm: AlarmSchedule;
	readonly #watches: WatchStore;
	readonly #delivery: AgentUpdateDelivery;
	#connection: Connection | null = null;
	#connecting: Promise<void> | null = null;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		runMigrations(ctx.storage.sql, GATEWAY_MIGRATIONS);
		this.#meta = new MetaStore(ctx.storage.sql, "gw_meta");
		this.#alarm = new AlarmSchedule(ctx.storage, this.#meta);
		this.#watches = new WatchStore(ctx.storage.sql);
		this.#delivery = new AgentUpdateDelivery(
			(sessionId, executionId, updates) =>
				this.env.SESSION.getByName(sessionId).applyAgentUpdates(sessionId, executionId, updates),
			(executionId, error, dropped) =>
				this.#log("warn", "agent updates not delivered", { executionId, dropped, error: String(error) }),
		);
	}

	// ── RPC (contract.ts) ─────────────────────────────────────────────────────────────────────────

	async watch(tenantId: string, request: WatchRequest): Promise<void> {
		this.#meta.set("tenant_id", tenantId);
		this.#watches.upsert(
			request.executionId,
			request.sessionId,
			request.mandateId,
			Date.now() + WATCH_TTL_MS,
		);
		this.#meta.delete("idle_close_at");
		const reconnectAt = this.#meta.getNumber("reconnect_at");
		if (reconnectAt === null || reconnectAt <= Date.now()) this.#startConnect();
		await this.#armAlarm();
	}

	async unwatch(_tenantId: string, executionId: string): Promise<void> {
		this.#watches.remove(executionId);
		await this.#afterWatchesShrank();
	}

	/** The admin route changed this tenant's gateway: forget the old one and its device token. */
	async gatewayChanged(tenantId: string): Promise<void> {
		this.#meta.set("tenant_id", tenantId);
		this.#meta.delete("device_token");
		this.#meta.delete("reconnect_at");
		this.#meta.set("failures", 0);
		const connection = this.#connection;
		if (connection) this.#close(connection, 1000, "gateway changed");
		if (this.#watches.count() > 0) this.#startConnect();
		await this.#armAlarm();
	}

	/** What an operator or a test may see; never a token. */
	async status() {
		return {
			connected: this.#connection?.protocol.ready ?? false,
			connecting: this.#connection !== null && !this.#connection.protocol.ready,
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
			gatewaySource: this.#connection?.target.source ?? null,
		};
	}

	// ── The alarm ─────────────────────────────────────────────────────────────────────────────────

	/**
	 * The one alarm. It may run early (tests fire it on demand) or twice: it acts as of the time it
	 * was armed for, does whatever is due and re-arms for the next job.
	 */
	override async alarm(): Promise<void> {
		const now = this.#alarm.fired();
		const connection = this.#connection;
		const deadline = connection?.livenessDeadline ?? null;
		if (connection && deadline !== null && deadline <= now) {
			const phase = connection.protocol.ready ? "no tick from the gateway" : "no hello-ok from the gateway";
			this.#drop(connection, phase, null, now);
		}
		const expired = this.#watches.expire(now);
		if (expired.length > 0) this.#log("info", "watches expired", { executionIds: expired });
		const watched = this.#watches.count();
		const idleAt = this.#meta.getNumber("idle_close_at");
		if (watched === 0 && expired.length > 0 && idleAt === null)
			this.#meta.set("idle_close_at", now + IDLE_CLOSE_MS);
		else if (watched === 0 && this.#connection && idleAt !== null && idleAt <= now) {
			this.#close(this.#connection, 1000, "idle");
			this.#log("info", "gateway socket closed: nothing watched");
		}
		const reconnectAt = this.#meta.getNumber("reconnect_at");
		if (watched > 0 && !this.#connection && (reconnectAt === null || reconnectAt <= now))
			this.#startConnect();
		await this.#armAlarm();
	}

	async #armAlarm(): Promise<void> {
		const jobs: number[] = [];
		const watched = this.#watches.count() > 0;
		if (this.#connection) jobs.push(this.#connection.livenessDeadline);
		const idleAt = this.#meta.getNumber("idle_close_at");
		if (!watched && this.#connection && idleAt !== null) jobs.push(idleAt);
		const reconnectAt = this.#meta.getNumber("reconnect_at");
		// Not while a connect is under way: a past reconnect time would fire the alarm again at once,
		// and that run would judge the new connection by a deadline armed after it started.
		if (watched && !this.#connection && !this.#connecting && reconnectAt !== null) jobs.push(reconnectAt);
		const expiry = this.#watches.earliestExpiry();
		if (expiry !== null) jobs.push(expiry);
		this.#alarm.arm(jobs);
	}

	// ── The connection ────────────────────────────────────────────────────────────────────────────

	#startConnect(): void {
		if (this.#connection || this.#connecting) return;
		this.#connecting = this.#open()
			.catch((error: unknown) => this.#failed("connect_error", String(error), null))
			.finally(() => {
				this.#connecting = null;
			});
		this.ctx.waitUntil(this.#connecting);
	}

	async #open(): Promise<void> {
		const tenantId = this.#meta.get("tenant_id");
		const target = tenantId ? await gatewayFor(this.env, tenantId) : null;
		if (!target) {
			await this.#failed("not_configured", "no gateway registered and OPENCLAW_GATEWAY_URL is empty", null);
			return;
		}
		let response: Response;
		try {
			response = await fetch(upgradeUrl(target.url), { headers: { Upgrade: "websocket" } });
		} catch (error) {
			await this.#failed("unreachable", `${redactedUrl(target.url)}: ${String(error)}`, null);
			return;
		}
		const ws = response.webSocket;
		if (!ws) {
			await response.body?.cancel();
			await this.#failed("upgrade_refused", `${redactedUrl(target.url)} answered ${response.status}`, null);
			return;
		}
		ws.accept();
		const identity = await loadDeviceIdentity(this.#meta);
		const deviceToken =
			this.#meta.get("device_token_url") === target.url ? this.#meta.get("device_token") : null;
		const protocol = new GatewayProtocol({ token: target.token, deviceToken, identity }, (text) =>
			ws.send(text),
		);
		const connection: Connection = {
			ws,
			protocol,
			target,
			chain: Promise.resolve(),
			tickIntervalMs: null,
			livenessDeadline: Date.now() + HANDSHAKE_TIMEOUT_MS,
		};
		this.#connection = connection;
		this.#meta.delete("idle_close_at");
		ws.addEventListener("message", (event) => {
			const data = event.data;
			connection.chain = connection.chain.then(() => this.#onFrame(connection, data));
			this.ctx.waitUntil(connection.chain);
		});
		// A drop schedules the reconnect, so the alarm must be armed for it right away.
		ws.addEventListener("close", (event) => {
			connection.chain = connection.chain.then(async () => {
				this.#drop(connection, `socket closed (${event.code})`, null, Date.now());
				await this.#armAlarm();
			});
		});
		ws.addEventListener("error", () => {
			connection.chain = connection.chain.then(async () => {
				this.#drop(connection, "socket error", null, Date.now());
				await this.#armAlarm();
			});
		});
		this.#log("info", "gateway socket open", { gateway: redactedUrl(target.url), source: target.source });
		await this.#armAlarm();
	}

	async #onFrame(connection: Connection, data: string | ArrayBuffer): Promise<void> {
		if (this.#connection !== connection) return;
		let signals: ProtocolSignal[];
		try {
			signals = await connection.protocol.receive(data);
		} catch (error) {
			signals = [{ kind: "invalid", reason: `frame handling failed: ${String(error)}` }];
		}
		for (const signal of signals) await this.#onSignal(connection, signal);
	}

	async #onSignal(connection: Connection, signal: ProtocolSignal): Promise<void> {
		const now = Date.now();
		switch (signal.kind) {
			case "connect-sent":
				return;
			case "ready":
				return this.#onReady(connection, signal.hello, now);
			case "refused":
				return this.#onRefused(connection, signal.refusal, now);
			case "tick":
				connection.livenessDeadline = livenessDeadline(connection, now);
				return;
			case "agent":
			case "chat":
				this.#bumpLiveness(connection, now);
				return this.#onRunEvent(signal);
			case "shutdown": {
				this.#log("warn", "gateway shutting down", { restartExpectedMs: signal.restartExpectedMs });
				this.#drop(connection, "gateway shutdown", signal.restartExpectedMs, now);
				await this.#armAlarm();
				return;
			}
			case "gap":
				this.#log("warn", "gateway event gap: events were lost", {
					expected: signal.expected,
					got: signal.got,
				});
				return;
			case "invalid":
				this.#log("warn", "gateway frame rejected", { reason: signal.reason });
				if (!connection.protocol.ready) {
					this.#drop(connection, "handshake failed", null, now);
					await this.#armAlarm();
				}
				return;
		}
	}

	async #onReady(connection: Connection, hello: Hello, now: number): Promise<void> {
		connection.tickIntervalMs = hello.tickIntervalMs;
		this.#meta.set("failures", 0);
		this.#meta.delete("reconnect_at");
		this.#meta.delete("last_refusal");
		if (hello.deviceToken) {
			// Paired: later connects present the device token too (protocol docs, "hello-ok").
			this.#meta.set("device_token", hello.deviceToken);
			this.#meta.set("device_token_url", connection.target.url);
		}
		connection.livenessDeadline = livenessDeadline(connection, now);
		this.#log("info", "gateway connected", {
			protocol: hello.protocol,
			server: hello.serverVersion,
			tickIntervalMs: hello.tickIntervalMs,
			deviceTokenIssued: hello.deviceToken !== null,
		});
		if (this.#watches.count() === 0 && this.#meta.get("idle_close_at") === null) {
			this.#meta.set("idle_close_at", now + IDLE_CLOSE_MS);
		}
		await this.#armAlarm();
	}

	async #onRefused(connection: Connection, refusal: ConnectRefusal, now: number): Promise<void> {
		this.#meta.set("last_refusal", refusal.code);
		if (refusal.code === "AUTH_DEVICE_TOKEN_MISMATCH") {
			// The gateway no longer knows our device token: drop it and connect with the shared token.
			this.#meta.delete("device_token");
		}
		const hint =
			refusal.code === "PAIRING_REQUIRED"
				? "approve this device on the gateway (openclaw devices approve)"
				: refusal.pauseReconnect
					? "check the tenant's gateway token with PUT /api/admin/tenants/:tenantId/gateway"
					: undefined;
		this.#log("error", "gateway refused connect", {
			code: refusal.code,
			message: refusal.message,
			retryable: refusal.retryable,
			...(hint ? { hint } : {}),
		});
		this.#drop(
			connection,
			`connect refused (${refusal.code})`,
			refusal.retryAfterMs,
			now,
			refusal.pauseReconnect,
		);
		await this.#armAlarm();
	}

	async #onRunEvent(
		signal: { kind: "agent"; event: AgentEvent } | { kind: "chat"; event: ChatEvent },
	): Promise<void> {
		// Runs are started with idempotencyKey = execution id, so runId finds the watch directly.
		const watch =
			(signal.event.runId ? this.#watches.get(signal.event.runId) : null) ??
			this.#watches.find((candidate) => matchesExecution(signal.event, candidate.executionId));
		if (!watch) return;
		const result: MapResult =
			signal.kind === "agent"
				? mapAgentEvent(watch.run, signal.event)
				: mapChatEvent(watch.run, signal.event);
		for (const note of result.notes) this.#logNote(watch, note);
		this.#watches.saveRun(watch.executionId, result.state);
		if (result.updates.length > 0) this.#deliver(watch, result.updates);
	}

	#deliver(watch: WatchedExecution, updates: AgentUpdate[]): void {
		this.ctx.waitUntil(this.#delivery.push(watch.sessionId, watch.executionId, updates));
	}

	#bumpLiveness(connection: Connection, now: number): void {
		// Any frame proves the connection alive; the alarm armed for the old deadline re-arms itself.
		connection.livenessDeadline = livenessDeadline(connection, now);
	}

	/**
	 * The socket is gone (closed, silent, refused or replaced): tell the sessions watching through it,
	 * and schedule a reconnect while anything is still watched.
	 */
	#drop(
		connection: Connection,
		reason: string,
		retryAfterMs: number | null,
		now: number,
		refused = false,
	): void {
		if (this.#connection !== connection) return;
		this.#close(connection, 1000, reason.slice(0, 100));
		this.#log("warn", "gateway connection lost", { reason });
		this.#afterFailure(reason, retryAfterMs, now, refused);
	}

	async #failed(code: string, detail: string, retryAfterMs: number | null): Promise<void> {
		this.#log("error", "gateway connect failed", { code, detail });
		this.#afterFailure(code, retryAfterMs, Date.now(), code === "not_configured");
		await this.#armAlarm();
	}

	#afterFailure(reason: string, retryAfterMs: number | null, now: number, refused: boolean): void {
		const watched = this.#watches.all();
		this.#streamLost(watched, reason);
		if (watched.length === 0) {
			this.#meta.delete("reconnect_at");
			return;
		}
		const failures = (this.#meta.getNumber("failures") ?? 0) + 1;
		this.#meta.set("failures", failures);
		const delay = backoffDelay(failures, RECONNECT_BASE_MS, refused ? REFUSED_CAP_MS : RECONNECT_CAP_MS);
		this.#meta.set("reconnect_at", now + Math.max(delay, retryAfterMs ?? 0));
	}

	#close(connection: Connection, code: number, reason: string): void {
		if (this.#connection === connection) this.#connection = null;
		this.#meta.delete("idle_close_at");
		try {
			connection.ws.close(code, reason);
		} catch {
			// already closed
		}
	}

	/** Polling at the sessions goes back to its base pace (issue 3, "Push and poll together"). */
	#streamLost(watched: WatchedExecution[], reason: string): void {
		const bySession = new Map<string, string[]>();
		for (const watch of watched)
			bySession.set(watch.sessionId, [...(bySession.get(watch.sessionId) ?? []), watch.executionId]);
		for (const [sessionId, executionIds] of bySession) {
			const call = this.env.SESSION.getByName(sessionId)
				.agentStreamLost(sessionId, executionIds)
				.catch((error: unknown) =>
					this.#log("warn", "agentStreamLost failed", { sessionId, reason, error: String(error) }),
				);
			this.ctx.waitUntil(call);
		}
	}

	async #afterWatchesShrank(): Promise<void> {
		if (this.#watches.count() === 0) {
			this.#meta.delete("reconnect_at");
			if (this.#connection && this.#meta.get("idle_close_at") === null) {
				this.#meta.set("idle_close_at", Date.now() + IDLE_CLOSE_MS);
			}
		}
		await this.#armAlarm();
	}

	#logNote(watch: WatchedExecution, note: MappingNote): void {
		const fields = { executionId: watch.executionId, ...note };
		// Per-run seq gaps are normal on the real gateway (it numbers events other clients see):
		// informational; a diverged answer source is worth a warning.
		this.#log(note.kind === "diverged" ? "warn" : "info", `run event ${note.kind}`, fields);
	}

	#log(level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown> = {}): void {
		const line = JSON.stringify({ msg: `openclaw: ${msg}`, tenant: this.#meta.get("tenant_id"), ...fields });
		if (level === "error") console.error(line);
		else if (level === "warn") console.warn(line);
		else console.log(line);
	}
}

function livenessDeadline(connection: Connection, now: number): number {
	const interval = connection.tickIntervalMs ?? HANDSHAKE_TIMEOUT_MS;
	return now + interval * 2 + TICK_GRACE_MS;
}
