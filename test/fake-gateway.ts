import { runInDurableObject } from "cloudflare:test";
import { afterAll, beforeAll } from "vitest";
import { gatewayStub } from "./openclaw-helpers.ts";

/**
 * An OpenClaw Gateway played inside workerd, for what the simulator cannot script per tenant: a
 * connect that never answers, a shutdown with an absurd restart hint, any event sequence. The Gateway
 * DO reaches it through the ordinary `fetch`: requests to `ws://127.0.0.1:9/fake/<name>` are answered
 * here with a WebSocketPair (port 9 on loopback refuses connections, so nothing leaks to the network).
 * Its sockets live in the Gateway DO's I/O context, so a test sends through `send()`, which runs
 * inside that object.
 */

const FAKE_HOST = "127.0.0.1:9";
const fakes = new Map<string, FakeGateway>();

export interface FakeConnection {
	ws: WebSocket;
	/** Frames the Gateway DO sent, parsed. */
	received: Array<Record<string, unknown>>;
	ready: boolean;
	seq: number;
}

export class FakeGateway {
	readonly name: string;
	readonly url: string;
	readonly connections: FakeConnection[] = [];
	/** `hang`: the upgrade never answers (until the caller aborts it). */
	mode: "answer" | "hang" = "answer";
	tickIntervalMs = 30_000;
	fetches = 0;
	aborted = 0;

	constructor(name = crypto.randomUUID()) {
		this.name = name;
		this.url = `ws://${FAKE_HOST}/fake/${name}`;
		fakes.set(`/fake/${name}`, this);
	}

	get last(): FakeConnection {
		const connection = this.connections.at(-1);
		if (!connection) throw new Error("no connection to the fake gateway yet");
		return connection;
	}

	/** Sends an event frame on the newest connection, from inside the tenant's Gateway DO. */
	async send(tenantId: string, event: string, payload: unknown): Promise<void> {
		const connection = this.last;
		await runInDurableObject(gatewayStub(tenantId), () => {
			connection.seq += 1;
			connection.ws.send(JSON.stringify({ type: "event", event, payload, seq: connection.seq }));
		});
	}

	async close(tenantId: string, code = 1012): Promise<void> {
		const connection = this.last;
		await runInDurableObject(gatewayStub(tenantId), () => connection.ws.close(code, "fake gateway closed"));
	}

	answer(init: RequestInit | undefined): Promise<Response> {
		this.fetches += 1;
		const signal = init?.signal ?? null;
		if (this.mode === "hang") {
			return new Promise((_resolve, reject) => {
				signal?.addEventListener("abort", () => {
					this.aborted += 1;
					reject(new Error("upgrade aborted"));
				});
			});
		}
		const pair = new WebSocketPair();
		const [client, server] = [pair[0], pair[1]];
		server.accept();
		const connection: FakeConnection = { ws: server, received: [], ready: false, seq: 0 };
		this.connections.push(connection);
		server.addEventListener("message", (event) => {
			const frame = JSON.parse(String(event.data)) as Record<string, unknown>;
			connection.received.push(frame);
			if (frame.method !== "connect") return;
			connection.ready = true;
			server.send(
				JSON.stringify({
					type: "res",
					id: frame.id,
					ok: true,
					payload: {
						type: "hello-ok",
						protocol: 4,
						server: { version: "fake" },
						auth: { role: "operator", scopes: ["operator.read", "operator.write"] },
						policy: { maxPayload: 1_000_000, tickIntervalMs: this.tickIntervalMs },
					},
				}),
			);
		});
		server.send(
			JSON.stringify({
				type: "event",
				event: "connect.challenge",
				payload: { nonce: crypto.randomUUID(), ts: Date.now(), capabilities: [] },
			}),
		);
		return Promise.resolve(new Response(null, { status: 101, webSocket: client }));
	}
}

/** Routes the Gateway DO's upgrade fetches for fake gateways to them, for this file's tests. */
export function fakeGatewaysInstalled(): void {
	const original = globalThis.fetch;
	beforeAll(() => {
		globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
			const url = new URL(input instanceof Request ? input.url : String(input));
			const fake = url.host === FAKE_HOST ? fakes.get(url.pathname) : undefined;
			return fake ? fake.answer(init) : original(input, init);
		};
	});
	afterAll(() => {
		globalThis.fetch = original;
	});
}
