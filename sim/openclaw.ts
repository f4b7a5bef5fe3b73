import { createHash, createPublicKey, randomUUID, verify } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { type WebSocket, WebSocketServer } from "ws";
import { signaturePayload } from "../src/openclaw/device-identity.ts";

/**
 * A local stand-in for a tenant's OpenClaw Gateway, speaking protocol 4 as the real one does
 * (OPENCLAW-NOTES.md, openclaw-sample-run.jsonl): `connect.challenge`, a strict `connect` check
 * (protocol range, closed client id/mode lists, closed params object, token, Ed25519 device
 * signature), `hello-ok` with policy and a device token, `tick`s, and scripted agent runs.
 *
 * The control API under `/__sim` (HTTP, same port) has NO authentication on purpose: a local test
 * tool bound to 127.0.0.1, never deployed.
 */

export const CLIENT_IDS = [
	"webchat-ui",
	"openclaw-control-ui",
	"openclaw-browser-copilot",
	"openclaw-tui",
	"webchat",
	"cli",
	"gateway-client",
	"openclaw-macos",
	"openclaw-linux",
	"openclaw-ios",
	"openclaw-watchos",
	"openclaw-android",
	"node-host",
	"openclaw-worker",
	"test",
	"fingerprint",
	"openclaw-probe",
];
export const CLIENT_MODES = ["webchat", "cli", "worker", "test", "probe", "ui", "backend", "node"];
const CONNECT_KEYS = new Set([
	"minProtocol",
	"maxProtocol",
	"client",
	"caps",
	"commands",
	"computerUse",
	"workerRuns",
	"permissions",
	"pathEnv",
	"role",
	"scopes",
	"device",
	"auth",
	"locale",
	"userAgent",
]);
const PROTOCOL = 4;
const MAX_PAYLOAD = 25 * 1024 * 1024;

export interface GatewaySimOptions {
	/** 0 (the default) picks a free port. */
	port?: number;
	host?: string;
	token: string;
	tickIntervalMs?: number;
	/** "auto" pairs every correctly signed device; "required" refuses unknown devices (PAIRING_REQUIRED). */
	pairing?: "auto" | "required";
	log?: (line: string) => void;
}

export interface RunScript {
	runId: string;
	sessionKey?: string;
	answer?: string;
	/** Tool calls before the answer; each becomes item start → tool start → tool result → item end. */
	tools?: { name: string; title?: string }[];
	/** A lifecycle `error` after the tools, then the run retries (lifecycle `start` again). */
	lifecycleError?: boolean;
	/** Close every connection after the tools; the rest of the run is never sent. */
	dropMidRun?: boolean;
	/** The second assistant event (and its chat delta) is never sent: a per-run seq gap. */
	seqGap?: boolean;
	/** The first assistant event and its chat delta are sent twice. */
	duplicate?: boolean;
	/** A hole in the connection-level frame seq (an event "lost" on the wire). */
	frameSeqGap?: boolean;
	/** Without it lifecycle `end` carries no `terminalReply` and only `chat` `final` has the whole answer. */
	terminalReply?: boolean;
	/** Milliseconds between events (default 2). */
	paceMs?: number;
}

export interface GatewaySimStats {
	connections: number;
	open: number;
	hellos: number;
	refusals: { code: string }[];
	devices: string[];
	deviceTokenConnects: number;
	runs: string[];
}

interface Peer {
	ws: WebSocket;
	ready: boolean;
	deviceId: string | null;
	seq: number;
	nonce: string;
	ts: number;
	tick: NodeJS.Timeout | null;
}

interface SimError {
	code: string;
	message: string;
	details?: Record<string, unknown>;
}

/**
 * The simulator: one HTTP server carrying both the gateway's WebSocket and the `/__sim` control API.
 * Start one with `startGatewaySim` (or `new GatewaySim(options).listen()`).
 */
