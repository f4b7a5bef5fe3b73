import { DurableObject } from "cloudflare:workers";
import { verifyWebhook } from "../../src/auth/webhook-signature.ts";
import { ANSWER_CADENCE_MS, CHUNK_WINDOW_MS } from "../../src/openclaw/delivery.ts";
import { DeliveryWebhook } from "../../src/protocol/obegee.ts";

/**
 * The floor: the least a Durable Object can do to get a message to its phones. `GET /rooms/:id/ws`
 * accepts a hibernatable socket; `POST /rooms/:id` sends the body to every socket of the room.
 * No auth, no validation, no storage — whatever the real service costs beyond this is its own.
 * `POST /rooms/:id?durable` first logs the message in SQLite: the floor of a service that, like
 * this one, never sends what it has not stored. `&push=<url>&n=<n>` then also posts the message to
 * `<url>/0` … `<url>/<n-1>` in the background: the floor of a completion push to n devices (the
 * runtime holds those requests until the write is committed, as it does the real service's).
 * `&alarm` also arms the object's alarm (as the service re-arms its one alarm when a signal changes
 * what is due next): the floor of "store, arm, then forward" — it isolates what setAlarm adds.
 * `&sql=<s>&rows=<r>` makes that write <r> rows in all and run <s> statements in all (the rest point
 * reads), and `&d1=<n>` then copies <n> records to D1 in one batch in the background: the work-matched
 * floor, doing per signal the work the bench measured for the service's signal, and nothing else.
 * `&verify` makes the Worker first do what the service's webhook route does before its Durable Object:
 * check the Standard Webhooks signature (the service's own `verifyWebhook`, WEBHOOK_SECRET), parse the
 * body and validate it with the service's `DeliveryWebhook` schema; `&rpc` then reaches the object by
 * JS RPC, as the service does, instead of fetch: the worker-matched floor.
 * `&relay=<name>` passes the signal through one more Durable Object first: the Worker calls the relay
 * object `<name>` by RPC, and it calls the room by RPC (the service's gateway path, where a tenant's
 * Gateway DO hands each agent event to the session's DO). With `&durable` it is the relay floor: the
 * durable floor plus that one hop, shared by the rooms that name the same relay, as a tenant's
 * sessions share its Gateway DO.
 * `POST /rooms/:id/upstream?url=<ws url>&n=<pieces>` makes the room open an outbound WebSocket to
 * `<url>`, as a tenant's Gateway DO opens one to its gateway, and read the gateway's events from it:
 * it parses each one and sends its phones the pieces seen so far on the service's cadence (the first
 * after CHUNK_WINDOW_MS, then at most every ANSWER_CADENCE_MS, the last piece at once). The upstream
 * floor: the least a Durable Object must do to turn the gateway's stream into an answer on the phone.
 */
interface Env {
	ROOM: DurableObjectNamespace<FloorRoom>;
	RELAY: DurableObjectNamespace<FloorRelay>;
	DB: D1Database;
	WEBHOOK_SECRET?: string;
}

let copyTable: Promise<unknown> | null = null;

/** Copies a signal to D1 as n records keyed and indexed like the service's audit rows (2 rows each). */
async function copyToD1(db: D1Database, room: string, message: string, n: number): Promise<void> {
	// A failed create is tried again by the next signal, not remembered.
	copyTable ??= db
		.batch([
			db.prepare(
				"CREATE TABLE IF NOT EXISTS copy (at TEXT NOT NULL, room TEXT NOT NULL, n INTEGER NOT NULL, frame TEXT NOT NULL, PRIMARY KEY (at, room, n)) WITHOUT ROWID",
			),
			db.prepare("CREATE INDEX IF NOT EXISTS copy_room ON copy (room, n)"),
		])
		.catch((error: unknown) => {
			copyTable = null;
			throw error;
		});
	await copyTable;
	const at = new Date().toISOString();
	await db.batch(
		Array.from({ length: n }, (_, i) =>
			db
				.prepare("INSERT OR IGNORE INTO copy (at, room, n, frame) VALUES (?, ?, ?, ?)")
				.bind(at, room, i, message),
		),
	);
}

export class FloorRoom extends DurableObject<Env> {
	/** The upstream floor's socket (kept so it is not collected) and what its phones have been sent. */
	#upstream: WebSocket | null = null;
	#sentAt = 0;
	#timer: ReturnType<typeof setTimeout> | null = null;

	override async fetch(request: Request): Promise<Response> {
		const url = new URL(request.url);
		if (url.pathname.endsWith("/upstream"))
			return this.upstream(url.searchParams.get("url") ?? "", Number(url.searchParams.get("n")));
		if (request.headers.get("Upgrade") === "websocket") {
			const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
			// A "source" socket plays the upstream (a gateway streaming events); the others are phones.
			const role = url.pathname.endsWith("/source") ? "source" : "phone";
			this.ctx.acceptWebSocket(server, [role]);
			return new Response(null, { status: 101, webSocket: client });
		}
		await this.signal(await request.text(), new URL(request.url).search);
		return new Response(null, { status: 204 });
	}

