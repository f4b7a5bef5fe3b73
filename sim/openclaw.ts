import { createHash, createPublicKey, randomUUID, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { type WebSocket, WebSocketServer } from "ws";
import {
	CLIENT_IDS,
	CLIENT_MODES,
	CONNECT_KEYS,
	DEVICE_SIGNATURE_SKEW_MS,
	type DeviceAuthFields,
	deviceAuthPayloadV2,
	deviceAuthPayloadV3,
	type GatewayError,
	MAX_BUFFERED_BYTES,
	MAX_PAYLOAD,
	MAX_PREAUTH_PAYLOAD,
	OPERATOR_SCOPES,
	PREAUTH_TIMEOUT_MS,
	PROTOCOL,
	ROLES,
	receivesEvent,
	scopeSatisfied,
	TOOL_EVENTS_CAP,
} from "./openclaw-spec.ts";

export { CLIENT_IDS, CLIENT_MODES } from "./openclaw-spec.ts";

/**
 * The wait between two events: `ms` milliseconds, or with 0 just the next turn of the event loop
 * (a timer of 0 waits at least 1 ms in Node, which capped a run "as fast as the gateway sends" at
 * about 1,000 events per second per connection).
 */
export function pace(ms: number): Promise<void> {
	return ms > 0 ? sleep(ms) : nextTurn();
}

/**
 * A local stand-in for a tenant's OpenClaw Gateway, speaking protocol 4 from its own spec
 * (sim/openclaw-spec.ts; the protocol docs in the `openclaw` package; OPENCLAW-NOTES.md and the
 * recorded real run). It imports nothing from `src/`. It refuses what the real gateway refuses, with
 * the real error shapes: pre-connect size and time limits, a closed `connect`, protocol range, token,
 * device token and its scopes, the Ed25519 device signature (v3, or legacy v2), pairing of unknown
 * devices on a remote peer. It sends each event only to the connections the real gateway sends it
 * to (scopes; `tool` events only with `caps: ["tool-events"]`), with the real payload fields and
 * the noise a real gateway sends. It records every frame it receives. Its assumptions are listed in
 * sim/README.md.
 *
 * Per-connection behaviour is chosen by the WebSocket path, so one simulator serves tests that run
 * in parallel: `/remote` treats the peer as non-loopback (pairing required, device tokens issued),
 * `/no-challenge` never sends `connect.challenge`, `/preauth-ms/N` closes an unauthenticated socket
 * after N ms. Segments combine: `/remote/preauth-ms/200`.
 *
 * The control API under `/__sim` (HTTP, same port) has NO authentication on purpose: a local test
 * tool bound to 127.0.0.1, never deployed.
 */

export interface GatewaySimOptions {
	/** 0 (the default) picks a free port. */
	port?: number;
	host?: string;
	token: string;
	tickIntervalMs?: number;
	/** Every connection's peer, unless its path says `/remote` (default "loopback"). */
	peer?: "loopback" | "remote";
	/** Closes a socket that has not completed `connect` by then (default 15 s, the real default). */
	preauthTimeoutMs?: number;
	log?: (line: string) => void;
}

export interface RunScript {
	runId: string;
	sessionKey?: string;
	answer?: string;
	/** Tool calls before the answer; each becomes item start → tool start → tool result → item end. */
	tools?: { name: string; title?: string }[];
	/** Every tool's result says `isError: true`. */
	toolError?: boolean;
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
	/** The second chat delta is a `replace: true` one: `deltaText` is the whole text so far. */
	replaceDelta?: boolean;
	/**
	 * How the run ends instead of `final`: "error" (lifecycle `error` with no retry, chat `error`) or
	 * "aborted" (lifecycle `end` with `aborted: true`, chat `aborted`). The answer stops half-way.
	 */
	chatEnd?: "error" | "aborted";
	/** Milliseconds between events (default 2). */
	paceMs?: number;
	/** Called as each `agent` event is sent (in-process callers: the bench times from the event's own send). */
	onAgentEvent?: (stream: string, data: Record<string, unknown>) => void;
}

export interface GatewaySimStats {
	/** Characters of every event frame sent, to every connection (the bench's measure of reading). */
	eventChars: number;
	connections: number;
	open: number;
	hellos: number;
	refusals: { code: string; deviceId?: string }[];
	devices: string[];
	deviceTokenConnects: number;
	runs: string[];
	/** Connections closed before `connect`: "preauth-payload-too-large", "handshake-timeout". */
	preauthCloses: string[];
}

/** One `connect` as received, and what came of it. */
export interface RecordedConnect {
	connId: string;
	path: string;
	peer: "loopback" | "remote";
	params: Record<string, unknown>;
	/** "hello-ok" or the refusal's `details.code` (else `error.code`). */
	outcome: string;
	/** What the connection was granted (hello-ok only). */
	scopes?: string[];
	deviceTokenIssued?: boolean;
}

/** Per-device behaviour a test asks for (POST /__sim/devices). */
interface DeviceRule {
	/** The next N connects from this device get UNAVAILABLE (startup sidecars) with `retryAfterMs`. */
	unavailable?: number;
	retryAfterMs?: number;
	/** An operator narrowed this device's current token to these scopes (AUTH_SCOPE_MISMATCH when it asks more). */
	tokenScopes?: string[];
}

interface Paired {
	publicKey: string;
	role: string;
	scopes: string[];
	token: { value: string; scopes: string[] } | null;
}

interface PeerFlags {
	remote: boolean;
	noChallenge: boolean;
	preauthMs: number;
}

interface Peer {
	ws: WebSocket;
	connId: string;
	path: string;
	flags: PeerFlags;
	ready: boolean;
	role: string;
	scopes: string[];
	caps: string[];
	deviceId: string | null;
	seq: number;
	nonce: string;
	ts: number;
	tick: NodeJS.Timeout | null;
	preauth: NodeJS.Timeout | null;
}

/** Options of one broadcast: `tool` marks agent `tool` stream events (tool-events recipients only). */
interface SendOptions {
	skipSeq?: boolean;
	tool?: boolean;
	stateVersion?: Record<string, number>;
	deviceId?: string;
}

const MAX_RECORDED = 2_000;
const AGENT_ID = "main";

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
	readonly #paired = new Map<string, Paired>();
	/** deviceId → the pairing request a remote connect left pending. */
	readonly #pending = new Map<
		string,
		{ requestId: string; role: string; scopes: string[]; publicKey: string }
	>();
	readonly #rules = new Map<string, DeviceRule>();
	readonly #connects: RecordedConnect[] = [];
	readonly #frames: { connId: string; frame: unknown }[] = [];
	readonly #http: Server;
	readonly #wss: WebSocketServer;
	#ticksEnabled = true;
	#stats: GatewaySimStats = freshStats();
	#stateVersion = { presence: 1, health: 1 };
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
		this.#wss.on("connection", (ws, req) => this.#accept(ws, req));
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

	/** Every `connect` received (the newest last), optionally only one device's. */
	connects(deviceId?: string): RecordedConnect[] {
		return this.#connects.filter(
			(c) => deviceId === undefined || (c.params.device as { id?: unknown } | undefined)?.id === deviceId,
		);
	}

	/** Every frame received from clients (the newest last). */
	frames(): { connId: string; frame: unknown }[] {
		return [...this.#frames];
	}

	/** Plays one scripted agent run to every connected client; resolves once its last event is sent. */
	async run(script: RunScript): Promise<{ events: number }> {
		const drop = () => {
			for (const peer of this.#peers) peer.ws.close(1012, "service restart");
		};
		return new ScriptedRun(
			script,
			(event, payload, options) => this.#broadcast(event, payload, options),
			drop,
		).play(this.#stats);
	}

	/**
	 * Replays the `in` event frames of a recorded real run (openclaw-sample-run.jsonl by default) with
	 * its run id replaced by `runId`: every field and every noise event as the real gateway sent them,
	 * through the same scope and caps gating, with this simulator's connection seqs.
	 */
	async replay(runId: string, file?: string, paceMs = 2): Promise<{ events: number }> {
		const path = file ?? new URL("./openclaw-sample-run.jsonl", import.meta.url).pathname;
		const lines = readFileSync(path, "utf8")
			.split("\n")
			.filter((line) => line.trim() !== "");
		const recordedRunId = "exec_abc123";
		let events = 0;
		for (const line of lines) {
			const entry = JSON.parse(line.replaceAll(recordedRunId, runId)) as {
				dir: string;
				frame: { type: string; event?: string; payload?: unknown; stateVersion?: Record<string, number> };
			};
			const frame = entry.frame;
			if (entry.dir !== "in" || frame.type !== "event" || !frame.event || frame.event === "connect.challenge")
				continue;
			const stream = (frame.payload as { stream?: unknown } | undefined)?.stream;
			this.#broadcast(frame.event, frame.payload, {
				tool: frame.event === "agent" && stream === "tool",
				...(frame.stateVersion ? { stateVersion: frame.stateVersion } : {}),
			});
			events++;
			await pace(paceMs);
		}
		this.#stats.runs.push(runId);
		return { events };
	}

	/** Closes every connection, or only one device's (tests share one simulator). */
	dropAll(code = 1012, deviceId?: string): void {
		for (const peer of this.#peers) {
			if (deviceId === undefined || peer.deviceId === deviceId) peer.ws.close(code, "dropped by simulator");
		}
	}

	/** The gateway goes down for a restart: `shutdown`, then the socket closes (1012). */
	shutdown(restartExpectedMs: number, deviceId?: string): void {
		for (const peer of this.#peers) {
			if (deviceId !== undefined && peer.deviceId !== deviceId) continue;
			this.#send(peer, "shutdown", { reason: "gateway restarting", restartExpectedMs });
			peer.ws.close(1012, "service restart");
		}
	}

	/** An operator approves a pending (or any) device, for `scopes` (default: what it asked for). */
	approve(deviceId: string, scopes?: string[]): boolean {
		const pending = this.#pending.get(deviceId);
		const existing = this.#paired.get(deviceId);
		const publicKey = pending?.publicKey ?? existing?.publicKey;
		if (!publicKey) return false;
		this.#pending.delete(deviceId);
		this.#paired.set(deviceId, {
			publicKey,
			role: pending?.role ?? existing?.role ?? "operator",
			scopes: scopes ?? pending?.scopes ?? existing?.scopes ?? [],
			token: existing?.token ?? null,
		});
		return true;
	}

	setDeviceRule(deviceId: string, rule: DeviceRule): void {
		this.#rules.set(deviceId, { ...this.#rules.get(deviceId), ...rule });
		const paired = this.#paired.get(deviceId);
		if (rule.tokenScopes && paired?.token) paired.token.scopes = [...rule.tokenScopes];
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

	#accept(ws: WebSocket, req: IncomingMessage): void {
		this.#stats.connections++;
		const path = new URL(req.url ?? "/", "http://sim").pathname;
		const flags = peerFlags(path, this.#options);
		const peer: Peer = {
			ws,
			connId: randomUUID(),
			path,
			flags,
			ready: false,
			role: "operator",
			scopes: [],
			caps: [],
			deviceId: null,
			seq: 0,
			nonce: randomUUID(),
			ts: Date.now(),
			tick: null,
			preauth: null,
		};
		this.#peers.add(peer);
		peer.preauth = setTimeout(() => {
			if (peer.ready) return;
			this.#stats.preauthCloses.push("handshake-timeout");
			this.#log("handshake timeout: no connect");
			ws.close();
		}, flags.preauthMs);
		if (!flags.noChallenge) {
			ws.send(
				JSON.stringify({
					type: "event",
					event: "connect.challenge",
					payload: { nonce: peer.nonce, ts: peer.ts, capabilities: ["model-catalog-snapshot"] },
				}),
			);
		}
		ws.on("message", (data: Buffer, isBinary: boolean) => this.#onMessage(peer, data, isBinary));
		ws.on("close", () => {
			if (peer.tick) clearInterval(peer.tick);
			if (peer.preauth) clearTimeout(peer.preauth);
			this.#peers.delete(peer);
		});
	}

	/** Sends one event to one connection if the real gateway would: scopes, caps, its own seq. */
	#send(peer: Peer, event: string, payload: unknown, options: SendOptions = {}): void {
		if (!peer.ready || peer.ws.readyState !== peer.ws.OPEN) return;
		if (options.deviceId !== undefined && peer.deviceId !== options.deviceId) return;
		if (!receivesEvent(peer.role, peer.scopes, event)) return;
		if (options.tool && !peer.caps.includes(TOOL_EVENTS_CAP)) return;
		peer.seq += options.skipSeq ? 2 : 1;
		const frame = JSON.stringify({
			type: "event",
			event,
			payload,
			seq: peer.seq,
			...(options.stateVersion ? { stateVersion: options.stateVersion } : {}),
		});
		this.#stats.eventChars += frame.length;
		peer.ws.send(frame);
	}

	#broadcast(event: string, payload: unknown, options: SendOptions = {}): void {
		for (const peer of this.#peers) this.#send(peer, event, payload, options);
	}

	#onMessage(peer: Peer, data: Buffer, isBinary: boolean): void {
		if (!peer.ready && data.byteLength > MAX_PREAUTH_PAYLOAD) {
			this.#stats.preauthCloses.push("preauth-payload-too-large");
			peer.ws.close(1009, "preauth payload too large");
			return;
		}
		let frame: { type?: unknown; id?: unknown; method?: unknown; params?: unknown };
		try {
			frame = JSON.parse(isBinary ? data.toString("utf8") : String(data));
		} catch {
			peer.ws.close(1008, "invalid request frame");
			return;
		}
		this.#frames.push({ connId: peer.connId, frame });
		if (this.#frames.length > MAX_RECORDED) this.#frames.shift();
		const isRequest =
			typeof frame === "object" && frame !== null && frame.type === "req" && typeof frame.id === "string";
		if (!peer.ready) {
			if (!isRequest) {
				peer.ws.close(1008, "invalid request frame");
				return;
			}
			if (frame.method !== "connect") {
				this.#refuse(peer, frame.id, {
					code: "INVALID_REQUEST",
					message: "invalid handshake: first request must be connect",
				});
				return;
			}
			const params = isRecord(frame.params) ? frame.params : {};
			const record: RecordedConnect = {
				connId: peer.connId,
				path: peer.path,
				peer: peer.flags.remote ? "remote" : "loopback",
				params,
				outcome: "pending",
			};
			this.#connects.push(record);
			if (this.#connects.length > MAX_RECORDED) this.#connects.shift();
			const result = this.#checkConnect(peer, params);
			if ("error" in result) {
				record.outcome = String(result.error.details?.code ?? result.error.code);
				this.#refuse(peer, frame.id, result.error, result.closeCode);
			} else {
				record.outcome = "hello-ok";
				record.scopes = result.scopes;
				record.deviceTokenIssued = result.deviceToken !== null;
				this.#hello(peer, frame.id, params, result);
			}
			return;
		}
		if (!isRequest) return;
		if (frame.method === "agent") {
			if (!scopeSatisfied("operator.write", peer.scopes)) {
				peer.ws.send(
					JSON.stringify({
						type: "res",
						id: frame.id,
						ok: false,
						error: { code: "INVALID_REQUEST", message: "missing scope: operator.write" },
					}),
				);
				return;
			}
			// Enough of the `agent` method for a demo: the run's id is the idempotency key.
			const params = isRecord(frame.params) ? frame.params : {};
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
		peer.ws.send(
			JSON.stringify({
				type: "res",
				id: frame.id,
				ok: false,
				error: { code: "INVALID_REQUEST", message: `unknown method: ${String(frame.method)}` },
			}),
		);
	}

	// ---- the handshake ----

	#refuse(peer: Peer, id: unknown, error: GatewayError, closeCode = 1008): void {
		const code = String(error.details?.code ?? error.code);
		const deviceId =
			this.#connects.at(-1)?.connId === peer.connId ? deviceIdOf(this.#connects.at(-1)) : undefined;
		this.#stats.refusals.push({ code, ...(deviceId ? { deviceId } : {}) });
		this.#log(`connect refused: ${code}`);
		peer.ws.send(JSON.stringify({ type: "res", id, ok: false, error }));
		peer.ws.close(closeCode, error.message.slice(0, 120));
	}

	/**
	 * The real gateway's order: params, protocol, role, auth (token, device token and its scopes),
	 * device proof (id, signedAt, nonce, signature), startup availability, pairing.
	 */
	#checkConnect(
		peer: Peer,
		params: Record<string, unknown>,
	): { error: GatewayError; closeCode?: number } | Granted {
		const invalid = (message: string, details?: Record<string, unknown>): { error: GatewayError } => ({
			error: { code: "INVALID_REQUEST", message, ...(details ? { details } : {}) },
		});
		const unknown = Object.keys(params).filter((key) => !CONNECT_KEYS.has(key));
		if (unknown.length > 0) return invalid(`invalid connect params: unexpected property '${unknown[0]}'`);
		const client = isRecord(params.client) ? params.client : null;
		if (!client) return invalid("invalid connect params: must have required property 'client'");
		for (const key of ["id", "version", "platform", "mode"]) {
			if (typeof client[key] !== "string" || client[key] === "")
				return invalid(`invalid connect params: client must have required property '${key}'`);
		}
		if (!CLIENT_IDS.includes(String(client.id))) return invalid("invalid connect params: client/id");
		if (!CLIENT_MODES.includes(String(client.mode))) return invalid("invalid connect params: client/mode");
		if (params.scopes !== undefined && !isStringArray(params.scopes))
			return invalid("invalid connect params: scopes must be array of strings");
		if (params.caps !== undefined && !isStringArray(params.caps))
			return invalid("invalid connect params: caps must be array of strings");
		const min = params.minProtocol;
		const max = params.maxProtocol;
		if (typeof min !== "number" || typeof max !== "number")
			return invalid("invalid connect params: minProtocol and maxProtocol are required");
		if (!(min <= PROTOCOL && PROTOCOL <= max))
			return invalid("protocol mismatch", {
				code: "PROTOCOL_MISMATCH",
				expectedProtocol: PROTOCOL,
				minProtocol: min,
				maxProtocol: max,
			});
		const role = String(params.role ?? "operator");
		if (!ROLES.includes(role)) return invalid("invalid role");
		const requested = isStringArray(params.scopes) ? params.scopes : [];
		const unknownScope = requested.find((scope) => role === "operator" && !OPERATOR_SCOPES.includes(scope));
		if (unknownScope) return invalid(`invalid connect params: unknown scope '${unknownScope}'`);

		// Auth: the shared token, else a device token the gateway issued.
		const auth = isRecord(params.auth) ? params.auth : {};
		const device = isRecord(params.device) ? params.device : null;
		const deviceId = device ? String(device.id ?? "") : null;
		const sharedOk = auth.token === this.#options.token;
		const presentedDeviceToken = typeof auth.deviceToken === "string" ? auth.deviceToken : null;
		const issued = deviceId ? (this.#paired.get(deviceId)?.token ?? null) : null;
		if (presentedDeviceToken !== null) {
			if (!issued || issued.value !== presentedDeviceToken) {
				if (!sharedOk)
					return invalid("unauthorized: device token mismatch (rotate/reissue device token)", {
						code: "AUTH_DEVICE_TOKEN_MISMATCH",
						authReason: "device_token_mismatch",
						recommendedNextStep: "update_auth_credentials",
					});
			} else if (!requested.every((scope) => scopeSatisfied(scope, issued.scopes))) {
				return invalid("unauthorized: device token does not cover the requested scopes", {
					code: "AUTH_SCOPE_MISMATCH",
					authReason: "scope_mismatch",
					recommendedNextStep: "review_auth_configuration",
				});
			}
		}
		const deviceTokenOk = presentedDeviceToken !== null && issued?.value === presentedDeviceToken;
		if (!sharedOk && !deviceTokenOk) {
			const missing = auth.token === undefined && presentedDeviceToken === null;
			return invalid(
				"unauthorized: gateway token mismatch (set gateway.remote.token to match gateway.auth.token)",
				{
					code: missing ? "AUTH_TOKEN_MISSING" : "AUTH_TOKEN_MISMATCH",
					authReason: missing ? "token_missing" : "token_mismatch",
					canRetryWithDeviceToken: !missing && device !== null && presentedDeviceToken === null,
					recommendedNextStep: "update_auth_credentials",
				},
			);
		}
		const backend = client.id === "gateway-client" && client.mode === "backend";
		if (!device) {
			// Only a direct-loopback backend with the shared token may go without a device (auth.md).
			if (peer.flags.remote || !backend || !sharedOk)
				return {
					error: {
						code: "NOT_PAIRED",
						message: "device identity required",
						details: { code: "DEVICE_IDENTITY_REQUIRED" },
					},
				};
			return { role, scopes: requested, deviceId: null, deviceToken: null, caps: capsOf(params) };
		}

		const proof = verifyDeviceProof(peer, params, device, client, role, requested);
		if (proof) return invalid(proof.message, { code: proof.code, reason: proof.reason });
		const id = String(device.id);
		const publicKey = String(device.publicKey);

		const rule = this.#rules.get(id);
		if (rule?.unavailable && rule.unavailable > 0) {
			rule.unavailable--;
			return {
				error: {
					code: "UNAVAILABLE",
					message: "gateway starting; retry shortly",
					retryable: true,
					retryAfterMs: rule.retryAfterMs ?? 500,
					details: { reason: "startup-sidecars" },
				},
				closeCode: 1013,
			};
		}

		// Pairing: a loopback backend with the shared token skips it (no record, so no device token);
		// other loopback clients are approved silently; a remote device must be approved by an operator.
		const paired = this.#paired.get(id);
		const isPaired = paired?.publicKey === publicKey;
		if (!isPaired) {
			if (!peer.flags.remote && backend && (sharedOk || deviceTokenOk))
				return { role, scopes: requested, deviceId: id, deviceToken: null, caps: capsOf(params) };
			if (peer.flags.remote) return this.#pairingRequired(id, publicKey, role, requested, "not-paired");
			this.#paired.set(id, { publicKey, role, scopes: requested, token: null });
		} else if (!requested.every((scope) => scopeSatisfied(scope, paired.scopes))) {
			if (peer.flags.remote) return this.#pairingRequired(id, publicKey, role, requested, "scope-upgrade");
			paired.scopes = [...new Set([...paired.scopes, ...requested])];
		}
		const record = this.#paired.get(id) as Paired;
		if (!record.token || !requested.every((scope) => scopeSatisfied(scope, record.token?.scopes ?? []))) {
			record.token = { value: `devtok_${randomUUID()}`, scopes: [...requested] };
		}
		return { role, scopes: requested, deviceId: id, deviceToken: record.token.value, caps: capsOf(params) };
	}

	#pairingRequired(
		deviceId: string,
		publicKey: string,
		role: string,
		scopes: string[],
		reason: "not-paired" | "scope-upgrade",
	): { error: GatewayError } {
		const requestId = this.#pending.get(deviceId)?.requestId ?? randomUUID();
		this.#pending.set(deviceId, { requestId, role, scopes, publicKey });
		const approved = this.#paired.get(deviceId);
		return {
			error: {
				code: "NOT_PAIRED",
				message:
					reason === "not-paired"
						? "pairing required: device is not approved yet"
						: "pairing required: device is asking for more scopes than currently approved",
				details: {
					code: "PAIRING_REQUIRED",
					reason,
					requestId,
					remediationHint:
						reason === "not-paired"
							? "Approve this device from the pending pairing requests."
							: "Review the requested scopes, then approve the pending upgrade.",
					deviceId,
					requestedRole: role,
					requestedScopes: scopes,
					...(approved ? { approvedRoles: [approved.role], approvedScopes: approved.scopes } : {}),
				},
			},
		};
	}

	#hello(peer: Peer, id: unknown, params: Record<string, unknown>, granted: Granted): void {
		const auth = isRecord(params.auth) ? params.auth : {};
		if (typeof auth.deviceToken === "string") this.#stats.deviceTokenConnects++;
		this.#stats.hellos++;
		if (granted.deviceId && !this.#stats.devices.includes(granted.deviceId))
			this.#stats.devices.push(granted.deviceId);
		if (peer.preauth) clearTimeout(peer.preauth);
		peer.ready = true;
		peer.deviceId = granted.deviceId;
		peer.role = granted.role;
		peer.scopes = granted.scopes;
		peer.caps = granted.caps;
		const client = params.client as Record<string, unknown>;
		peer.ws.send(
			JSON.stringify({
				type: "res",
				id,
				ok: true,
				payload: {
					type: "hello-ok",
					protocol: PROTOCOL,
					server: { version: "sim", connId: peer.connId },
					features: {
						methods: ["agent", "health"],
						events: ["agent", "chat", "tick", "health", "presence", "task", "cron", "shutdown"],
						capabilities: ["session-scoped-chat-metadata"],
					},
					snapshot: {
						presence: [],
						health: { ok: true },
						stateVersion: this.#stateVersion,
						uptimeMs: process.uptime() * 1000,
					},
					auth: {
						method: granted.deviceToken && !(auth.token === this.#options.token) ? "device-token" : "token",
						role: granted.role,
						scopes: granted.scopes,
						...(granted.deviceToken ? { deviceToken: granted.deviceToken } : {}),
					},
					policy: {
						maxPayload: MAX_PAYLOAD,
						maxBufferedBytes: MAX_BUFFERED_BYTES,
						tickIntervalMs: this.#tickIntervalMs,
					},
				},
			}),
		);
		this.#log(
			`hello-ok for ${granted.deviceId ? `device ${granted.deviceId.slice(0, 12)}…` : String(client.id)}`,
		);
		// Noise every real gateway sends after hello-ok (openclaw-sample-run.jsonl), which clients must ignore.
		this.#stateVersion = { presence: this.#stateVersion.presence + 1, health: this.#stateVersion.health + 1 };
		this.#send(peer, "health", healthPayload(), { stateVersion: this.#stateVersion });
		this.#send(
			peer,
			"presence",
			{
				presence: [
					{ deviceId: granted.deviceId, roles: [granted.role], scopes: granted.scopes, ts: Date.now() },
				],
			},
			{ stateVersion: this.#stateVersion },
		);
		this.#send(peer, "cron", cronPayload());
		this.#send(peer, "sessions.changed", { reason: "cron-bindings-loaded", ts: Date.now() });
		this.#send(peer, "update.available", {
			updateAvailable: null,
			schedule: { channel: "stable", autoEnabled: false },
		});
		peer.tick = setInterval(() => {
			if (this.#ticksEnabled) this.#send(peer, "tick", { ts: Date.now() });
		}, this.#tickIntervalMs);
	}

	// ---- the control API ----

	async #control(req: IncomingMessage, res: ServerResponse): Promise<void> {
		const url = new URL(req.url ?? "/", "http://sim");
		const path = url.pathname;
		const body = req.method === "POST" ? await readJson(req) : {};
		if (req.method === "GET" && path === "/health") return reply(res, 200, { ok: true });
		if (req.method === "GET" && path === "/__sim/state") return reply(res, 200, this.stats());
		if (req.method === "GET" && path === "/__sim/connects")
			return reply(res, 200, { connects: this.connects(url.searchParams.get("deviceId") ?? undefined) });
		if (req.method === "GET" && path === "/__sim/frames") return reply(res, 200, { frames: this.frames() });
		if (req.method === "GET" && path === "/__sim/pairing")
			return reply(res, 200, {
				pending: [...this.#pending.entries()].map(([deviceId, p]) => ({
					deviceId,
					...p,
					publicKey: undefined,
				})),
			});
		if (req.method === "POST" && path === "/__sim/runs") {
			const script = body as unknown as RunScript;
			if (typeof script.runId !== "string" || script.runId === "")
				return reply(res, 400, { error: "runId required" });
			return reply(res, 200, await this.run(script));
		}
		if (req.method === "POST" && path === "/__sim/replay") {
			if (typeof body.runId !== "string" || body.runId === "")
				return reply(res, 400, { error: "runId required" });
			return reply(res, 200, await this.replay(body.runId));
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
			this.shutdown(
				Number(body.restartExpectedMs ?? 1000),
				typeof body.deviceId === "string" ? body.deviceId : undefined,
			);
			return reply(res, 200, { ok: true });
		}
		if (req.method === "POST" && path === "/__sim/approve") {
			const scopes = isStringArray(body.scopes) ? body.scopes : undefined;
			const ok = this.approve(String(body.deviceId), scopes);
			return reply(res, ok ? 200 : 404, { ok });
		}
		if (req.method === "POST" && path === "/__sim/devices") {
			const rule: DeviceRule = {};
			if (typeof body.unavailable === "number") rule.unavailable = body.unavailable;
			if (typeof body.retryAfterMs === "number") rule.retryAfterMs = body.retryAfterMs;
			if (isStringArray(body.tokenScopes)) rule.tokenScopes = body.tokenScopes;
			this.setDeviceRule(String(body.deviceId), rule);
			return reply(res, 200, { ok: true });
		}
		if (req.method === "POST" && path === "/__sim/reset") {
			this.reset();
			return reply(res, 200, { ok: true });
		}
		return reply(res, 404, { error: `no route ${req.method} ${path}` });
	}
}