export class GatewaySim {
	readonly #options: GatewaySimOptions;
	readonly #log: (line: string) => void;
	readonly #tickIntervalMs: number;
	readonly #host: string;
	readonly #peers = new Set<Peer>();
	/** deviceId → deviceToken */
	readonly #paired = new Map<string, string>();
	readonly #approvedDevices = new Set<string>();
	readonly #http: Server;
	readonly #wss: WebSocketServer;
	#ticksEnabled = true;
	#stats: GatewaySimStats = freshStats();
	#port = 0;

	constructor(options: GatewaySimOptions) {
		this.#options = options;
		this.#log = options.log ?? ((line: string) => console.log(`[openclaw-sim] ${line}`));
		this.#tickIntervalMs = options.tickIntervalMs ?? 30_000;
		this.#host = options.host ?? "127.0.0.1";
		this.#http = createServer((req, res) => {
			void this.#control(req, res).catch((error: unknown) => reply(res, 500, { error: String(error) }));
		});
		this.#wss = new WebSocketServer({ server: this.#http, maxPayload: MAX_PAYLOAD });
		this.#wss.on("connection", (ws) => this.#accept(ws));
	}

	/** Listens on the options' host and port (0: a free one). */
	async listen(): Promise<this> {
		await new Promise<void>((resolve, reject) => {
			this.#http.once("error", reject);
			this.#http.listen(this.#options.port ?? 0, this.#host, () => {
				this.#http.off("error", reject);
				resolve();
			});
		});
		this.#port = (this.#http.address() as AddressInfo).port;
		this.#log(`OpenClaw gateway simulator on ${this.url}`);
		return this;
	}

	get port(): number {
		return this.#port;
	}

	/** The gateway's WebSocket address. */
	get url(): string {
		return `ws://${this.#host}:${this.#port}`;
	}

	/** The same port over HTTP: `/health` and the `/__sim` control API. */
	get httpUrl(): string {
		return `http://${this.#host}:${this.#port}`;
	}

	/** `open`: connections that completed the handshake and are still up. */
	stats(): GatewaySimStats {
		return { ...this.#stats, open: [...this.#peers].filter((peer) => peer.ready).length };
	}

	/** Plays one scripted agent run to every connected client; resolves once its last event is sent. */
	async run(script: RunScript): Promise<{ events: number }> {
		const broadcast: Broadcast = (event, payload, skipSeq) => this.#broadcast(event, payload, skipSeq);
		const drop = () => {
			for (const peer of this.#peers) peer.ws.close(1012, "service restart");
		};
		return new ScriptedRun(script, broadcast, drop).play(this.#stats);
	}

	/** Closes every connection, or only one device's (tests share one simulator). */
	dropAll(code = 1012, deviceId?: string): void {
		for (const peer of this.#peers) {
			if (deviceId === undefined || peer.deviceId === deviceId) peer.ws.close(code, "dropped by simulator");
		}
	}

	setTicks(enabled: boolean): void {
		this.#ticksEnabled = enabled;
	}

	reset(): void {
		this.#stats = freshStats();
		this.#ticksEnabled = true;
	}

	async close(): Promise<void> {
		for (const peer of this.#peers) peer.ws.terminate();
		await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
		await new Promise<void>((resolve) => this.#http.close(() => resolve()));
	}

	// ---- connections ----

	#accept(ws: WebSocket): void {
		this.#stats.connections++;
		const peer: Peer = {
			ws,
			ready: false,
			deviceId: null,
			seq: 0,
			nonce: randomUUID(),
			ts: Date.now(),
			tick: null,
		};
		this.#peers.add(peer);
		ws.send(
			JSON.stringify({
				type: "event",
				event: "connect.challenge",
				payload: { nonce: peer.nonce, ts: peer.ts, capabilities: [] },
			}),
		);
		ws.on("message", (data) => this.#onMessage(peer, String(data)));
		ws.on("close", () => {
			if (peer.tick) clearInterval(peer.tick);
			this.#peers.delete(peer);
		});
	}

	#send(peer: Peer, event: string, payload: unknown, skipSeq = false): void {
		if (!peer.ready || peer.ws.readyState !== peer.ws.OPEN) return;
		peer.seq += skipSeq ? 2 : 1;
		peer.ws.send(JSON.stringify({ type: "event", event, payload, seq: peer.seq }));
	}

	#broadcast(event: string, payload: unknown, skipSeq = false): void {
		for (const peer of this.#peers) this.#send(peer, event, payload, skipSeq);
	}

	#onMessage(peer: Peer, text: string): void {
		let frame: { type?: unknown; id?: unknown; method?: unknown; params?: Record<string, unknown> };
		try {
			frame = JSON.parse(text);
		} catch {
			peer.ws.close(1003, "not JSON");
			return;
		}
		if (!peer.ready) {
			if (frame.type !== "req" || frame.method !== "connect") {
				peer.ws.close(1008, "first frame must be connect");
				return;
			}
			const error = this.#checkConnect(peer, frame.params ?? {});
			if (error) this.#refuse(peer, frame.id, error);
			else this.#hello(peer, frame.id, frame.params ?? {});
			return;
		}
		if (frame.type === "req" && frame.method === "agent") {
			// Enough of the `agent` method for a demo: the run's id is the idempotency key.
			const params = frame.params ?? {};
			const runId = String(params.idempotencyKey ?? randomUUID());
			peer.ws.send(
				JSON.stringify({ type: "res", id: frame.id, ok: true, payload: { runId, status: "accepted" } }),
			);
			void this.run({
				runId,
				sessionKey: typeof params.sessionKey === "string" ? params.sessionKey : undefined,
			}).then(() =>
				peer.ws.send(
					JSON.stringify({ type: "res", id: frame.id, ok: true, payload: { runId, status: "ok" } }),
				),
			);
			return;
		}
		if (frame.type === "req") {
			peer.ws.send(
				JSON.stringify({
					type: "res",
					id: frame.id,
					ok: false,
					error: { code: "INVALID_REQUEST", message: `unknown method: ${String(frame.method)}` },
				}),
			);
		}
	}

	// ---- the handshake ----

	#refuse(peer: Peer, id: unknown, error: SimError): void {
		this.#stats.refusals.push({ code: String(error.details?.code ?? error.code) });
		this.#log(`connect refused: ${error.details?.code ?? error.code}`);
		peer.ws.send(JSON.stringify({ type: "res", id, ok: false, error }));
		peer.ws.close(1008, "connect refused");
	}

	#checkConnect(peer: Peer, params: Record<string, unknown>): SimError | null {
		const invalid = (message: string, code?: string): SimError => ({
			code: "INVALID_REQUEST",
			message,
			...(code ? { details: { code } } : {}),
		});
		const unknown = Object.keys(params).filter((key) => !CONNECT_KEYS.has(key));
		if (unknown.length > 0) return invalid(`invalid connect params: unexpected property '${unknown[0]}'`);
		const min = Number(params.minProtocol);
		const max = Number(params.maxProtocol);
		if (!(min <= PROTOCOL && PROTOCOL <= max)) return invalid("protocol mismatch", "PROTOCOL_MISMATCH");
		const client = (params.client ?? {}) as Record<string, unknown>;
		if (!CLIENT_IDS.includes(String(client.id))) return invalid("invalid connect params: client/id");
		if (!CLIENT_MODES.includes(String(client.mode))) return invalid("invalid connect params: client/mode");
		const auth = (params.auth ?? {}) as Record<string, unknown>;
		const device = params.device as Record<string, unknown> | undefined;
		if (auth.token !== this.#options.token) {
			const deviceToken = typeof auth.deviceToken === "string" ? auth.deviceToken : null;
			const deviceOk = device && deviceToken && this.#paired.get(String(device.id)) === deviceToken;
			if (!deviceOk) {
				return invalid(
					"unauthorized: gateway token mismatch (set gateway.remote.token to match gateway.auth.token)",
					auth.token === undefined ? "AUTH_TOKEN_MISSING" : "AUTH_TOKEN_MISMATCH",
				);
			}
		}
		if (!device) return invalid("device identity required", "DEVICE_IDENTITY_REQUIRED");
		const deviceError = verifyDevice(peer, params, device, String(auth.token ?? auth.deviceToken ?? ""));
		if (deviceError) return invalid("device signature invalid", deviceError);
		if (typeof auth.deviceToken === "string" && this.#paired.get(String(device.id)) !== auth.deviceToken) {
			return invalid("device token mismatch", "AUTH_DEVICE_TOKEN_MISMATCH");
		}
		if (this.#options.pairing === "required" && !this.#approvedDevices.has(String(device.id))) {
			return {
				code: "NOT_PAIRED",
				message: "pairing required",
				details: { code: "PAIRING_REQUIRED", reason: "not-paired" },
			};
		}
		return null;
	}

	#hello(peer: Peer, id: unknown, params: Record<string, unknown>): void {
		const device = params.device as Record<string, unknown>;
		const deviceId = String(device.id);
		const auth = (params.auth ?? {}) as Record<string, unknown>;
		if (typeof auth.deviceToken === "string") this.#stats.deviceTokenConnects++;
		let deviceToken = this.#paired.get(deviceId);
		if (!deviceToken) {
			deviceToken = `devtok_${randomUUID()}`;
			this.#paired.set(deviceId, deviceToken);
		}
		this.#stats.hellos++;
		if (!this.#stats.devices.includes(deviceId)) this.#stats.devices.push(deviceId);
		peer.ready = true;
		peer.deviceId = deviceId;
		peer.ws.send(
			JSON.stringify({
				type: "res",
				id,
				ok: true,
				payload: {
					type: "hello-ok",
					protocol: PROTOCOL,
					server: { version: "sim", connId: randomUUID() },
					features: { methods: ["agent", "health"], events: ["agent", "chat", "tick"] },
					snapshot: {},
					auth: {
						role: "operator",
						scopes: ["operator.read", "operator.write"],
						deviceToken,
					},
					policy: {
						maxPayload: MAX_PAYLOAD,
						maxBufferedBytes: 2 * MAX_PAYLOAD,
						tickIntervalMs: this.#tickIntervalMs,
					},
				},
			}),
		);
		this.#log(`hello-ok for device ${deviceId.slice(0, 12)}…`);
		// Noise every real gateway sends, which clients must ignore.
		this.#send(peer, "health", { ok: true, ts: Date.now() });
		peer.tick = setInterval(() => {
			if (this.#ticksEnabled) this.#send(peer, "tick", { ts: Date.now() });
		}, this.#tickIntervalMs);
	}

	// ---- the control API ----

	async #control(req: IncomingMessage, res: ServerResponse): Promise<void> {
		const path = new URL(req.url ?? "/", "http://sim").pathname;
		const body = req.method === "POST" ? await readJson(req) : {};
		if (req.method === "GET" && path === "/health") return reply(res, 200, { ok: true });
		if (req.method === "GET" && path === "/__sim/state") return reply(res, 200, this.#stats);
		if (req.method === "POST" && path === "/__sim/runs") {
			const script = body as unknown as RunScript;
			if (typeof script.runId !== "string" || script.runId === "")
				return reply(res, 400, { error: "runId required" });
			return reply(res, 200, await this.run(script));
		}
		if (req.method === "POST" && path === "/__sim/drop") {
			this.dropAll(Number(body.code ?? 1012), typeof body.deviceId === "string" ? body.deviceId : undefined);
			return reply(res, 200, { ok: true });
		}
		if (req.method === "POST" && path === "/__sim/ticks") {
			this.#ticksEnabled = body.enabled !== false;
			return reply(res, 200, { ok: true, ticks: this.#ticksEnabled });
		}
		if (req.method === "POST" && path === "/__sim/shutdown") {
			this.#broadcast("shutdown", {
				reason: "restart",
				restartExpectedMs: Number(body.restartExpectedMs ?? 1000),
			});
			return reply(res, 200, { ok: true });
		}
		if (req.method === "POST" && path === "/__sim/approve") {
			this.#approvedDevices.add(String(body.deviceId));
			return reply(res, 200, { ok: true });
		}
		if (req.method === "POST" && path === "/__sim/reset") {
			this.reset();
			return reply(res, 200, { ok: true });
		}
		return reply(res, 404, { error: `no route ${req.method} ${path}` });
	}
}

export function startGatewaySim(options: GatewaySimOptions): Promise<GatewaySim> {
	return new GatewaySim(options).listen();
}

/** Checks a `connect`'s Ed25519 device signature over the challenge; null when it holds. */
function verifyDevice(
	peer: Peer,
	params: Record<string, unknown>,
	device: Record<string, unknown>,
	token: string,
): string | null {
	const publicKey = String(device.publicKey ?? "");
	const raw = Buffer.from(publicKey, "base64url");
	if (raw.length !== 32) return "DEVICE_AUTH_PUBLIC_KEY_INVALID";
	if (createHash("sha256").update(raw).digest("hex") !== device.id) return "DEVICE_AUTH_DEVICE_ID_MISMATCH";
	if (device.nonce !== peer.nonce) return "DEVICE_AUTH_NONCE_MISMATCH";
	if (device.signedAt !== peer.ts) return "DEVICE_AUTH_SIGNATURE_EXPIRED";
	const client = params.client as Record<string, unknown>;
	const payload = signaturePayload({
		deviceId: String(device.id),
		clientId: String(client.id),
		clientMode: String(client.mode),
		role: String(params.role ?? ""),
		scopes: Array.isArray(params.scopes) ? params.scopes.map(String) : [],
		signedAt: peer.ts,
		token,
		nonce: peer.nonce,
		platform: String(client.platform ?? ""),
		deviceFamily: String(client.deviceFamily ?? ""),
	});
	const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: publicKey }, format: "jwk" });
	const ok = verify(
		null,
		Buffer.from(payload),
		key,
		Buffer.from(String(device.signature ?? ""), "base64url"),
	);
	return ok ? null : "DEVICE_AUTH_SIGNATURE_INVALID";
}