	/** A posted signal: stored first when asked (see the header), then sent to every phone. */
	async signal(message: string, search: string): Promise<void> {
		const params = new URLSearchParams(search);
		// The durable floor writes the message to SQLite first, as the service's event log does: the
		// runtime then holds the sends until the write is committed (the output gate).
		if (params.has("durable")) {
			const sql = this.ctx.storage.sql;
			sql.exec("CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, frame TEXT)");
			const rows = Math.max(1, Number(params.get("rows") ?? 1));
			const statements = Math.max(rows, Number(params.get("sql") ?? rows));
			let last = 0;
			for (let i = 0; i < rows; i++)
				last = Number(sql.exec("INSERT INTO log (frame) VALUES (?) RETURNING seq", message).one().seq);
			for (let i = rows; i < statements; i++) sql.exec("SELECT frame FROM log WHERE seq = ?", last).toArray();
			// A new time on every signal, as a changed "next due" would be.
			if (params.has("alarm")) void this.ctx.storage.setAlarm(Date.now() + 60_000);
		}
		for (const socket of this.ctx.getWebSockets("phone")) socket.send(message);
		const d1 = Number(params.get("d1") ?? 0);
		if (d1 > 0) this.ctx.waitUntil(copyToD1(this.env.DB, this.ctx.id.toString(), message, d1));
		const push = params.get("push");
		if (push) {
			const devices = Number(params.get("n") ?? 1);
			this.ctx.waitUntil(
				Promise.all(
					Array.from({ length: devices }, async (_, i) => {
						const response = await fetch(`${push}/${i}`, { method: "POST", body: message });
						await response.body?.cancel();
					}),
				),
			);
		}
	}

	/** Connects the upstream floor's socket (see the header); answers once it is open. */
	async upstream(target: string, pieces: number): Promise<Response> {
		const response = await fetch(target, { headers: { Upgrade: "websocket" } });
		const ws = response.webSocket;
		if (!ws) return new Response(`upstream answered ${response.status}`, { status: 502 });
		ws.accept();
		this.#upstream = ws;
		let seen = 0;
		const send = () => {
			this.#timer = null;
			this.#sentAt = Date.now();
			for (const socket of this.ctx.getWebSockets("phone")) socket.send(JSON.stringify({ seq: seen }));
		};
		ws.addEventListener("message", (event) => {
			// Every event is read, as the Gateway DO reads them; the agent's event is the piece (a chat
			// delta, when the gateway's throttle sends one, repeats it).
			const frame = JSON.parse(event.data as string) as { event?: string; payload?: { seq?: number } };
			if (frame.event !== "agent") return;
			seen = frame.payload?.seq ?? seen;
			if (seen >= pieces) {
				if (this.#timer !== null) clearTimeout(this.#timer);
				send();
			} else if (this.#timer === null) {
				const wait =
					this.#sentAt === 0 ? CHUNK_WINDOW_MS : Math.max(0, this.#sentAt + ANSWER_CADENCE_MS - Date.now());
				this.#timer = setTimeout(send, wait);
			}
		});
		return new Response(null, { status: 204 });
	}

	/** The armed alarm only measures what arming costs; firing it does nothing. */
	override async alarm(): Promise<void> {}

	override async webSocketMessage(_ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
		for (const socket of this.ctx.getWebSockets("phone")) socket.send(message);
	}
}

/** The hop of the relay floor: hands a signal on to its room, as a Gateway DO to a Session DO. */
export class FloorRelay extends DurableObject<Env> {
	async forward(room: string, message: string, search: string): Promise<void> {
		await this.env.ROOM.getByName(room).signal(message, search);
	}
}

export default {
	async fetch(request: Request, env: Env): Promise<Response> {
		const url = new URL(request.url);
		const match = /^\/rooms\/([^/]+)(\/ws|\/source|\/upstream)?$/.exec(url.pathname);
		if (!match?.[1]) return new Response("not found", { status: 404 });
		const room = env.ROOM.getByName(match[1]);
		const relay = url.searchParams.get("relay");
		if (!match[2] && relay) {
			await env.RELAY.getByName(relay).forward(match[1], await request.text(), url.search);
			return new Response(null, { status: 204 });
		}
		if (match[2] || !url.searchParams.has("verify")) return room.fetch(request);
		const body = await request.text();
		const verified = await verifyWebhook(
			{
				id: request.headers.get("webhook-id"),
				timestamp: request.headers.get("webhook-timestamp"),
				signature: request.headers.get("webhook-signature"),
			},
			body,
			env.WEBHOOK_SECRET ?? "",
		);
		if (!verified.ok) return new Response(verified.reason, { status: 401 });
		if (!DeliveryWebhook.safeParse(JSON.parse(body)).success) return new Response("invalid", { status: 400 });
		if (!url.searchParams.has("rpc")) return room.fetch(new Request(request.url, { method: "POST", body }));
		await room.signal(body, url.search);
		return new Response(null, { status: 204 });
	},
} satisfies ExportedHandler<Env>;