/** What a connect that passed every check is granted. */
interface Granted {
	role: string;
	scopes: string[];
	deviceId: string | null;
	deviceToken: string | null;
	caps: string[];
}

export function startGatewaySim(options: GatewaySimOptions): Promise<GatewaySim> {
	return new GatewaySim(options).listen();
}

function peerFlags(path: string, options: GatewaySimOptions): PeerFlags {
	const segments = path.split("/").filter((segment) => segment !== "");
	const after = (key: string) => {
		const index = segments.indexOf(key);
		const value = index >= 0 ? Number(segments[index + 1]) : Number.NaN;
		return Number.isFinite(value) && value > 0 ? value : null;
	};
	return {
		remote: segments.includes("remote") || options.peer === "remote",
		noChallenge: segments.includes("no-challenge"),
		preauthMs: after("preauth-ms") ?? options.preauthTimeoutMs ?? PREAUTH_TIMEOUT_MS,
	};
}

/**
 * The device proof, in the real gateway's order (`verifyGatewayConnectDeviceProof`): id = SHA-256 of
 * the public key, signedAt within the skew, nonce present and the challenge's, then the Ed25519
 * signature over the v3 payload (or the legacy v2). Null when it holds.
 */
function verifyDeviceProof(
	peer: Peer,
	params: Record<string, unknown>,
	device: Record<string, unknown>,
	client: Record<string, unknown>,
	role: string,
	scopes: string[],
): { code: string; reason: string; message: string } | null {
	const publicKey = typeof device.publicKey === "string" ? device.publicKey : "";
	const raw = Buffer.from(publicKey, "base64url");
	const derivedId = raw.length === 32 ? createHash("sha256").update(raw).digest("hex") : null;
	if (!derivedId || derivedId !== device.id)
		return {
			code: "DEVICE_AUTH_DEVICE_ID_MISMATCH",
			reason: "device-id-mismatch",
			message: "device identity mismatch",
		};
	const signedAt = device.signedAt;
	if (typeof signedAt !== "number" || Math.abs(Date.now() - signedAt) > DEVICE_SIGNATURE_SKEW_MS)
		return {
			code: "DEVICE_AUTH_SIGNATURE_EXPIRED",
			reason: "device-signature-stale",
			message: "device signature expired",
		};
	const nonce = typeof device.nonce === "string" ? device.nonce.trim() : "";
	if (!nonce)
		return {
			code: "DEVICE_AUTH_NONCE_REQUIRED",
			reason: "device-nonce-missing",
			message: "device nonce required",
		};
	if (nonce !== peer.nonce)
		return {
			code: "DEVICE_AUTH_NONCE_MISMATCH",
			reason: "device-nonce-mismatch",
			message: "device nonce mismatch",
		};
	const auth = isRecord(params.auth) ? params.auth : {};
	const token = [auth.token, auth.deviceToken, auth.bootstrapToken].find((t) => typeof t === "string");
	const fields: DeviceAuthFields = {
		deviceId: String(device.id),
		clientId: String(client.id),
		clientMode: String(client.mode),
		role,
		scopes,
		signedAtMs: signedAt,
		token: typeof token === "string" ? token : "",
		nonce,
		platform: typeof client.platform === "string" ? client.platform : "",
		deviceFamily: typeof client.deviceFamily === "string" ? client.deviceFamily : "",
	};
	const signature = typeof device.signature === "string" ? device.signature : "";
	if (
		!verifyEd25519(publicKey, deviceAuthPayloadV3(fields), signature) &&
		!verifyEd25519(publicKey, deviceAuthPayloadV2(fields), signature)
	)
		return {
			code: "DEVICE_AUTH_SIGNATURE_INVALID",
			reason: "device-signature",
			message: "device signature invalid",
		};
	return null;
}