type Broadcast = (event: string, payload: unknown, skipSeq?: boolean) => void;

/**
 * One scripted agent run, event by event as the real gateway streams it (openclaw-sample-run.jsonl):
 * lifecycle start, each tool as item/tool events, the answer as assistant deltas mirrored by chat
 * deltas, usage, lifecycle end, the late chat delta and chat final — with the script's faults.
 */
class ScriptedRun {
	readonly #script: RunScript;
	readonly #broadcast: Broadcast;
	readonly #dropAll: () => void;
	readonly #pace: number;
	readonly #sessionKey: string;
	#seq = 0;
	#events = 0;
	#frameGapPending: boolean;

	constructor(script: RunScript, broadcast: Broadcast, dropAll: () => void) {
		this.#script = script;
		this.#broadcast = broadcast;
		this.#dropAll = dropAll;
		this.#pace = script.paceMs ?? 2;
		this.#sessionKey = script.sessionKey ?? `agent:main:myndlens-${script.runId}`;
		this.#frameGapPending = script.frameSeqGap ?? false;
	}

	async play(stats: GatewaySimStats): Promise<{ events: number }> {
		const script = this.#script;
		stats.runs.push(script.runId);
		const answer = script.answer ?? "The weekly report was sent to the team. Revenue is up 4%.";
		const tools = script.tools ?? [{ name: "read", title: "Read from REPORT.md" }];

		await this.#agent("lifecycle", { phase: "start", startedAt: Date.now() });
		await this.#agent("lifecycle", { phase: "model", provider: "mock", model: "mock-1" });
		for (const [index, tool] of tools.entries()) {
			const toolCallId = `call_${index + 1}`;
			const item = { itemId: `tool:${toolCallId}`, toolCallId, name: tool.name, kind: "tool" };
			await this.#agent("item", { ...item, phase: "start", title: tool.title, status: "running" });
			await this.#agent("tool", { phase: "start", name: tool.name, toolCallId, args: {} });
			await this.#agent("tool", { phase: "result", name: tool.name, toolCallId, isError: false });
			await this.#agent("item", { ...item, phase: "end", title: tool.title, status: "completed" });
		}
		if (script.dropMidRun) {
			this.#dropAll();
			return { events: this.#events };
		}
		if (script.lifecycleError) {
			await this.#agent("lifecycle", { phase: "error", error: "model overloaded" });
			await this.#agent("lifecycle", { phase: "start", startedAt: Date.now() });
		}
		await this.#agent("lifecycle", { phase: "model", provider: "mock", model: "mock-1" });
		const pieces = splitAnswer(answer);
		const itemId = `${randomUUID()}:2`;
		let text = "";
		let lateDelta: { at: number; delta: string; text: string } | null = null;
		for (const [index, delta] of pieces.entries()) {
			text += delta;
			const skip = script.seqGap === true && index === 1 && pieces.length > 2;
			const at = await this.#agent("assistant", { text, delta, itemId }, { skip });
			if (skip) continue;
			if (script.duplicate && index === 0) {
				this.#broadcast("agent", {
					runId: script.runId,
					sessionKey: this.#sessionKey,
					stream: "assistant",
					data: { text, delta, itemId },
					seq: at,
				});
				this.#events++;
			}
			// The last chat delta is throttled past the lifecycle end, as on the real gateway.
			if (index === pieces.length - 1) lateDelta = { at, delta, text };
			else {
				await this.#chat("delta", at, { deltaText: delta, message: message(text) });
				if (script.duplicate && index === 0)
					await this.#chat("delta", at, { deltaText: delta, message: message(text) });
			}
		}
		await this.#agent("usage", { outputTokens: 20 });
		await this.#agent("lifecycle", { phase: "finishing", stopReason: "stop" });
		const endSeq = await this.#agent("lifecycle", {
			phase: "end",
			stopReason: "stop",
			...(script.terminalReply === false ? {} : { terminalReply: { disposition: "visible", text: answer } }),
		});
		if (lateDelta)
			await this.#chat("delta", lateDelta.at, {
				deltaText: lateDelta.delta,
				message: message(lateDelta.text),
			});
		await this.#chat("final", endSeq, { stopReason: "stop", message: message(answer) });
		return { events: this.#events };
	}

	/** One `agent` event with the run's next seq (not sent when `skip`); returns that seq. */
	async #agent(
		stream: string,
		data: Record<string, unknown>,
		options: { skip?: boolean } = {},
	): Promise<number> {
		this.#seq++;
		if (options.skip) return this.#seq;
		this.#broadcast(
			"agent",
			{
				runId: this.#script.runId,
				sessionKey: this.#sessionKey,
				stream,
				data,
				seq: this.#seq,
				ts: Date.now(),
			},
			this.#frameGapPending,
		);
		this.#frameGapPending = false;
		this.#events++;
		await sleep(this.#pace);
		return this.#seq;
	}

	async #chat(state: string, at: number, extra: Record<string, unknown>): Promise<void> {
		this.#broadcast("chat", {
			runId: this.#script.runId,
			sessionKey: this.#sessionKey,
			seq: at,
			state,
			...extra,
		});
		this.#events++;
		await sleep(this.#pace);
	}
}

function message(text: string) {
	return { role: "assistant", content: [{ type: "text", text }], timestamp: Date.now() };
}

function freshStats(): GatewaySimStats {
	return { connections: 0, open: 0, hellos: 0, refusals: [], devices: [], deviceTokenConnects: 0, runs: [] };
}

/** Pieces of 6–12 characters, like a model's deltas. */
function splitAnswer(answer: string): string[] {
	const pieces: string[] = [];
	for (let i = 0; i < answer.length; ) {
		const size = 6 + (pieces.length % 3) * 3;
		pieces.push(answer.slice(i, i + size));
		i += size;
	}
	return pieces;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
	const chunks: Buffer[] = [];
	for await (const chunk of req) chunks.push(chunk as Buffer);
	const text = Buffer.concat(chunks).toString("utf8");
	if (text.trim() === "") return {};
	const value = JSON.parse(text) as unknown;
	return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
}

function reply(res: ServerResponse, status: number, body: unknown): void {
	res.writeHead(status, { "content-type": "application/json" });
	res.end(JSON.stringify(body));
}
