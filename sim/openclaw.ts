import { createHash, createPublicKey, randomUUID, verify } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
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

export interface GatewaySim {
	url: string;
	httpUrl: string;
	port: number;
	stats(): GatewaySimStats;
	run(script: RunScript): Promise<{ events: number }>;
	dropAll(code?: number, deviceId?: string): void;
	setTicks(enabled: boolean): void;
	reset(): void;
	close(): Promise<void>;
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

export async function startGatewaySim(options: GatewaySimOptions): Promise<GatewaySim> {
	const log = options.log ?? ((line: string) => console.log(`[openclaw-sim] ${line}`));
	const tickIntervalMs = options.tickIntervalMs ?? 30_000;
	const peers = new Set<Peer>();
	const paired = new Map<string, string>(); // deviceId → deviceToken
	let ticksEnabled = true;
	let stats: GatewaySimStats = freshStats();
	const approvedDevices = new Set<string>();

	const http = createServer((req, res) => {
		void control(req, res).catch((error: unknown) => reply(res, 500, { error: String(error) }));
	});
	const wss = new WebSocketServer({ server: http, maxPayload: MAX_PAYLOAD });

	wss.on("connection", (ws) => {
		stats.connections++;
		const peer: Peer = {
			ws,
			ready: false,
			deviceId: null,
			seq: 0,
			nonce: randomUUID(),
			ts: Date.now(),
			tick: null,
		};
		peers.add(peer);
		ws.send(
			JSON.stringify({
				type: "event",
				event: "connect.challenge",
				payload: { nonce: peer.nonce, ts: peer.ts, capabilities: [] },
			}),
		);
		ws.on("message", (data) => onMessage(peer, String(data)));
		ws.on("close", () => {
			if (peer.tick) clearInterval(peer.tick);
			peers.delete(peer);
		});
	});

	function send(peer: Peer, event: string, payload: unknown, skipSeq = false): void {
		if (!peer.ready || peer.ws.readyState !== peer.ws.OPEN) return;
		peer.seq += skipSeq ? 2 : 1;
		peer.ws.send(JSON.stringify({ type: "event", event, payload, seq: peer.seq }));
	}

	function refuse(peer: Peer, id: unknown, error: SimError): void {
		stats.refusals.push({ code: String(error.details?.code ?? error.code) });
		log(`connect refused: ${error.details?.code ?? error.code}`);
		peer.ws.send(JSON.stringify({ type: "res", id, ok: false, error }));
		peer.ws.close(1008, "connect refused");
	}

	function onMessage(peer: Peer, text: string): void {
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
			const error = checkConnect(peer, frame.params ?? {});
			if (error) refuse(peer, frame.id, error);
			else hello(peer, frame.id, frame.params ?? {});
			return;
		}
		if (frame.type === "req" && frame.method === "agent") {
			// Enough of the `agent` method for a demo: the run's id is the idempotency key.
			const params = frame.params ?? {};
			const runId = String(params.idempotencyKey ?? randomUUID());
			peer.ws.send(
				JSON.stringify({ type: "res", id: frame.id, ok: true, payload: { runId, status: "accepted" } }),
			);
			void runScript({
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

	function checkConnect(peer: Peer, params: Record<string, unknown>): SimError | null {
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
		if (auth.token !== options.token) {
			const deviceToken = typeof auth.deviceToken === "string" ? auth.deviceToken : null;
			const deviceOk = device && deviceToken && paired.get(String(device.id)) === deviceToken;
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
		if (typeof auth.deviceToken === "string" && paired.get(String(device.id)) !== auth.deviceToken) {
			return invalid("device token mismatch", "AUTH_DEVICE_TOKEN_MISMATCH");
		}
		if (options.pairing === "required" && !approvedDevices.has(String(device.id))) {
			return {
				code: "NOT_PAIRED",
				message: "pairing required",
				details: { code: "PAIRING_REQUIRED", reason: "not-paired" },
			};
		}
		return null;
	}

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

	function hello(peer: Peer, id: unknown, params: Record<string, unknown>): void {
		const device = params.device as Record<string, unknown>;
		const deviceId = String(device.id);
		const auth = (params.auth ?? {}) as Record<string, unknown>;
		if (typeof auth.deviceToken === "string") stats.deviceTokenConnects++;
		let deviceToken = paired.get(deviceId);
		if (!deviceToken) {
			deviceToken = `devtok_${randomUUID()}`;
			paired.set(deviceId, deviceToken);
		}
		stats.hellos++;
		if (!stats.devices.includes(deviceId)) stats.devices.push(deviceId);
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
					policy: { maxPayload: MAX_PAYLOAD, maxBufferedBytes: 2 * MAX_PAYLOAD, tickIntervalMs },
				},
			}),
		);
		log(`hello-ok for device ${deviceId.slice(0, 12)}…`);
		// Noise every real gateway sends, which clients must ignore.
		send(peer, "health", { ok: true, ts: Date.now() });
		peer.tick = setInterval(() => {
			if (ticksEnabled) send(peer, "tick", { ts: Date.now() });
		}, tickIntervalMs);
	}

	function broadcast(event: string, payload: unknown, skipSeq = false): void {
		for (const peer of peers) send(peer, event, payload, skipSeq);
	}

	async function runScript(script: RunScript): Promise<{ events: number }> {
		stats.runs.push(script.runId);
		const pace = script.paceMs ?? 2;
		const sessionKey = script.sessionKey ?? `agent:main:myndlens-${script.runId}`;
		const answer = script.answer ?? "The weekly report was sent to the team. Revenue is up 4%.";
		const tools = script.tools ?? [{ name: "read", title: "Read from REPORT.md" }];
		let seq = 0;
		let events = 0;
		let frameGapPending = script.frameSeqGap ?? false;
		const agent = async (stream: string, data: Record<string, unknown>, options: { skip?: boolean } = {}) => {
			seq++;
			if (options.skip) return seq;
			broadcast(
				"agent",
				{ runId: script.runId, sessionKey, stream, data, seq, ts: Date.now() },
				frameGapPending,
			);
			frameGapPending = false;
			events++;
			await sleep(pace);
			return seq;
		};
		const chat = async (state: string, at: number, extra: Record<string, unknown>) => {
			broadcast("chat", { runId: script.runId, sessionKey, seq: at, state, ...extra });
			events++;
			await sleep(pace);
		};
		const message = (text: string) => ({
			role: "assistant",
			content: [{ type: "text", text }],
			timestamp: Date.now(),
		});

		await agent("lifecycle", { phase: "start", startedAt: Date.now() });
		await agent("lifecycle", { phase: "model", provider: "mock", model: "mock-1" });
		for (const [index, tool] of tools.entries()) {
			const toolCallId = `call_${index + 1}`;
			const item = { itemId: `tool:${toolCallId}`, toolCallId, name: tool.name, kind: "tool" };
			await agent("item", { ...item, phase: "start", title: tool.title, status: "running" });
			await agent("tool", { phase: "start", name: tool.name, toolCallId, args: {} });
			await agent("tool", { phase: "result", name: tool.name, toolCallId, isError: false });
			await agent("item", { ...item, phase: "end", title: tool.title, status: "completed" });
		}
		if (script.dropMidRun) {
			for (const peer of peers) peer.ws.close(1012, "service restart");
			return { events };
		}
		if (script.lifecycleError) {
			await agent("lifecycle", { phase: "error", error: "model overloaded" });
			await agent("lifecycle", { phase: "start", startedAt: Date.now() });
		}
		await agent("lifecycle", { phase: "model", provider: "mock", model: "mock-1" });
		const pieces = splitAnswer(answer);
		const itemId = `${randomUUID()}:2`;
		let text = "";
		let lateDelta: { at: number; delta: string; text: string } | null = null;
		for (const [index, delta] of pieces.entries()) {
			text += delta;
			const skip = script.seqGap === true && index === 1 && pieces.length > 2;
			const at = await agent("assistant", { text, delta, itemId }, { skip });
			if (skip) continue;
			if (script.duplicate && index === 0) {
				broadcast("agent", {
					runId: script.runId,
					sessionKey,
					stream: "assistant",
					data: { text, delta, itemId },
					seq: at,
				});
				events++;
			}
			// The last chat delta is throttled past the lifecycle end, as on the real gateway.
			if (index === pieces.length - 1) lateDelta = { at, delta, text };
			else {
				await chat("delta", at, { deltaText: delta, message: message(text) });
				if (script.duplicate && index === 0)
					await chat("delta", at, { deltaText: delta, message: message(text) });
			}
		}
		await agent("usage", { outputTokens: 20 });
		await agent("lifecycle", { phase: "finishing", stopReason: "stop" });
		const endSeq = await agent("lifecycle", {
			phase: "end",
			stopReason: "stop",
			...(script.terminalReply === false ? {} : { terminalReply: { disposition: "visible", text: answer } }),
		});
		if (lateDelta)
			await chat("delta", lateDelta.at, { deltaText: lateDelta.delta, message: message(lateDelta.text) });
		await chat("final", endSeq, { stopReason: "stop", message: message(answer) });
		return { events };
	}

	async function control(req: IncomingMessage, res: ServerResponse): Promise<void> {
		const path = new URL(req.url ?? "/", "http://sim").pathname;
		const body = req.method === "POST" ? await readJson(req) : {};
		if (req.method === "GET" && path === "/health") return reply(res, 200, { ok: true });
		if (req.method === "GET" && path === "/__sim/state") return reply(res, 200, stats);
		if (req.method === "POST" && path === "/__sim/runs") {
			const script = body as unknown as RunScript;
			if (typeof script.runId !== "string" || script.runId === "")
				return reply(res, 400, { error: "runId required" });
			return reply(res, 200, await runScript(script));
		}
		if (req.method === "POST" && path === "/__sim/drop") {
			dropAll(Number(body.code ?? 1012), typeof body.deviceId === "string" ? body.deviceId : undefined);
			return reply(res, 200, { ok: true });
		}
		if (req.method === "POST" && path === "/__sim/ticks") {
			ticksEnabled = body.enabled !== false;
			return reply(res, 200, { ok: true, ticks: ticksEnabled });
		}
		if (req.method === "POST" && path === "/__sim/shutdown") {
			broadcast("shutdown", { reason: "restart", restartExpectedMs: Number(body.restartExpectedMs ?? 1000) });
			return reply(res, 200, { ok: true });
		}
		if (req.method === "POST" && path === "/__sim/approve") {
			approvedDevices.add(String(body.deviceId));
			return reply(res, 200, { ok: true });
		}
		if (req.method === "POST" && path === "/__sim/reset") {
			reset();
			return reply(res, 200, { ok: true });
		}
		return reply(res, 404, { error: `no route ${req.method} ${path}` });
	}

	/** Closes every connection, or only one device's (tests share one simulator). */
	function dropAll(code = 1012, deviceId?: string): void {
		for (const peer of peers) {
			if (deviceId === undefined || peer.deviceId === deviceId) peer.ws.close(code, "dropped by simulator");
		}
	}

	function reset(): void {
		stats = freshStats();
		ticksEnabled = true;
	}

	await new Promise<void>((resolve) => http.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve));
	const port = (http.address() as AddressInfo).port;
	const host = options.host ?? "127.0.0.1";
	log(`OpenClaw gateway simulator on ws://${host}:${port}`);
	return {
		url: `ws://${host}:${port}`,
		httpUrl: `http://${host}:${port}`,
		port,
		// `open`: connections that completed the handshake and are still up.
		stats: () => ({ ...stats, open: [...peers].filter((peer) => peer.ready).length }),
		run: runScript,
		dropAll,
		setTicks: (enabled) => {
			ticksEnabled = enabled;
		},
		reset,
		close: async () => {
			for (const peer of peers) peer.ws.terminate();
			await new Promise<void>((resolve) => wss.close(() => resolve()));
			await new Promise<void>((resolve) => http.close(() => resolve()));
		},
	};
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
