import { DurableObject } from "cloudflare:workers";

/**
 * The floor: the least a Durable Object can do to get a message to its phones. `GET /rooms/:id/ws`
 * accepts a hibernatable socket; `POST /rooms/:id` sends the body to every socket of the room.
 * No auth, no validation, no storage — whatever the real service costs beyond this is its own.
 */
interface Env {
	ROOM: DurableObjectNamespace<FloorRoom>;
}

export class FloorRoom extends DurableObject<Env> {
	override async fetch(request: Request): Promise<Response> {
		if (request.headers.get("Upgrade") === "websocket") {
			const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
			this.ctx.acceptWebSocket(server);
			return new Response(null, { status: 101, webSocket: client });
		}
		const message = await request.text();
		for (const socket of this.ctx.getWebSockets()) socket.send(message);
		return new Response(null, { status: 204 });
	}
}

export default {
	fetch(request: Request, env: Env): Promise<Response> | Response {
		const match = /^\/rooms\/([^/]+)(\/ws)?$/.exec(new URL(request.url).pathname);
		if (!match?.[1]) return new Response("not found", { status: 404 });
		return env.ROOM.getByName(match[1]).fetch(request);
	},
} satisfies ExportedHandler<Env>;
