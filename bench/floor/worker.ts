import { DurableObject } from "cloudflare:workers";

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
 */
interface Env {
	ROOM: DurableObjectNamespace<FloorRoom>;
}

export class FloorRoom extends DurableObject<Env> {
	override async fetch(request: Request): Promise<Response> {
		if (request.headers.get("Upgrade") === "websocket") {
			const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
			// A "source" socket plays the upstream (a gateway streaming events); the others are phones.
			const role = new URL(request.url).pathname.endsWith("/source") ? "source" : "phone";
			this.ctx.acceptWebSocket(server, [role]);
			return new Response(null, { status: 101, webSocket: client });
		}
		const message = await request.text();
		// The durable floor writes the message to SQLite first, as the service's event log does: the
		// runtime then holds the sends until the write is committed (the output gate).
		if (new URL(request.url).searchParams.has("durable")) {
			this.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, frame TEXT)");
			this.ctx.storage.sql.exec("INSERT INTO log (frame) VALUES (?)", message);
			// A new time on every signal, as a changed "next due" would be.
			if (new URL(request.url).searchParams.has("alarm")) void this.ctx.storage.setAlarm(Date.now() + 60_000);
		}
		for (const socket of this.ctx.getWebSockets("phone")) socket.send(message);
		const push = new URL(request.url).searchParams.get("push");
		if (push) {
			const devices = Number(new URL(request.url).searchParams.get("n") ?? 1);
			this.ctx.waitUntil(
				Promise.all(
					Array.from({ length: devices }, async (_, i) => {
						const response = await fetch(`${push}/${i}`, { method: "POST", body: message });
						await response.body?.cancel();
					}),
				),
			);
		}
		return new Response(null, { status: 204 });
	}

	/** The armed alarm only measures what arming costs; firing it does nothing. */
	override async alarm(): Promise<void> {}

	override async webSocketMessage(_ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
		for (const socket of this.ctx.getWebSockets("phone")) socket.send(message);
	}
}

export default {
	fetch(request: Request, env: Env): Promise<Response> | Response {
		const match = /^\/rooms\/([^/]+)(\/ws|\/source)?$/.exec(new URL(request.url).pathname);
		if (!match?.[1]) return new Response("not found", { status: 404 });
		return env.ROOM.getByName(match[1]).fetch(request);
	},
} satisfies ExportedHandler<Env>;
