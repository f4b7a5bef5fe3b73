import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * What the four push provider simulators share: a plain Node HTTP server, namespaces, a record of
 * every request, scripted faults and the `/__sim` control API. They import nothing from src/: each
 * checks the wire on its own, as the real service would.
 *
 * Namespaces: a path starting with `/ns/<id>/` is served by an independent copy of the service
 * (its own records, faults, tokens, subscriptions), so tests running in parallel never see each
 * other; use `<url>/ns/<id>` as the base URL. Everything else is the `default` namespace.
 *
 * Control API (no authentication on purpose: a local test tool bound to 127.0.0.1, never deployed),
 * under `<base>/__sim/` of a namespace:
 *   GET  requests   every request so far: method, path, headers, body, the answer, what the sim
 *                   decoded (JWT claims, the decrypted Web Push payload…)
 *   GET  state      the sim's counters (distinct provider tokens, token requests, …)
 *   POST faults     `{kind, match?, count?, retryAfter?, status?, delayMs?}`: the next `count`
 *                   requests (default 1; `unregistered` defaults to all) whose target contains `match`
 *                   (any target without it) get the fault, in this sim's wire format:
 *                   `unregistered` | `rate_limited` (429 + Retry-After) | `server_error` (5xx) |
 *                   `slow` (answers after `delayMs`)
 *   POST reset      forgets the namespace
 * plus each sim's own (see its file).
 */

export type FaultKind = "unregistered" | "rate_limited" | "server_error" | "slow";

export interface Fault {
	kind: FaultKind;
	match?: string;
	remaining: number;
	retryAfter?: string;
	status?: number;
	delayMs?: number;
	/** Expo only: an unregistered device reported in the ticket (default) or only in the receipt. */
	at?: "ticket" | "receipt";
}

export interface Recorded {
	at: number;
	method: string;
	path: string;
	headers: Record<string, string>;
	/** The body as text (JSON, forms); binary bodies are in `bodyBase64`. */
	body?: string;
	bodyBase64?: string;
	status: number;
	answer: unknown;
	/** What the simulator decoded: JWT claims, the Web Push plaintext, the target… */
	note: Record<string, unknown>;
}

export interface Namespace<S> {
	id: string;
	/** `http://host:port` or `http://host:port/ns/<id>`: what a client uses as its base URL. */
	base: string;
	requests: Recorded[];
	faults: Fault[];
	state: S;
	/** The first fault matching `target` (of one of `kinds`, if given), its count taken; or null. */
	takeFault(target: string, kinds?: FaultKind[]): Fault | null;
}

export interface Reply {
	status: number;
	/** JSON unless a string or Buffer. Absent: an empty body. */
	body?: unknown;
	headers?: Record<string, string>;
	/** Answer after this long (the `slow` fault). */
	delayMs?: number;
}

export interface SimRequest<S> {
	ns: Namespace<S>;
	method: string;
	/** The path inside the namespace, without the query. */
	path: string;
	url: URL;
	headers: Record<string, string>;
	body: Buffer;
	/** Added to the recorded request. */
	note: Record<string, unknown>;
}

export interface PushSim {
	url: string;
	port: number;
	close(): Promise<void>;
}

export interface SimServerOptions<S> {
	name: string;
	port?: number;
	host?: string;
	maxBodyBytes?: number;
	newState: () => S;
	handle(request: SimRequest<S>): Reply | Promise<Reply>;
	/** The sim's own `/__sim/<path>` endpoints; null when it has none by that name. */
	control?(request: SimRequest<S>, name: string): Reply | Promise<Reply> | null;
	describe?(state: S): unknown;
}

const FAULT_KINDS: FaultKind[] = ["unregistered", "rate_limited", "server_error", "slow"];

