/**
 * The little of a WebSocket the SDK uses, typed structurally so that the browser's `WebSocket`, React
 * Native's, Node's global one (22+) and the `ws` package's class all fit, and nothing else is assumed:
 * the SDK only sets the `on…` handler properties (never `addEventListener`), reads `data`, `code` and
 * `reason` off whatever objects the socket hands them, and never constructs an `Event`. React Native
 * (Hermes) has no `Event`, `EventTarget`, `MessageEvent` or `CloseEvent` globals, and its socket hands
 * out plain objects.
 */

/**
 * A handler type checked bivariantly (like a method's parameter), so a socket whose handlers take a
 * richer event (`MessageEvent`, `ws`'s `WebSocket.MessageEvent`) still fits.
 */
type Handler<E> = { bivarianceHack(event: E): void }["bivarianceHack"];

export interface SocketMessageEvent {
	/** A text frame arrives as a string (the server sends only text). */
	readonly data: unknown;
}

export interface SocketCloseEvent {
	readonly code?: number;
	readonly reason?: string;
}

/** What the SDK needs of one socket. */
export interface WebSocketLike {
	onopen: Handler<unknown> | null;
	onmessage: Handler<SocketMessageEvent> | null;
	onclose: Handler<SocketCloseEvent> | null;
	onerror: Handler<unknown> | null;
	send(data: string): void;
	close(code?: number, reason?: string): void;
}

/** A WebSocket class: the platform's, `ws`'s, or a stand-in (tests). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The platform's WebSocket class, when it has one (browsers, React Native, Node ≥ 22). */
export function platformWebSocket(): WebSocketConstructor | null {
	const candidate = (globalThis as { WebSocket?: unknown }).WebSocket;
	return typeof candidate === "function" ? (candidate as WebSocketConstructor) : null;
}
