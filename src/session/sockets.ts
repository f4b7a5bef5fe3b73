import { ClientFrame, type SnapshotFrame } from "../protocol/frames.ts";
import type { EventLog } from "./event-log.ts";

/**
 * The phones' hibernatable WebSockets (DESIGN.md, "Parts and their rooms"): upgrade with catch-up,
 * per-socket limits and the answers to what a phone may send. Pings are answered by the runtime's
 * auto-response without waking the object; anything else a phone sends is checked here.
 */

/** Phones only ever send pings; these limits leave ample room for that and none for abuse (issue 4). */
export const MAX_CLIENT_FRAME_BYTES = 4_096;
export const MAX_FRAMES_PER_WINDOW = 20;
export const RATE_WINDOW_MS = 10_000;
export const MAX_SOCKETS_PER_SESSION = 20;

/** Kept on each socket across hibernation (small by design: the runtime caps attachments at 16 KiB). */
interface SocketAttachment {
	window_start: number;
	frames: number;
}

/** Answered by the runtime without waking the object (DESIGN.md: ping/pong by auto-response). */
export function autoRespondToPings(ctx: DurableObjectState): void {
	ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
}

/**
 * Accepts a phone's socket, already authenticated by the Worker. A fresh connection gets a snapshot;
 * `since` replays the log after that seq, or falls back to a snapshot when the log no longer reaches
 * back. Catch-up and accept happen in one synchronous turn, so no live event can slip between them.
 */
export function acceptPhone(
	ctx: DurableObjectState,
	since: number | null,
	log: EventLog,
	snapshot: () => SnapshotFrame,
): Response {
	if (ctx.getWebSockets().length >= MAX_SOCKETS_PER_SESSION) {
		return Response.json(
			{ error: { code: "too_many_connections", message: "Too many devices are watching this session." } },
			{ status: 429 },
		);
	}
	const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
	ctx.acceptWebSocket(server);
	const attachment: SocketAttachment = { window_start: Date.now(), frames: 0 };
	server.serializeAttachment(attachment);
	const backlog = since === null ? null : log.after(since);
	if (backlog === null) server.send(JSON.stringify(snapshot()));
	else for (const frame of backlog) server.send(frame);
	return new Response(null, { status: 101, webSocket: client });
}

/** A frame from a phone that the auto-response did not answer. */
export function onPhoneMessage(ws: WebSocket, message: string | ArrayBuffer): void {
	const size = typeof message === "string" ? message.length : message.byteLength;
	if (size > MAX_CLIENT_FRAME_BYTES) {
		ws.close(1009, "frame too large");
		return;
	}
	if (!withinRate(ws)) {
		// A flooding client is cut off with a policy close; the session's other phones are untouched.
		ws.close(1008, "too many frames");
		return;
	}
	let parsed: unknown;
	try {
		parsed = typeof message === "string" ? JSON.parse(message) : undefined;
	} catch {
		parsed = undefined;
	}
	if (!ClientFrame.safeParse(parsed).success) {
		ws.send(
			JSON.stringify({
				type: "error",
				code: "bad_frame",
				message: 'Unrecognised frame; send {"type":"ping"}.',
			}),
		);
		return;
	}
	ws.send(JSON.stringify({ type: "pong" }));
}

/** Reciprocate so the phone sees a clean close; 1005/1006 are reserved and cannot be sent. */
export function onPhoneClose(ws: WebSocket, code: number, reason: string): void {
	try {
		ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
	} catch {
		// already closed
	}
}

/** Sends one logged frame to every phone; returns how many sockets it was offered to. */
export function broadcast(ctx: DurableObjectState, text: string): number {
	const sockets = ctx.getWebSockets();
	for (const socket of sockets) {
		try {
			socket.send(text);
		} catch {
			// A socket closing under us; the phone resumes from the log when it reconnects.
		}
	}
	return sockets.length;
}

/** A fixed-window frame counter kept in the socket's attachment, so it survives hibernation. */
function withinRate(ws: WebSocket): boolean {
	const now = Date.now();
	const attachment = (ws.deserializeAttachment() ?? {}) as Partial<SocketAttachment>;
	const fresh = now - (attachment.window_start ?? 0) >= RATE_WINDOW_MS;
	const next: SocketAttachment = {
		window_start: fresh ? now : (attachment.window_start ?? now),
		frames: (fresh ? 0 : (attachment.frames ?? 0)) + 1,
	};
	ws.serializeAttachment(next);
	return next.frames <= MAX_FRAMES_PER_WINDOW;
}
