import ReconnectingWebSocket from "partysocket/ws";
import { type LoggedFrame, ServerFrame } from "../src/protocol/frames.ts";
import { emptySession, foldFrame } from "./fold.ts";
import { sessionSocketProtocols, sessionSocketUrl } from "./socket-url.ts";
import type { ConnectionStatus, SessionView } from "./view.ts";

/** A WebSocket class: the platform's, or a stand-in (tests open sockets through the Worker's fetch). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket;

export interface ProgressClientOptions {
	/** The service's origin, e.g. `https://progress.example` (ws/wss is derived from it). */
	baseUrl: string;
	sessionId: string;
	/** The session's mobile token, or a function asked before every (re)connect so it can be refreshed. */
	token: string | (() => string | Promise<string>);
	WebSocket?: WebSocketConstructor;
	/** Reconnect backoff: first retry after `minDelayMs`, growing ×1.5 up to `maxDelayMs`. */
	minDelayMs?: number;
	maxDelayMs?: number;
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
const DEFAULT_KEEPALIVE_MS = 25_000;
/** The runtime answers the text `ping` with the text `pong` without waking the Durable Object. */
const PING = "ping";
const PONG = "pong";

/**
 * One session's live progress (issue 5): a reconnecting socket (partysocket) that resumes with
 * `?since=<last seq seen>`, validates every frame with the server's own zod schemas, drops
 * duplicates and folds the rest into a `SessionView` that listeners receive on every change.
 */
export class ProgressClient {
	readonly #options: ProgressClientOptions;
	readonly #socket: ReconnectingWebSocket;
	readonly #listeners = new Set<ProgressListener>();
	#session: SessionView = emptySession();
	#status: ConnectionStatus = "connecting";
	/** Set when the replay had a hole: the next connect asks for a snapshot instead of `since`. */
	#resync = false;
	#lastHeardAt = Date.now();
	#keepalive: ReturnType<typeof setInterval> | null = null;

	constructor(options: ProgressClientOptions) {
		this.#options = options;
		const minDelay = options.minDelayMs ?? DEFAULT_MIN_DELAY_MS;
		this.#socket = new ReconnectingWebSocket(
			() => this.#nextUrl(),
			() => this.#nextProtocols(),
			{
				...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
				minReconnectionDelay: minDelay,
				maxReconnectionDelay: options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS,
				reconnectionDelayGrowFactor: 1.5,
				// A connection must stay up this long before the backoff resets to its minimum.
				minUptime: 5_000,
				connectionTimeout: 5_000,
				// Nothing the client sends is worth replaying on a new socket (only pings).
				maxEnqueuedMessages: 0,
			},
		);
		this.#socket.addEventListener("open", () => {
			this.#lastHeardAt = Date.now();
			this.#setStatus("live");
		});
		this.#socket.addEventListener("close", () => {
			if (this.#status !== "closed") this.#setStatus("reconnecting");
		});
		this.#socket.addEventListener("message", (event) => this.#receive(event.data));
		const keepaliveMs = options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
		this.#keepalive = setInterval(() => this.#checkAlive(keepaliveMs), keepaliveMs);
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
		return () => this.#listeners.delete(listener);
	}

	/** Drops the current socket and connects again at once, resuming from the last seq seen. */
	reconnect(): void {
		if (this.#status === "closed") return;
		this.#socket.reconnect(4000, "client reconnect");
	}

	close(): void {
		if (this.#keepalive !== null) clearInterval(this.#keepalive);
		this.#keepalive = null;
		this.#setStatus("closed");
		this.#socket.close(1000, "client closed");
		this.#listeners.clear();
	}

	#nextUrl(): string {
		const { baseUrl, sessionId } = this.#options;
		const since = this.#resync ? null : this.#session.seq;
		this.#resync = false;
		return sessionSocketUrl(baseUrl, sessionId, since);
	}

	/** Asked before every (re)connect, so a refreshed token is used; it never goes in the URL. */
	async #nextProtocols(): Promise<string[]> {
		const { token } = this.#options;
		return sessionSocketProtocols(typeof token === "function" ? await token() : token);
	}

	#receive(data: unknown): void {
		this.#lastHeardAt = Date.now();
		if (data === PONG) return;
		const parsed = parseFrame(data);
		if (!parsed.ok) {
			this.#options.onInvalidFrame?.(String(data), parsed.reason);
			return;
		}
		const frame = parsed.frame;
		const last = this.#session.seq;
		// The server promises consecutive seqs per connection; a hole means the replay cannot be trusted.
		if (isLogged(frame) && last !== null && frame.seq > last + 1) {
			this.#resync = true;
			this.reconnect();
			return;
		}
		const next = foldFrame(this.#session, frame);
		if (next === this.#session) return;
		this.#session = next;
		if (shows(frame) && this.#isVisible()) this.#ack(frame.seq);
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

	/** Tells the server the user saw up to `seq`: a completion seen here is not also pushed (issue 10). */
	#ack(seq: number): void {
		try {
			this.#socket.send(JSON.stringify({ type: "ack", seq }));
		} catch {
			// not open: the push that follows is the fallback
		}
	}

	#checkAlive(keepaliveMs: number): void {
		if (this.#status !== "live") return;
		// A half-open socket (a phone that changed networks) never closes by itself.
		if (Date.now() - this.#lastHeardAt > 2 * keepaliveMs) {
			this.reconnect();
			return;
		}
		this.#socket.send(PING);
	}

	#setStatus(status: ConnectionStatus): void {
		if (this.#status === status) return;
		this.#status = status;
		this.#notify();
	}

	#notify(): void {
		for (const listener of this.#listeners) listener(this.#session, this.#status);
	}
}

type ParsedFrame = { ok: true; frame: ServerFrame } | { ok: false; reason: string };

/** Every frame is checked against the server's own wire schema before it can change anything. */
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