/** Ed25519 over the UTF-8 payload, key and signature base64url (auth.md). */
export function verifyEd25519(publicKey: string, payload: string, signature: string): boolean {
	try {
		const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: publicKey }, format: "jwk" });
		return verify(null, Buffer.from(payload, "utf8"), key, Buffer.from(signature, "base64url"));
	} catch {
		return false;
	}
}

function capsOf(params: Record<string, unknown>): string[] {
	return isStringArray(params.caps) ? params.caps : [];
}

function deviceIdOf(record: RecordedConnect | undefined): string | undefined {
	const device = record?.params.device;
	return isRecord(device) && typeof device.id === "string" ? device.id : undefined;
}

function healthPayload() {
	return {
		ok: true,
		ts: Date.now(),
		durationMs: 12,
		plugins: { loaded: ["memory-core"], errors: [], unavailable: [] },
		channels: {},
		channelOrder: [],
		heartbeatSeconds: 1800,
		defaultAgentId: AGENT_ID,
		agents: [{ agentId: AGENT_ID, isDefault: true }],
	};
}

function cronPayload() {
	const id = randomUUID();
	return {
		jobId: id,
		action: "added",
		job: {
			id,
			declarationKey: `heartbeat:${AGENT_ID}`,
			displayName: `Heartbeat (${AGENT_ID})`,
			agentId: AGENT_ID,
			name: `heartbeat-${AGENT_ID}`,
			enabled: true,
			schedule: { kind: "every", everyMs: 1_800_000 },
			payload: { kind: "heartbeat" },
		},
		nextRunAtMs: Date.now() + 1_800_000,
	};
}

