import type { SocketCloseEvent, SocketMessageEvent, WebSocketLike } from "@myndlens/progress-client";
import WebSocket from "ws";

/**
 * A socket like React Native's: no EventTarget, and its `on…` handlers get plain objects (React
 * Native's socket hands out `{data}`, `{code, reason}` objects). It wraps the `ws` package's socket
 * through its EventEmitter API, so no Event class of any kind is involved.
 */
export class PlainSocket implements WebSocketLike {
	static created = 0;
	onopen: ((event: unknown) => void) | null = null;
	onmessage: ((event: SocketMessageEvent) => void) | null = null;
	onclose: ((event: SocketCloseEvent) => void) | null = null;
	onerror: ((event: unknown) => void) | null = null;
	readonly #socket: WebSocket;

	constructor(url: string, protocols?: string | string[]) {
		PlainSocket.created += 1;
		this.#socket = new WebSocket(url, protocols);
		this.#socket.on("open", () => this.onopen?.({}));
		this.#socket.on("message", (data, isBinary) => {
			this.onmessage?.({ data: isBinary ? data : data.toString() });
		});
		this.#socket.on("close", (code, reason) => this.onclose?.({ code, reason: reason.toString() }));
		this.#socket.on("error", (error) => this.onerror?.({ message: error.message }));
	}

	send(data: string): void {
		this.#socket.send(data);
	}

	close(code?: number, reason?: string): void {
		this.#socket.close(code, reason);
	}
}
