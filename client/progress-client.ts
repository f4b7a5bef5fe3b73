import { emptySession, foldFrame } from "./fold.ts";
import { CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED } from "./protocol/close-codes.ts";
import { type LoggedFrame, ServerFrame } from "./protocol/frames.ts";
import { sessionSocketProtocols, sessionSocketUrl } from "./socket-url.ts";
import type { ConnectionStatus, SessionView } from "./view.ts";
import { platformWebSocket, type WebSocketConstructor, type WebSocketLike } from "./websocket.ts";

export type { WebSocketConstructor, WebSocketLike } from "./websocket.ts";

/** The session's mobile token, or a function asked for one before every (re)connect. */
export type TokenProvider = string | (() => string | Promise<string>);

export interface ProgressClientOptions {
	/** The service's origin, e.g. `https://progress.example` (ws/wss is derived from it). */
	baseUrl: string;
	sessionId: string;
	/**
	 * The session's mobile token, or a function asked before every (re)connect so it can be refreshed.
	 * It travels only in the WebSocket subprotocol (`bearer.<token>`), never in the URL.
	 */
	token: TokenProvider;
	/** The WebSocket class; the platform's by default (pass `ws`'s on Node 20). */
	WebSocket?: WebSocketConstructor;
	/** Reconnect backoff: about `minDelayMs` after the first failure, growing ×1.5 up to `maxDelayMs`, jittered. */
	minDelayMs?: number;
	maxDelayMs?: number;
	/**
	 * One connection attempt — asking `token()`, opening the socket and hearing the server — must finish
	 * within this; otherwise it counts as failed and the next one is scheduled (a hung `token()` never
	 * blocks later attempts).
	 */
	connectTimeoutMs?: number;
	/** Every this often the client pings; a socket silent for two periods is treated as dead. */
	keepaliveMs?: number;
	/**
	 * Whether the user is looking at the app now (default: the page's visibility in a browser, else
	 * true). While visible, the client acknowledges the outcomes it shows, so they are not also pushed.
	 */
	visible?: boolean | (() => boolean);
	/** Frames the client could not use (not JSON, or not matching the wire schema). */
	onInvalidFrame?: (raw: string, reason: string) => void;
}

export type ProgressListener = (session: SessionView, status: ConnectionStatus) => void;

const DEFAULT_MIN_DELAY_MS = 500;
const DEFAULT_MAX_DELAY_MS = 10_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_KEEPALIVE_MS = 25_000;
/** A connection must stay live this long before the backoff starts again from its minimum. */
const MIN_UPTIME_MS = 5_000;
/** After a socket's `onerror`, how long to wait for its `onclose` before treating it as closed. */
const ERROR_GRACE_MS = 1_000;
/** The runtime answers the text `ping` with the text `pong` without waking the Durable Object. */
const PING = "ping";
const PONG = "pong";
/** Close codes the client itself uses (the range 4000–4999 is for applications). */
const CLOSE_NORMAL = 1000;
const CLOSE_RECONNECT = 4000;
const CLOSE_LOST = 1006;

type Timer = ReturnType<typeof setTimeout>;

/**
 * One session's live progress (issues 5 and 15). A small reconnect loop of its own — exponential
 * backoff with jitter, driven only by the socket's `onopen`/`onmessage`/`onclose`/`onerror`
 * properties, so it runs unchanged in browsers, Node and React Native (Hermes has no `Event`
 * classes; reconnecting-socket libraries that extend or construct them fail there). It resumes with
 * `?since=<last seq seen>`, validates every frame with the wire schemas, drops duplicates and folds
 * the rest into a `SessionView` that listeners receive on every change.
 *
 * A connection counts as `live` once the server is heard on it (a frame, or the `pong` to the ping
 * sent on open), so a socket the server accepts only to close it with 4401/4403 never shows as live.
 * On 4401/4403 the token is asked for once more; if that one is refused too, the status becomes
 * `unauthorized` and nothing is retried until `reconnect()`.
 */
export class ProgressClient {
	readonly #options: ProgressClientOptions;
	readonly #WebSocket: WebSocketConstructor;
	readonly #listeners = new Set<ProgressListener>();
	#session: SessionView = emptySession();
	#status: ConnectionStatus = "connecting";
	/** Bumped whenever an attempt or socket is given up: anything of an older one is ignored. */
	#generation = 0;
	#socket: WebSocketLike | null = null;
	/** Failed attempts since the last connection that stayed up: the backoff's exponent. */
	#failures = 0;
	/** Whether the token was refused (4401/4403) since the last live connection. */
	#refusedOnce = false;
	#everLive = false;
	#liveSince: number | null = null;
	/** Set when the replay had a hole: the next connect asks for a snapshot instead of `since`. */
	#resync = false;
	#lastHeardAt = Date.now();
	#attemptTimer: Timer | null = null;
	#retryTimer: Timer | null = null;
	#errorTimer: Timer | null = null;
	#keepalive: ReturnType<typeof setInterval> | null = null;