type Broadcast = (event: string, payload: unknown, options?: SendOptions) => void;

/** The real gateway sends a run's chat deltas at most this often (server-chat.ts `emitChatDelta`). */
export const CHAT_DELTA_THROTTLE_MS = 150;

/** A chat delta: the answer so far, what it adds to the delta before it, and when it was let through. */
export interface ChatDelta {
	text: string;
	deltaText: string;
	at: number;
}

/**
 * A run's chat deltas as the real gateway projects them from its assistant events (server-chat.ts):
 * the first at once, then at most one per CHAT_DELTA_THROTTLE_MS (an assistant event inside the
 * window sends none); the run's end flushes the text held back, if any, before `final`. (The real
 * gateway also flushes before a tool or item starts; a scripted run's answer always follows its
 * tools, so there is never text to flush there.)
 */
export class ChatDeltaThrottle {
	#text = "";
	#sentLength = 0;
	#sentAt = Number.NEGATIVE_INFINITY;
	readonly #now: () => number;

	constructor(now: () => number = Date.now) {
		this.#now = now;
	}

	/** An assistant event's answer so far: the chat delta to send with it, or null inside the window. */
	next(text: string): ChatDelta | null {
		this.#text = text;
		const now = this.#now();
		return now - this.#sentAt < CHAT_DELTA_THROTTLE_MS ? null : this.#take(now);
	}

