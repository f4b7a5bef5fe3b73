import { CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED } from "../protocol/close-codes.ts";
import { ClientFrame } from "../protocol/frames.ts";
import type { SessionContext } from "./context.ts";
import { snapshot } from "./emission.ts";
import { admitViewer, type Viewer } from "./owner.ts";

/**
 * The phones' hibernatable WebSockets (DESIGN.md, "Parts and their rooms"): upgrade with catch-up,
 * per-socket limits, closing a socket when its token expires, and the answers to what a phone may send. Pings are answered by the runtime's
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
	/** When the token that opened the socket expires (epoch ms): the alarm closes it with 4401 then. */
	expires_at: number;
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
	s: SessionContext,
	viewer: Viewer,
	expiresAt: number,
	since: number | null,
): Response {
	const { ctx } = s;
	const admission = admitViewer(s, viewer);
	if (!admission.ok) {
		// A valid token of another user or tenant: refused so the phone can tell why (DESIGN.md).
		return refusedSocket(CLOSE_FORBIDDEN, "this session belongs to another user");
	}
	if (ctx.getWebSockets().length >= MAX_SOCKETS_PER_SESSION) {
		return Response.json(
			{ error: { code: "too_many_connections", message: "Too many devices are watching this session." } },
			{ status: 429 },
		);
	}
	const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
	ctx.acceptWebSocket(server);
	const attachment: SocketAttachment = { window_start: Date.now(), frames: 0, expires_at: expiresAt };
	server.serializeAttachment(attachment);
	const earliest = socketsExpireAt(s);
	if (earliest === null || expiresAt < earliest) s.meta.set("sockets_expire_at", expiresAt);
	const backlog = since === null ? null : s.log.after(since);
	if (backlog === null) server.send(JSON.stringify(snapshot(s)));
	else for (const frame of backlog) server.send(frame);
	return new Response(null, { status: 101, webSocket: client });
}

/**
 * A socket accepted only to be closed at once with a code the client can read (browsers and phones
 * cannot see an HTTP status on a refused upgrade). The Worker refuses bad tokens this way without
 * waking any object (routes/sessions.ts); this object does it for a token of another user.
 */
export function refusedSocket(code: number, reason: string, headers?: HeadersInit): Response {
	const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
	server.accept();
	server.close(code, reason);
	return new Response(null, { status: 101, webSocket: client, headers });
}

/** When the earliest open socket's token expires, or null with none. */
export function socketsExpireAt(s: SessionContext): number | null {
	return s.meta.getNumber("sockets_expire_at");
}

/** Closes (4401) every socket whose token has expired, and remembers when the next one does. */
export function closeExpiredSockets(s: SessionContext, now: number): void {
	const due = socketsExpireAt(s);
	if (due === null || due > now) return;
	let next: number | null = null;
	for (const ws of s.ctx.getWebSockets()) {
		const expiresAt = (ws.deserializeAttachment() as Partial<SocketAttachment> | null)?.expires_at;
		if (expiresAt === undefined) continue;
		if (expiresAt <= now) {
			try {
				ws.close(CLOSE_UNAUTHORIZED, "token expired");
			} catch {
				// already closing
			}
		} else if (next === null || expiresAt < next) next = expiresAt;
	}
	if (next === null) s.meta.delete("sockets_expire_at");
	else s.meta.set("sockets_expire_at", next);
}

/** A frame from a phone that the auto-response did not answer. */
export function onPhoneMessage(s: SessionContext, ws: WebSocket, message: string | ArrayBuffer): void {
	if (frameBytes(message) > MAX_CLIENT_FRAME_BYTES) {
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
	const frame = ClientFrame.safeParse(parsed);
	if (!frame.success) {
		ws.send(
			JSON.stringify({
				type: "error",
				code: "bad_frame",
				message: 'Unrecognised frame; send {"type":"ping"} or {"type":"ack","seq":N}.',
			}),
		);
		return;
	}
	if (frame.data.type === "ack") {
		recordAck(s, frame.data.seq);
		return;
	}
	ws.send(JSON.stringify({ type: "pong" }));
}

/**
 * The highest seq a phone in the foreground has shown (issue 10): a completion whose frame is
 * covered is not pushed. A seq beyond the log is not believed (it would cover outcomes to come).
 */
export function recordAck(s: SessionContext, seq: number): void {
	const acked = Math.min(seq, s.log.lastSeq());
	if (acked > (s.meta.getNumber("acked_seq") ?? 0)) s.meta.set("acked_seq", acked);
}

/** The highest seq any phone of the session has acknowledged (0: none). */
export function ackedSeq(s: SessionContext): number {
	return s.meta.getNumber("acked_seq") ?? 0;
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

/** The frame's size in bytes as it came over the wire (a string counts as UTF-8, not UTF-16 units). */
function frameBytes(message: string | ArrayBuffer): number {
	if (typeof message !== "string") return message.byteLength;
	// At most 3 UTF-8 bytes per UTF-16 unit: short frames need no encoding to be known small.
	return message.length * 3 <= MAX_CLIENT_FRAME_BYTES
		? message.length
		: new TextEncoder().encode(message).byteLength;
}

/** A fixed-window frame counter kept in the socket's attachment, so it survives hibernation. */
function withinRate(ws: WebSocket): boolean {
	const now = Date.now();
	const attachment = (ws.deserializeAttachment() ?? {}) as Partial<SocketAttachment>;
	const fresh = now - (attachment.window_start ?? 0) >= RATE_WINDOW_MS;
	const next: SocketAttachment = {
		expires_at: attachment.expires_at ?? Number.MAX_SAFE_INTEGER,
		window_start: fresh ? now : (attachment.window_start ?? now),
		frames: (fresh ? 0 : (attachment.frames ?? 0)) + 1,
	};
	ws.serializeAttachment(next);
	return next.frames <= MAX_FRAMES_PER_WINDOW;
}
