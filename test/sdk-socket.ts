import { exports } from "cloudflare:workers";
import type { SocketCloseEvent, SocketMessageEvent, WebSocketConstructor } from "../client/index.ts";

/**
 * A WebSocket class for the SDK under test that opens its sockets through the real Worker
 * (`exports.default.fetch` with an Upgrade header), plus a switch that plays a lost network:
 * while `offline`, every connection attempt fails, and `drop()` cuts the open sockets.
 *
 * Like React Native's socket it is no `EventTarget` and hands its `on…` handlers plain objects (issue
 * 15): the SDK must work with exactly that.
 */
export interface TestNetwork {
	WebSocket: WebSocketConstructor;
	/** Every URL the SDK connected to, in order (to see its `since`). */
	readonly urls: string[];
	/** The subprotocols offered on each connection, in order (the token travels there). */
	readonly protocols: string[][];
	offline: boolean;
	/** Closes every open socket from the phone's side, as a dead network would. */
	drop(): void;
	/** How many sockets are open now. */
	openCount(): number;
}

export function testNetwork(): TestNetwork {
	const open = new Set<WorkerSocket>();
	const network: TestNetwork = {
		urls: [],
		protocols: [],
		offline: false,
		drop() {
			for (const socket of open) socket.close(4001, "network lost");
		},
		openCount: () => open.size,
		WebSocket: undefined as unknown as TestNetwork["WebSocket"],
	};

	class WorkerSocket {
		static readonly CONNECTING = 0;
		static readonly OPEN = 1;
		static readonly CLOSING = 2;
		static readonly CLOSED = 3;
		readonly url: string;
		readyState = 0;
		binaryType = "blob";
		readonly bufferedAmount = 0;
		readonly extensions = "";
		protocol = "";
		onopen: ((event: unknown) => void) | null = null;
		onmessage: ((event: SocketMessageEvent) => void) | null = null;
		onclose: ((event: SocketCloseEvent) => void) | null = null;
		onerror: ((event: unknown) => void) | null = null;
		readonly #offered: string[];
		#socket: WebSocket | null = null;

		constructor(url: string, protocols?: string | string[]) {
			this.url = url;
			this.#offered = protocols === undefined ? [] : Array.isArray(protocols) ? protocols : [protocols];
			network.urls.push(url);
			network.protocols.push(this.#offered);
			void this.#connect();
		}

		async #connect(): Promise<void> {
			if (network.offline) return this.#fail("offline");
			const response = await exports.default.fetch(
				new Request(this.url.replace(/^ws/, "http"), {
					headers: {
						Upgrade: "websocket",
						...(this.#offered.length > 0 ? { "Sec-WebSocket-Protocol": this.#offered.join(", ") } : {}),
					},
				}),
			);
			this.protocol = response.headers.get("Sec-WebSocket-Protocol") ?? "";
			const socket = response.webSocket;
			if (response.status !== 101 || !socket) return this.#fail(`upgrade answered ${response.status}`);
			if (this.readyState !== 0) {
				// closed by the SDK while the upgrade was in flight
				socket.accept();
				socket.close(1000, "abandoned");
				return;
			}
			this.#socket = socket;
			socket.addEventListener("message", (event) => {
				this.onmessage?.({ data: event.data });
			});
			socket.addEventListener("close", (event) => this.#closed(event.code, event.reason));
			socket.accept();
			open.add(this);
			this.readyState = 1;
			this.onopen?.({ type: "open" });
		}

		send(data: string): void {
			this.#socket?.send(data);
		}

		close(code = 1000, reason = ""): void {
			if (this.readyState >= 2) return;
			try {
				this.#socket?.close(code, reason);
			} catch {
				// already closing
			}
			this.#closed(code, reason);
		}

		#fail(reason: string): void {
			setTimeout(() => {
				if (this.readyState >= 2) return;
				this.onerror?.({ type: "error" });
				this.#closed(1006, reason);
			}, 0);
		}

		#closed(code: number, reason: string): void {
			if (this.readyState === 3) return;
			this.readyState = 3;
			open.delete(this);
			this.onclose?.({ code, reason });
		}
	}

	network.WebSocket = WorkerSocket;
	return network;
}