	/** The text held back since the last delta, as one delta; null when there is none. */
	flush(): ChatDelta | null {
		return this.#text.length > this.#sentLength ? this.#take(this.#now()) : null;
	}

	#take(now: number): ChatDelta {
		const delta = { text: this.#text, deltaText: this.#text.slice(this.#sentLength), at: now };
		this.#sentAt = now;
		this.#sentLength = this.#text.length;
		return delta;
	}
}

/**
 * One scripted agent run, event by event as the real gateway streams it (openclaw-sample-run.jsonl):
 * lifecycle start, each tool as item/tool events, the answer as assistant deltas with the chat
 * deltas the gateway throttles from them, usage, lifecycle end, the held-back chat delta and chat
 * final — with the script's faults — and the run's `task` and `sessions.changed` noise. `agent`
 * payloads carry sessionKey, sessionId, agentId and ts; `tool` events also the session row, and go
 * only to tool-events connections.
 */
class ScriptedRun {
	readonly #script: RunScript;
	readonly #broadcast: Broadcast;
	readonly #dropAll: () => void;
	readonly #pace: number;
	readonly #sessionKey: string;
	readonly #sessionId = randomUUID();
	readonly #taskId = randomUUID();
	readonly #createdAt = Date.now();
	#seq = 0;
	#events = 0;
	#frameGapPending: boolean;
	readonly #chatDeltas = new ChatDeltaThrottle();