export async function startSimServer<S>(options: SimServerOptions<S>): Promise<PushSim> {
	const namespaces = new Map<string, Namespace<S>>();
	let origin = "";
	const namespace = (id: string): Namespace<S> => {
		let ns = namespaces.get(id);
		if (!ns) {
			const created: Namespace<S> = {
				id,
				base: id === "default" ? origin : `${origin}/ns/${id}`,
				requests: [],
				faults: [],
				state: options.newState(),
				takeFault(target, kinds) {
					const index = created.faults.findIndex(
						(f) =>
							f.remaining > 0 && (!f.match || target.includes(f.match)) && (!kinds || kinds.includes(f.kind)),
					);
					const fault = created.faults[index];
					if (!fault) return null;
					fault.remaining -= 1;
					return fault;
				},
			};
			ns = created;
			namespaces.set(id, ns);
		}
		return ns;
	};

	const serve = async (req: IncomingMessage, res: ServerResponse) => {
		const url = new URL(req.url ?? "/", origin);
		const scoped = /^\/ns\/([A-Za-z0-9_-]{1,80})(\/.*)$/.exec(url.pathname);
		const ns = namespace(scoped?.[1] ?? "default");
		const path = scoped?.[2] ?? url.pathname;
		const headers: Record<string, string> = {};
		for (const [name, value] of Object.entries(req.headers)) {
			if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
		}
		const body = await readBody(req, options.maxBodyBytes ?? 1 << 20);
		if (body === null) return send(res, { status: 413, body: { error: "body too large" } });
		const request: SimRequest<S> = { ns, method: req.method ?? "GET", path, url, headers, body, note: {} };

		if (path.startsWith("/__sim/")) return send(res, await control(request, path.slice("/__sim/".length)));

		let reply: Reply;
		try {
			reply = await options.handle(request);
		} catch (error) {
			reply = { status: 500, body: { error: `simulator bug: ${String(error)}` } };
		}
		const binary = !/json|x-www-form-urlencoded|^text\//.test(headers["content-type"] ?? "");
		ns.requests.push({
			at: Date.now(),
			method: request.method,
			path,
			headers,
			...(binary ? { bodyBase64: body.toString("base64") } : { body: body.toString("utf8") }),
			status: reply.status,
			answer: reply.body ?? null,
			note: request.note,
		});
		if (reply.delayMs) await sleep(reply.delayMs);
		send(res, reply);
	};

	const control = async (request: SimRequest<S>, name: string): Promise<Reply> => {
		const { ns } = request;
		if (request.method === "GET" && name === "requests")
			return { status: 200, body: { requests: ns.requests } };
		if (request.method === "GET" && name === "state") {
			return { status: 200, body: options.describe ? options.describe(ns.state) : {} };
		}
		if (request.method === "POST" && name === "reset") {
			namespaces.delete(ns.id);
			return { status: 200, body: { ok: true } };
		}
		if (request.method === "POST" && name === "faults") {
			const spec = jsonObject(request.body);
			if (!spec || !FAULT_KINDS.includes(spec.kind as FaultKind)) {
				return { status: 400, body: { error: `kind must be one of ${FAULT_KINDS.join(", ")}` } };
			}
			const count = typeof spec.count === "number" ? spec.count : spec.kind === "unregistered" ? Infinity : 1;
			ns.faults.push({
				kind: spec.kind as FaultKind,
				remaining: count,
				...(typeof spec.match === "string" && { match: spec.match }),
				...(typeof spec.retryAfter === "string" && { retryAfter: spec.retryAfter }),
				...(typeof spec.status === "number" && { status: spec.status }),
				...(typeof spec.delayMs === "number" && { delayMs: spec.delayMs }),
				...((spec.at === "ticket" || spec.at === "receipt") && { at: spec.at }),
			});
			return { status: 200, body: { ok: true } };
		}
		const own = await options.control?.(request, name);
		return own ?? { status: 404, body: { error: `no control endpoint ${request.method} /__sim/${name}` } };
	};

	const server: Server = createServer((req, res) => {
		serve(req, res).catch((error) => {
			if (!res.headersSent) send(res, { status: 500, body: { error: String(error) } });
		});
	});
	await new Promise<void>((resolve) =>
		server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve),
	);
	const { port } = server.address() as AddressInfo;
	origin = `http://${options.host ?? "127.0.0.1"}:${port}`;
	return {
		url: origin,
		port,
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}

