import type { MetaStore } from "../durable/meta.ts";
import type { Env } from "../env.ts";
import { backoffDelay } from "../pipeline/backoff.ts";
import { loadDeviceIdentity } from "./device-identity.ts";
import type { AgentEvent, ChatEvent } from "./frames.ts";
import { type ConnectRefusal, GatewayProtocol, type Hello, type ProtocolSignal } from "./protocol-client.ts";
import { type GatewayTarget, gatewayFor, redactedUrl, upgradeUrl } from "./registry.ts";

/*
 * The Gateway DO's connection lifecycle (split from gateway-do.ts): open the outbound WebSocket,
 * speak protocol v4 through GatewayProtocol, watch its liveness, and after a loss schedule the
 * reconnect with capped backoff. No timers: every deadline (connect, handshake, ticks, stability,
 * reconnect) is a job the Gateway DO's one alarm runs through `onAlarm`.
 */

/** The upgrade `fetch` (and the lookups before it) must finish this soon, or it is abandoned. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** `hello-ok` must arrive this soon after the socket opens. */
export const HANDSHAKE_TIMEOUT_MS = 15_000;
/** Two tick intervals plus this without a frame means the connection is dead. */
export const TICK_GRACE_MS = 5_000;
export const RECONNECT_BASE_MS = 1_000;
export const RECONNECT_CAP_MS = 60_000;
/** Refusals a retry cannot fix (bad token, pairing needed) back off much further. */
export const REFUSED_CAP_MS = 5 * 60_000;
/** The failure count resets only once a connection stayed up a tick interval, at least this long. */
export const STABLE_AFTER_MS = 10_000;

export type RunSignal = { kind: "agent"; event: AgentEvent } | { kind: "chat"; event: ChatEvent };

/** What the connection needs from the Gateway DO that owns it. */
export interface LinkHost {
	readonly env: Env;
	readonly meta: MetaStore;
	waitUntil(promise: Promise<unknown>): void;
	/** Runs the handling of one frame from the gateway (the owner counts its work); hands back what it does. */
	onFrame<T>(step: () => T): T;
	/** The outbound socket opened or closed (while it is open the object cannot hibernate). */
	socketOpen(open: boolean): void;
	/** Whether any execution is watched (a connection is wanted). */
	watching(): boolean;
	/** A promise only when the event's handling must wait for something (the alarm, rarely). */
	onRunEvent(signal: RunSignal): void | Promise<void>;
	/** The stream dropped or could not be opened while executions were watched. */
	streamLost(reason: string): void;
	/** Re-arms the one alarm for whatever is due next (`jobs()` included). */
	armAlarm(): Promise<void>;
	/** A connection became ready. */
	onReady(now: number): Promise<void>;
	log(level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>): void;
}

/** The running connection; everything about it dies with the socket. */
interface Connection {
	ws: WebSocket;
	protocol: GatewayProtocol;
	target: GatewayTarget;
	/**
	 * Frames are handled one at a time, in arrival order; a failure drops the connection. A frame that
	 * arrives while none waits is handled at once; one whose handling must wait (the handshake, the
	 * alarm) makes the frames after it queue in `steps`, drained by `draining`.
	 */
	steps: Step[];
	draining: Promise<void> | null;
	tickIntervalMs: number | null;
	/** When silence means the connection is dead (in memory: it only matters while this socket is up). */
	livenessDeadline: number;
	/** After failures: when this connection counts as stable and the failure count resets. */
	stableAt: number | null;
}

/** A connect under way, until its socket is open; abandoned on timeout or a gateway change. */
interface Attempt {
	controller: AbortController;
	deadline: number;
}

/** The handling of one frame (or of the socket's end): a promise only when it must wait for something. */
type Step = () => void | Promise<void>;

/** A frame whose handling threw: one invalid signal, as for any frame that cannot be read. */
function frameFailed(error: unknown): ProtocolSignal[] {
	return [{ kind: "invalid", reason: `frame handling failed: ${String(error)}` }];
}

export class GatewayLink {
	readonly #host: LinkHost;
	#connection: Connection | null = null;
	#attempt: Attempt | null = null;

	constructor(host: LinkHost) {
		this.#host = host;
	}

	get connected(): boolean {
		return this.#connection?.protocol.ready ?? false;
	}

	/** A socket is open but not ready, or a connect is under way. */
	get connecting(): boolean {
		return this.#attempt !== null || (this.#connection !== null && !this.#connection.protocol.ready);
	}

	get open(): boolean {
		return this.#connection !== null;
	}

	get source(): GatewayTarget["source"] | null {
		return this.#connection?.target.source ?? null;
	}