	constructor(options: ProgressClientOptions) {
		this.#options = options;
		const WebSocketClass = options.WebSocket ?? platformWebSocket();
		if (!WebSocketClass) {
			throw new TypeError(
				"ProgressClient needs a WebSocket class: this platform has none, so pass one as options.WebSocket (e.g. the ws package's).",
			);
		}
		this.#WebSocket = WebSocketClass;
		void this.#connect();
	}

	get session(): SessionView {
		return this.#session;
	}

	get status(): ConnectionStatus {
		return this.#status;
	}

	/** Calls `listener` now and on every change; returns the function that unsubscribes it. */
	subscribe(listener: ProgressListener): () => void {
		this.#listeners.add(listener);
		listener(this.#session, this.#status);
		return () => {
			this.#listeners.delete(listener);
		};
	}

	/**
	 * Drops the current socket (or the wait for the next attempt) and connects again at once, resuming
	 * from the last seq seen. After `unauthorized`, this is what tries again (asking `token()` anew).
	 */
	reconnect(): void {
		if (this.#status === "closed") return;
		this.#refusedOnce = false;
		this.#failures = 0;
		void this.#connect();
	}

	/** Closes the socket for good: no more reconnects, and listeners are dropped. */
	close(): void {
		if (this.#status === "closed") return;
		this.#abandon(CLOSE_NORMAL, "client closed");
		this.#setStatus("closed");
		this.#listeners.clear();
	}

	/** One connection attempt: a token, a socket, and the server heard within the connect timeout. */
	async #connect(): Promise<void> {
		this.#abandon(CLOSE_RECONNECT, "client reconnect");
		const generation = this.#generation;
		this.#setStatus(this.#everLive ? "reconnecting" : "connecting");
		const timeoutMs = this.#options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
		this.#attemptTimer = setTimeout(() => this.#attemptFailed(generation), timeoutMs);
		let protocols: string[];
		try {
			protocols = sessionSocketProtocols(await this.#token());
		} catch {
			// A token provider that throws or rejects: a failed attempt like any other.
			this.#attemptFailed(generation);
			return;
		}
		if (generation !== this.#generation) return; // given up (timeout, reconnect, close) meanwhile
		const url = this.#nextUrl();
		let socket: WebSocketLike;
		try {
			socket = new this.#WebSocket(url, protocols);
		} catch {
			this.#attemptFailed(generation);
			return;
		}
		this.#socket = socket;
		socket.onopen = () => {
			if (generation !== this.#generation) return;
			// Answered by the runtime with `pong`: hearing it proves the server kept this socket.
			this.#send(PING);
		};
		socket.onmessage = (event) => {
			if (generation !== this.#generation) return;
			this.#heard();
			this.#receive(event?.data);
		};
		socket.onclose = (event) => this.#closed(generation, event?.code ?? CLOSE_LOST);
		socket.onerror = () => {
			if (generation !== this.#generation || this.#errorTimer !== null) return;
			// Every platform follows an error with a close; this only covers one that does not.
			this.#errorTimer = setTimeout(() => this.#closed(generation, CLOSE_LOST), ERROR_GRACE_MS);
		};
	}

	/** The token, asked anew for every attempt; always awaited, so no socket opens in the same turn. */
	async #token(): Promise<string> {
		const { token } = this.#options;
		const value = typeof token === "function" ? await token() : await token;
		if (typeof value !== "string" || value === "") throw new TypeError("the token provider gave no token");
		return value;
	}

	#nextUrl(): string {
		const { baseUrl, sessionId } = this.#options;
		const since = this.#resync ? null : this.#session.seq;
		this.#resync = false;
		return sessionSocketUrl(baseUrl, sessionId, since);
	}

	/** The server spoke on the current socket: the first time, the connection is live. */
	#heard(): void {
		this.#lastHeardAt = Date.now();
		if (this.#status === "live") return;
		this.#clearTimer("attempt");
		this.#everLive = true;
		this.#refusedOnce = false;
		this.#liveSince = Date.now();
		const keepaliveMs = this.#options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
		const generation = this.#generation;
		this.#keepalive = setInterval(() => this.#checkAlive(generation, keepaliveMs), keepaliveMs);
		this.#setStatus("live");
	}

	#closed(generation: number, code: number): void {
		if (generation !== this.#generation) return;
		const uptime = this.#liveSince === null ? 0 : Date.now() - this.#liveSince;
		this.#abandon(CLOSE_RECONNECT, "closed");
		if (code === CLOSE_UNAUTHORIZED || code === CLOSE_FORBIDDEN) {
			if (this.#refusedOnce) {
				// Refused again with a token asked for just now: only the app can fix this.
				this.#setStatus("unauthorized");
				return;
			}
			this.#refusedOnce = true;
			void this.#connect();
			return;
		}
		if (uptime >= MIN_UPTIME_MS) this.#failures = 0;
		this.#scheduleRetry();
	}

	#attemptFailed(generation: number): void {
		if (generation !== this.#generation) return;
		this.#abandon(CLOSE_RECONNECT, "connect timeout");
		this.#scheduleRetry();
	}

	#scheduleRetry(): void {
		const min = this.#options.minDelayMs ?? DEFAULT_MIN_DELAY_MS;
		const max = this.#options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
		const ceiling = Math.min(max, min * 1.5 ** this.#failures);
		this.#failures += 1;
		// "Equal jitter": half the delay fixed, half random, so phones dropped together do not return together.
		const delay = ceiling / 2 + Math.random() * (ceiling / 2);
		this.#setStatus(this.#everLive ? "reconnecting" : "connecting");
		this.#retryTimer = setTimeout(() => {
			this.#retryTimer = null;
			void this.#connect();
		}, delay);
	}

	/** Gives up the current attempt or socket: its late events are ignored, its timers stopped. */
	#abandon(code: number, reason: string): void {
		this.#generation += 1;
		this.#liveSince = null;
		for (const timer of ["attempt", "retry", "error", "keepalive"] as const) this.#clearTimer(timer);
		const socket = this.#socket;
		this.#socket = null;
		if (!socket) return;
		// No-ops rather than null: some sockets (ws) throw on an error event nobody listens to.
		const ignore = () => {};
		socket.onopen = ignore;
		socket.onmessage = ignore;
		socket.onclose = ignore;
		socket.onerror = ignore;
		try {
			socket.close(code, reason);
		} catch {
			// already closed or still connecting on a platform that refuses to close it
		}
	}

	#clearTimer(which: "attempt" | "retry" | "error" | "keepalive"): void {
		switch (which) {
			case "attempt":
				if (this.#attemptTimer !== null) clearTimeout(this.#attemptTimer);
				this.#attemptTimer = null;
				return;
			case "retry":
				if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
				this.#retryTimer = null;
				return;
			case "error":
				if (this.#errorTimer !== null) clearTimeout(this.#errorTimer);
				this.#errorTimer = null;
				return;
			case "keepalive":
				if (this.#keepalive !== null) clearInterval(this.#keepalive);
				this.#keepalive = null;
				return;
		}
	}

	#send(data: string): void {
		try {
			this.#socket?.send(data);
		} catch {
			// not open (any more): the close that follows reconnects
		}
	}

	#receive(data: unknown): void {
		if (data === PONG) return;
		const parsed = parseFrame(data);
		if (!parsed.ok) {
			this.#options.onInvalidFrame?.(typeof data === "string" ? data : String(data), parsed.reason);
			return;
		}
		const frame = parsed.frame;
		const last = this.#session.seq;
		// The server promises consecutive seqs per connection; a hole means the replay cannot be trusted.
		if (isLogged(frame) && last !== null && frame.seq > last + 1) {
			this.#resync = true;
			void this.#connect();
			return;
		}
		const next = foldFrame(this.#session, frame);
		if (next === this.#session) return;
		this.#session = next;
		if (shows(frame) && this.#isVisible()) this.#send(JSON.stringify({ type: "ack", seq: frame.seq }));
		this.#notify();
	}

	/** Whether the user is looking: the app says so, else a page's visibility, else yes. */
	#isVisible(): boolean {
		const { visible } = this.#options;
		if (visible !== undefined) return typeof visible === "function" ? visible() : visible;
		// Read through globalThis: React Native and Node have no document, and nothing is touched at load.
		const page = (globalThis as { document?: { visibilityState?: string } }).document;
		return page?.visibilityState === undefined || page.visibilityState === "visible";
	}

	#checkAlive(generation: number, keepaliveMs: number): void {
		if (generation !== this.#generation) return;
		// A half-open socket (a phone that changed networks) never closes by itself.
		if (Date.now() - this.#lastHeardAt > 2 * keepaliveMs) {
			this.#closed(generation, CLOSE_LOST);
			return;
		}
		this.#send(PING);
	}

	#setStatus(status: ConnectionStatus): void {
		if (this.#status === status || this.#status === "closed") return;
		this.#status = status;
		this.#notify();
	}

	#notify(): void {
		for (const listener of this.#listeners) listener(this.#session, this.#status);
	}
}

type ParsedFrame = { ok: true; frame: ServerFrame } | { ok: false; reason: string };

/** Every frame is checked against the wire schema before it can change anything. */
function parseFrame(data: unknown): ParsedFrame {
	if (typeof data !== "string") return { ok: false, reason: "not a text frame" };
	let json: unknown;
	try {
		json = JSON.parse(data);
	} catch {
		return { ok: false, reason: "not JSON" };
	}
	const parsed = ServerFrame.safeParse(json);
	return parsed.success ? { ok: true, frame: parsed.data } : { ok: false, reason: parsed.error.message };
}

/** A frame the user sees a run end in: a snapshot, or a stage frame of an outcome (10 done, or a failure). */
function shows(frame: ServerFrame): frame is Extract<ServerFrame, { seq: number }> {
	if ("event" in frame) {
		return frame.data.status === "failed" || (frame.data.stage === 10 && frame.data.status === "completed");
	}
	return frame.type === "snapshot";
}

function isLogged(frame: ServerFrame): frame is LoggedFrame {
	return "event" in frame || frame.type === "progress" || frame.type === "response_chunk";
}