function send(res: ServerResponse, reply: Reply): void {
	if (res.destroyed) return;
	const headers: Record<string, string> = { ...reply.headers };
	let payload: Buffer | string = "";
	if (Buffer.isBuffer(reply.body) || typeof reply.body === "string") payload = reply.body;
	else if (reply.body !== undefined) {
		payload = JSON.stringify(reply.body);
		headers["content-type"] ??= "application/json; charset=utf-8";
	}
	res.writeHead(reply.status, headers);
	res.end(payload);
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | null> {
	return new Promise((resolve, reject) => {
		const chunks: Buffer[] = [];
		let size = 0;
		let over = false;
		req.on("data", (chunk: Buffer) => {
			size += chunk.length;
			if (size > limit) over = true;
			else chunks.push(chunk);
		});
		req.on("end", () => resolve(over ? null : Buffer.concat(chunks)));
		req.on("error", reject);
	});
}

export function jsonObject(body: Buffer): Record<string, unknown> | null {
	try {
		const value: unknown = JSON.parse(body.toString("utf8"));
		return value !== null && typeof value === "object" && !Array.isArray(value)
			? (value as Record<string, unknown>)
			: null;
	} catch {
		return null;
	}
}

export function parseJsonBody(body: Buffer): { ok: true; value: unknown } | { ok: false } {
	try {
		return { ok: true, value: JSON.parse(body.toString("utf8")) };
	} catch {
		return { ok: false };
	}
}

/** A compact JWS split into its parts, or null. */
export function splitJwt(token: string): {
	header: Record<string, unknown>;
	claims: Record<string, unknown>;
	input: string;
	signature: Buffer;
} | null {
	const parts = token.split(".");
	if (parts.length !== 3) return null;
	const [h, c, s] = parts as [string, string, string];
	try {
		const header: unknown = JSON.parse(Buffer.from(h, "base64url").toString("utf8"));
		const claims: unknown = JSON.parse(Buffer.from(c, "base64url").toString("utf8"));
		if (!header || typeof header !== "object" || !claims || typeof claims !== "object") return null;
		return {
			header: header as Record<string, unknown>,
			claims: claims as Record<string, unknown>,
			input: `${h}.${c}`,
			signature: Buffer.from(s, "base64url"),
		};
	} catch {
		return null;
	}
}

/** A short, log-friendly form of a device token (an Expo token keeps its `ExponentPushToken[` frame). */
export function short(token: string): string {
	const expo = /^(Expo(?:nent)?PushToken\[)(.*)\]$/.exec(token);
	if (expo) return `${expo[1]}${(expo[2] ?? "").slice(0, 6)}…]`;
	return token.length > 16 ? `${token.slice(0, 12)}…` : token;
}

export type Log = (line: string) => void;

export type PushProviderName = "expo" | "apns" | "fcm" | "webpush";

/**
 * One push a simulator accepted (after every check passed and no fault refused it): what `log`
 * prints as one `[push] …` line and what an `onPush` listener gets — `npm start` prints them, the
 * benchmark times and counts them. Observation only: nothing here changes what a simulator accepts.
 */
export interface ReceivedPush {
	provider: PushProviderName;
	/** The namespace it arrived in: "default", or `<id>` of `<url>/ns/<id>`. */
	ns: string;
	/** Who it is for: the APNs, FCM or Expo token, or the Web Push subscription id. */
	target: string;
	/** APNs: its `apns-push-type` (alert, liveactivity, background…); the others: "notification" or "data". */
	type: string;
	title?: string;
	body?: string;
	/** The app's data: Expo's and FCM's `data`, the APNs payload beside `aps`, the Web Push JSON's `data`. */
	data?: Record<string, unknown>;
	/** A Live Activity push: its `aps.event` and `aps.content-state`. */
	liveActivity?: { event: string; contentState: Record<string, unknown> };
}

export type PushListener = (push: ReceivedPush) => void;

/** The `[push] …` line of an accepted push. */
export function describePush(push: ReceivedPush): string {
	const kind = push.type === "alert" || push.type === "notification" ? "" : ` ${push.type}`;
	const to = push.provider === "webpush" ? `${push.target.slice(0, 8)}…` : short(push.target);
	let what: string;
	if (push.liveActivity) {
		what = `${push.liveActivity.event} ${describeState(push.liveActivity.contentState)}`;
	} else if (push.title || push.body) {
		// A body that only repeats the title is shown once.
		what = [push.title, push.body === push.title ? undefined : push.body].filter(Boolean).join(": ");
	} else if (push.data && "stage" in push.data) {
		// An Android progress data message: the Live Activity's state, as strings, with its event.
		const event = typeof push.data.event === "string" ? `${push.data.event} ` : "";
		what = `${event}${describeState(push.data)}`;
	} else {
		what = JSON.stringify(push.data ?? {});
	}
	return `[push] ${push.provider}${kind} → ${to}: ${what}`;
}

/** A Live Activity's `content-state` (or the same keys in an FCM data message) in a few words. */
function describeState(state: Record<string, unknown>): string {
	const parts = [`stage ${String(state.stage)}`];
	if (typeof state.stage_name === "string" && state.stage_name) parts.push(state.stage_name);
	if (typeof state.status === "string" && state.status) parts.push(state.status);
	if (state.progress !== undefined && state.progress !== null && state.progress !== "")
		parts.push(`${String(state.progress)}%`);
	let line = parts.join(" ");
	if (typeof state.sub_status === "string" && state.sub_status) line += ` · ${state.sub_status}`;
	if (typeof state.answer_preview === "string" && state.answer_preview) {
		const preview = state.answer_preview.replace(/\s+/g, " ").trim();
		line += ` "${preview.length > 40 ? `${preview.slice(0, 39)}…` : preview}"`;
	}
	return line;
}

/** What each simulator does with an accepted push: `log` its line, then tell `onPush`. */
export function pushReporter(options: { log?: Log; onPush?: PushListener }): (push: ReceivedPush) => void {
	return (push) => {
		options.log?.(describePush(push));
		options.onPush?.(push);
	};
}