	constructor(script: RunScript, broadcast: Broadcast, dropAll: () => void) {
		this.#script = script;
		this.#broadcast = broadcast;
		this.#dropAll = dropAll;
		this.#pace = script.paceMs ?? 2;
		this.#sessionKey = script.sessionKey ?? `agent:${AGENT_ID}:myndlens-${script.runId}`;
		this.#frameGapPending = script.frameSeqGap ?? false;
	}

	async play(stats: GatewaySimStats): Promise<{ events: number }> {
		const script = this.#script;
		stats.runs.push(script.runId);
		const answer = script.answer ?? "The weekly report was sent to the team. Revenue is up 4%.";
		const tools = script.tools ?? [{ name: "read", title: "Read from REPORT.md" }];

		this.#task("running", "unknown");
		this.#broadcast("chat.metadata.changed", {});
		await this.#agent("lifecycle", { phase: "start", startedAt: Date.now() }, { lifecycle: true });
		this.#task("running", "running");
		await this.#agent(
			"lifecycle",
			{ phase: "model", provider: "mock", model: "mock-1" },
			{ lifecycle: true },
		);
		for (const [index, tool] of tools.entries()) {
			const toolCallId = `call_${index + 1}`;
			const item = { itemId: `tool:${toolCallId}`, toolCallId, name: tool.name, kind: "tool" };
			await this.#agent("item", { ...item, phase: "start", title: tool.title, status: "running" });
			await this.#agent("tool", { phase: "start", name: tool.name, toolCallId, args: {} });
			this.#task("running", "running", { currentTool: { name: tool.name, startedAt: Date.now() } });
			await this.#agent("tool", {
				phase: "result",
				name: tool.name,
				toolCallId,
				isError: script.toolError === true,
				result: { content: [{ type: "text", text: script.toolError ? "ENOENT" : "ok" }] },
			});
			await this.#agent("item", {
				...item,
				phase: "end",
				title: tool.title,
				status: script.toolError ? "failed" : "completed",
			});
		}
		if (script.dropMidRun) {
			this.#dropAll();
			return { events: this.#events };
		}
		if (script.lifecycleError) {
			await this.#agent("lifecycle", { phase: "error", error: "model overloaded" }, { lifecycle: true });
			await this.#agent("lifecycle", { phase: "start", startedAt: Date.now() }, { lifecycle: true });
		}
		await this.#agent(
			"lifecycle",
			{ phase: "model", provider: "mock", model: "mock-1" },
			{ lifecycle: true },
		);
		const allPieces = splitAnswer(answer);
		// A run that errors or is aborted stops half-way through its answer.
		const pieces = script.chatEnd
			? allPieces.slice(0, Math.max(1, Math.floor(allPieces.length / 2)))
			: allPieces;
		const itemId = `${randomUUID()}:2`;
		let text = "";
		let sentDeltas = 0;
		const chatDelta = (at: number, delta: ChatDelta): unknown => {
			sentDeltas++;
			// The second chat delta of a replaceDelta script carries the whole text as a replacement.
			const replace = script.replaceDelta === true && sentDeltas === 2;
			return this.#chat(
				"delta",
				at,
				replace
					? { deltaText: delta.text, replace: true, message: message(delta.text, delta.at) }
					: { deltaText: delta.deltaText, message: message(delta.text, delta.at) },
			);
		};
		for (const [index, delta] of pieces.entries()) {
			text += delta;
			const skip = script.seqGap === true && index === 1 && pieces.length > 2;
			await this.#agent(
				"assistant",
				{ text, delta, itemId },
				{
					skip,
					// The gateway projects its chat delta from the assistant event, at once and throttled.
					withIt: (at) => {
						const twice = script.duplicate === true && index === 0;
						if (twice) this.#broadcast("agent", this.#agentPayload("assistant", { text, delta, itemId }, at));
						const due = this.#chatDeltas.next(text);
						if (due === null) return;
						const sent = chatDelta(at, due);
						if (twice) this.#broadcast("chat", sent);
					},
				},
			);
		}
		await this.#agent("usage", { outputTokens: 20 });
		if (script.chatEnd === "error") {
			// The gateway drops the text it held back and reports the error.
			await this.#agent(
				"lifecycle",
				{ phase: "error", error: "provider returned 500", endedAt: Date.now() },
				{
					lifecycle: true,
					withIt: (at) =>
						this.#chat("error", at, { errorMessage: "The model provider failed.", errorKind: "provider" }),
				},
			);
			this.#task("failed", "finished");
			return { events: this.#events };
		}
		if (script.chatEnd === "aborted") {
			await this.#agent(
				"lifecycle",
				{ phase: "end", aborted: true, stopReason: "aborted", endedAt: Date.now() },
				{ lifecycle: true, withIt: (at) => this.#chat("aborted", at, { stopReason: "aborted" }) },
			);
			this.#task("cancelled", "finished");
			return { events: this.#events };
		}
		await this.#agent(
			"lifecycle",
			{ phase: "finishing", stopReason: "stop", aborted: false },
			{ lifecycle: true },
		);
		this.#task("running", "finished");
		await this.#agent(
			"lifecycle",
			{
				phase: "end",
				stopReason: "stop",
				aborted: false,
				...(script.terminalReply === false
					? {}
					: { terminalReply: { disposition: "visible", text: answer } }),
			},
			{
				lifecycle: true,
				// The run's end flushes the text the throttle held back (a delta after lifecycle `end`,
				// as recorded), then `final` with the whole answer.
				withIt: (at) => {
					const held = this.#chatDeltas.flush();
					if (held !== null) chatDelta(at, held);
					this.#chat("final", at, { stopReason: "stop", message: message(answer) });
				},
			},
		);
		this.#task("completed", "finished");
		return { events: this.#events };
	}

	#agentPayload(stream: string, data: Record<string, unknown>, seq: number, lifecycle = false) {
		return agentPayload({ runId: this.#script.runId, sessionKey: this.#sessionKey }, stream, data, seq, {
			...(lifecycle ? { sessionId: this.#sessionId } : {}),
			...(stream === "tool" ? { session: this.#sessionRow() } : {}),
		});
	}

	/**
	 * One `agent` event with the run's next seq (not sent when `skip`), then what the gateway sends
	 * with it at once (`withIt`: the chat events it projects from it), then the pause before the next.
	 */
	async #agent(
		stream: string,
		data: Record<string, unknown>,
		options: { skip?: boolean; lifecycle?: boolean; withIt?: (seq: number) => void } = {},
	): Promise<void> {
		this.#seq++;
		if (options.skip) return;
		this.#broadcast("agent", this.#agentPayload(stream, data, this.#seq, options.lifecycle), {
			skipSeq: this.#frameGapPending,
			tool: stream === "tool",
		});
		this.#script.onAgentEvent?.(stream, data);
		this.#frameGapPending = false;
		this.#events++;
		options.withIt?.(this.#seq);
		await pace(this.#pace);
	}

	/**
	 * A `chat` event, sent with the agent event it is projected from, so neither paced nor counted;
	 * returns its payload (the duplicate fault sends it again).
	 */
	#chat(state: string, at: number, extra: Record<string, unknown>): unknown {
		const payload = chatPayload(
			{ runId: this.#script.runId, sessionKey: this.#sessionKey },
			at,
			state,
			extra,
		);
		this.#broadcast("chat", payload);
		return payload;
	}

	/** A `task` upsert, as the real gateway sends around every step of a run (not paced, not counted). */
	#task(status: string, execution: string, extra: Record<string, unknown> = {}): void {
		this.#broadcast("task", {
			action: "upserted",
			task: {
				id: this.#taskId,
				taskId: this.#taskId,
				kind: "cli",
				runtime: "cli",
				status,
				execution: { state: execution, lastActivityAt: Date.now(), ...extra },
				title: "MyndLens mandate",
				agentId: AGENT_ID,
				sessionKey: this.#sessionKey,
				childSessionKey: this.#sessionKey,
				ownerKey: this.#sessionKey,
				runId: this.#script.runId,
				sourceId: this.#script.runId,
				createdAt: this.#createdAt,
				updatedAt: Date.now(),
				deliveryStatus: "not_applicable",
			},
		});
	}

	#sessionRow() {
		return {
			key: this.#sessionKey,
			sessionId: this.#sessionId,
			agentId: AGENT_ID,
			kind: "direct",
			visibility: "shared",
			status: "running",
			createdVia: "run",
			displayName: this.#sessionKey.split(":").at(-1),
			modelProvider: "mock",
			model: "mock-1",
			updatedAt: Date.now(),
		};
	}
}