	/** When the alarm has connection work to do. */
	jobs(now: number): number[] {
		const jobs: number[] = [];
		const connection = this.#connection;
		if (connection) {
			jobs.push(connection.livenessDeadline);
			if (connection.stableAt !== null) jobs.push(connection.stableAt);
		}
		if (this.#attempt) jobs.push(this.#attempt.deadline);
		// Idle and wanted: the scheduled reconnect, or now (after a restart nothing else would).
		if (!connection && !this.#attempt && this.#host.watching())
			jobs.push(this.#host.meta.getNumber("reconnect_at") ?? now);
		return jobs;
	}

	/** The alarm's share: deadlines that passed, a stable connection, a reconnect that is due. */
	onAlarm(now: number): void {
		const attempt = this.#attempt;
		if (attempt && attempt.deadline <= now) {
			this.#abandon(attempt, "connect timed out");
			this.#afterFailure("connect_timeout", null, now, false);
			this.#host.log("error", "gateway connect failed", {
				code: "connect_timeout",
				detail: `no answer within ${CONNECT_TIMEOUT_MS} ms`,
			});
		}
		const connection = this.#connection;
		if (connection && connection.livenessDeadline <= now) {
			const phase = connection.protocol.ready ? "no tick from the gateway" : "no hello-ok from the gateway";
			this.#drop(connection, phase, null, now);
		} else if (connection) this.#checkStable(connection, now);
	}

	/** Connects when wanted, nothing is open or under way and no backoff is pending. */
	reconnectIfDue(now: number): void {
		const reconnectAt = this.#host.meta.getNumber("reconnect_at");
		if (this.#host.watching() && !this.#connection && (reconnectAt === null || reconnectAt <= now))
			this.start();
	}

	start(): void {
		if (this.#connection || this.#attempt) return;
		const attempt: Attempt = { controller: new AbortController(), deadline: Date.now() + CONNECT_TIMEOUT_MS };
		this.#attempt = attempt;
		const run = this.#open(attempt)
			.catch((error: unknown) =>
				this.#attempt === attempt ? this.#failed("connect_error", String(error), null) : undefined,
			)
			.finally(() => {
				if (this.#attempt === attempt) this.#attempt = null;
			});
		this.#host.waitUntil(run);
	}

	/** The operator changed the gateway: whatever is open or under way used the old one. */
	restart(): void {
		if (this.#attempt) this.#abandon(this.#attempt, "gateway changed");
		if (this.#connection) this.#close(this.#connection, 1000, "gateway changed");
		if (this.#host.watching()) this.start();
	}

	closeIdle(): void {
		if (!this.#connection) return;
		this.#close(this.#connection, 1000, "idle");
		this.#host.log("info", "gateway socket closed: nothing watched");
	}

	#abandon(attempt: Attempt, reason: string): void {
		if (this.#attempt === attempt) this.#attempt = null;
		attempt.controller.abort(new Error(reason));
	}

	async #open(attempt: Attempt): Promise<void> {
		const host = this.#host;
		const tenantId = host.meta.get("tenant_id");
		const lookup = tenantId
			? await gatewayFor(host.env, tenantId)
			: { ok: false as const, reason: "no tenant watched yet" };
		if (this.#attempt !== attempt) return;
		if (!lookup.ok) return this.#failed("not_configured", lookup.reason, null);
		const target = lookup.target;
		let response: Response;
		try {
			response = await fetch(upgradeUrl(target.url), {
				headers: { Upgrade: "websocket" },
				signal: attempt.controller.signal,
			});
		} catch (error) {
			if (this.#attempt !== attempt) return;
			return this.#failed("unreachable", `${redactedUrl(target.url)}: ${String(error)}`, null);
		}
		const ws = response.webSocket;
		if (!ws) {
			await response.body?.cancel();
			if (this.#attempt !== attempt) return;
			return this.#failed("upgrade_refused", `${redactedUrl(target.url)} answered ${response.status}`, null);
		}
		ws.accept();
		const identity = await loadDeviceIdentity(host.meta);
		if (this.#attempt !== attempt) {
			ws.close(1000, "connect abandoned");
			return;
		}
		this.#attempt = null;
		const deviceToken =
			host.meta.get("device_token_url") === target.url ? host.meta.get("device_token") : null;
		const protocol = new GatewayProtocol({ token: target.token, deviceToken, identity }, (text) =>
			ws.send(text),
		);
		const connection: Connection = {
			ws,
			protocol,
			target,
			steps: [],
			draining: null,
			tickIntervalMs: null,
			livenessDeadline: Date.now() + HANDSHAKE_TIMEOUT_MS,
			stableAt: null,
		};
		this.#connection = connection;
		host.socketOpen(true);
		host.meta.delete("idle_close_at");
		ws.addEventListener("message", (event) => {
			const data = event.data;
			this.#enqueue(connection, () => this.#onFrame(connection, data));
		});
		// A drop schedules the reconnect, so the alarm must be armed for it right away.
		const lost = (reason: string) =>
			this.#enqueue(connection, async () => {
				this.#drop(connection, reason, null, Date.now());
				await host.armAlarm();
			});
		ws.addEventListener("close", (event) => lost(`socket closed (${event.code})`));
		ws.addEventListener("error", () => lost("socket error"));
		host.log("info", "gateway socket open", { gateway: redactedUrl(target.url), source: target.source });
		await host.armAlarm();
	}

	/**
	 * One step of the connection's frames, in order (see Connection): at once when nothing waits (issue
	 * 17: an answer's events take no promise and no `waitUntil` each), else after the steps before it.
	 * A step that throws drops the connection, so it reconnects; the steps after it still run (they
	 * find the connection replaced and do nothing).
	 */
	#enqueue(connection: Connection, step: Step): void {
		if (connection.draining) {
			connection.steps.push(step);
			return;
		}
		const waiting = this.#run(step);
		if (!waiting) return;
		connection.draining = this.#drain(connection, waiting);
		this.#host.waitUntil(connection.draining);
	}

	/** Runs one step as the owner counts it; a step that throws is a rejected promise (see #drain). */
	#run(step: Step): void | Promise<void> {
		try {
			return this.#host.onFrame(step);
		} catch (error) {
			return Promise.reject(error);
		}
	}

	/** Waits for the step that had to wait, then runs the steps that queued behind it. */
	async #drain(connection: Connection, first: Promise<void>): Promise<void> {
		let pending: void | Promise<void> = first;
		try {
			for (;;) {
				try {
					await pending;
				} catch (error) {
					this.#host.log("error", "gateway frame handling failed", { error: String(error) });
					this.#drop(connection, "frame handling failed", null, Date.now());
					await this.#host.armAlarm().catch(() => {});
				}
				const step = connection.steps.shift();
				if (!step) break;
				pending = this.#run(step);
			}
		} finally {
			// Only a failure outside a step ends the loop early: what queued behind it is not run out of order.
			connection.steps.length = 0;
			connection.draining = null;
		}
	}

	#onFrame(connection: Connection, data: string | ArrayBuffer): void | Promise<void> {
		if (this.#connection !== connection) return;
		let signals: ProtocolSignal[] | Promise<ProtocolSignal[]>;
		try {
			signals = connection.protocol.receive(data);
		} catch (error) {
			signals = frameFailed(error);
		}
		if (Array.isArray(signals)) return this.#onSignals(connection, signals, 0);
		return signals.then(
			(handed) => this.#onSignals(connection, handed, 0),
			(error: unknown) => this.#onSignals(connection, frameFailed(error), 0),
		);
	}

	/** The frame's signals from `from` on, in order: a signal whose handling waits holds the rest back. */
	#onSignals(connection: Connection, signals: ProtocolSignal[], from: number): void | Promise<void> {
		for (let i = from; i < signals.length; i++) {
			const waiting = this.#onSignal(connection, signals[i] as ProtocolSignal);
			if (waiting) return waiting.then(() => this.#onSignals(connection, signals, i + 1));
		}
	}

	#onSignal(connection: Connection, signal: ProtocolSignal): void | Promise<void> {
		const now = Date.now();
		switch (signal.kind) {
			case "connect-sent":
				return;
			case "ready":
				return this.#onReady(connection, signal.hello, now);
			case "refused":
				return this.#onRefused(connection, signal.refusal, now);
			case "tick":
				this.#alive(connection, now);
				return;
			case "agent":
			case "chat":
				this.#alive(connection, now);
				return this.#host.onRunEvent(signal);
			case "shutdown": {
				const restartExpectedMs = signal.restartExpectedMs;
				// The gateway's hint is honoured only up to the usual reconnect cap (a day would park the tenant).
				const waitMs = restartExpectedMs === null ? null : Math.min(restartExpectedMs, RECONNECT_CAP_MS);
				this.#host.log("warn", "gateway shutting down", { restartExpectedMs, waitMs });
				this.#drop(connection, "gateway shutdown", waitMs, now);
				return this.#host.armAlarm();
			}
			case "gap":
				return this.#host.log("warn", "gateway event gap: events were lost", { ...signal, kind: undefined });
			case "invalid":
				this.#host.log("warn", "gateway frame rejected", { reason: signal.reason });
				if (!connection.protocol.ready) {
					this.#drop(connection, "handshake failed", null, now);
					return this.#host.armAlarm();
				}
				return;
		}
	}

	async #onReady(connection: Connection, hello: Hello, now: number): Promise<void> {
		const meta = this.#host.meta;
		connection.tickIntervalMs = hello.tickIntervalMs;
		// A gateway that accepts and drops must not reset the backoff: only a stable connection does.
		if ((meta.getNumber("failures") ?? 0) > 0)
			connection.stableAt = now + Math.max(hello.tickIntervalMs, STABLE_AFTER_MS);
		meta.delete("reconnect_at");
		meta.delete("last_refusal");
		if (hello.deviceToken) {
			// Paired: later connects present the device token too (protocol docs, "hello-ok").
			meta.set("device_token", hello.deviceToken);
			meta.set("device_token_url", connection.target.url);
		}
		connection.livenessDeadline = livenessDeadline(connection, now);
		this.#host.log("info", "gateway connected", {
			protocol: hello.protocol,
			server: hello.serverVersion,
			tickIntervalMs: hello.tickIntervalMs,
			deviceTokenIssued: hello.deviceToken !== null,
		});
		await this.#host.onReady(now);
	}

	async #onRefused(connection: Connection, refusal: ConnectRefusal, now: number): Promise<void> {
		const meta = this.#host.meta;
		meta.set("last_refusal", refusal.code);
		if (refusal.code === "AUTH_DEVICE_TOKEN_MISMATCH" || refusal.code === "AUTH_SCOPE_MISMATCH") {
			// The gateway no longer knows our device token, or it no longer covers our scopes (auth.md:
			// not a bad token): drop it and connect with the shared token; the device's pairing decides.
			meta.delete("device_token");
		}
		const hint =
			refusal.code === "PAIRING_REQUIRED"
				? "approve this device on the gateway (openclaw devices approve)"
				: refusal.code === "AUTH_SCOPE_MISMATCH"
					? "re-approve this device's scopes (operator.read, operator.write) on the gateway"
					: refusal.pauseReconnect
						? "check the tenant's gateway token with PUT /api/admin/tenants/:tenantId/gateway"
						: undefined;
		this.#host.log("error", "gateway refused connect", {
			code: refusal.code,
			message: refusal.message,
			retryable: refusal.retryable,
			...(hint ? { hint } : {}),
		});
		const retryAfterMs =
			refusal.retryAfterMs === null ? null : Math.min(refusal.retryAfterMs, REFUSED_CAP_MS);
		this.#drop(connection, `connect refused (${refusal.code})`, retryAfterMs, now, refusal.pauseReconnect);
		await this.#host.armAlarm();
	}

	/** Any frame proves the connection alive; the alarm armed for the old deadline re-arms itself. */
	#alive(connection: Connection, now: number): void {
		connection.livenessDeadline = livenessDeadline(connection, now);
		this.#checkStable(connection, now);
	}

	#checkStable(connection: Connection, now: number): void {
		if (connection.stableAt === null || connection.stableAt > now || !connection.protocol.ready) return;
		connection.stableAt = null;
		this.#host.meta.set("failures", 0);
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
		this.#host.log("warn", "gateway connection lost", { reason });
		this.#afterFailure(reason, retryAfterMs, now, refused);
	}

	async #failed(code: string, detail: string, retryAfterMs: number | null): Promise<void> {
		this.#attempt = null;
		this.#host.log("error", "gateway connect failed", { code, detail });
		this.#afterFailure(code, retryAfterMs, Date.now(), code === "not_configured");
		await this.#host.armAlarm();
	}

	#afterFailure(reason: string, retryAfterMs: number | null, now: number, refused: boolean): void {
		const meta = this.#host.meta;
		this.#host.streamLost(reason);
		if (!this.#host.watching()) {
			meta.delete("reconnect_at");
			return;
		}
		const failures = (meta.getNumber("failures") ?? 0) + 1;
		meta.set("failures", failures);
		const delay = backoffDelay(failures, RECONNECT_BASE_MS, refused ? REFUSED_CAP_MS : RECONNECT_CAP_MS);
		meta.set("reconnect_at", now + Math.max(delay, retryAfterMs ?? 0));
	}

	#close(connection: Connection, code: number, reason: string): void {
		if (this.#connection === connection) {
			this.#connection = null;
			this.#host.socketOpen(false);
		}
		this.#host.meta.delete("idle_close_at");
		try {
			connection.ws.close(code, reason);
		} catch {
			// already closed
		}
	}
}

function livenessDeadline(connection: Connection, now: number): number {
	const interval = connection.tickIntervalMs ?? HANDSHAKE_TIMEOUT_MS;
	return now + interval * 2 + TICK_GRACE_MS;
}