/** The run an event belongs to, as its payload names it. */
export interface RunNames {
	runId: string;
	sessionKey: string;
}

/** An `agent` event's payload, as this gateway sends it (`extra`: the fields only some streams carry). */
export function agentPayload(
	run: RunNames,
	stream: string,
	data: Record<string, unknown>,
	seq: number,
	extra: Record<string, unknown> = {},
) {
	return {
		runId: run.runId,
		stream,
		data,
		sessionKey: run.sessionKey,
		agentId: AGENT_ID,
		seq,
		ts: Date.now(),
		...extra,
	};
}

/** A `chat` event's payload, as this gateway sends it. */
export function chatPayload(run: RunNames, seq: number, state: string, extra: Record<string, unknown>) {
	return { runId: run.runId, sessionKey: run.sessionKey, agentId: AGENT_ID, seq, state, ...extra };
}

/** The assistant message a chat event carries: the answer so far. */
export function message(text: string, timestamp = Date.now()) {
	return { role: "assistant", content: [{ type: "text", text }], timestamp };
}

function freshStats(): GatewaySimStats {
	return {
		eventChars: 0,
		connections: 0,
		open: 0,
		hellos: 0,
		refusals: [],
		devices: [],
		deviceTokenConnects: 0,
		runs: [],
		preauthCloses: [],
	};
}

/** Pieces of 6–12 characters, like a model's deltas (the bench counts and replays them too). */
export function splitAnswer(answer: string): string[] {
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

function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
	return Array.isArray(value) && value.every((item) => typeof item === "string");
}

function reply(res: ServerResponse, status: number, body: unknown): void {
	res.writeHead(status, { "content-type": "application/json" });
	res.end(JSON.stringify(body));
}
