import type { ConnectParams } from "@openclaw/gateway-protocol/frame-guards";
import { isGatewayEventFrame, isGatewayResponseFrame } from "@openclaw/gateway-protocol/frame-guards";
import type * as z from "zod/mini";
import { type DeviceIdentity, signaturePayload } from "./device-identity.ts";
import {
	AgentEvent,
	ChatEvent,
	ConnectChallenge,
	GatewayErrorShape,
	HelloOk,
	ShutdownEvent,
} from "./frames.ts";

/*
 * One connection's worth of the OpenClaw Gateway protocol, version 4 (OPENCLAW-NOTES.md, "Handshake"):
 * answer `connect.challenge` with a signed `connect`, accept `hello-ok`, then turn every inbound
 * frame into a typed signal. No sockets, timers or storage here: the Gateway DO owns those and
 * acts on the signals, so this file is tested directly against the simulator and by hand.
 */

export const PROTOCOL_VERSION = 4;
export const CLIENT = {
	id: "gateway-client",
	mode: "backend",
	version: "1.0.0",
	platform: "cloudflare-workers",
} as const;
export const ROLE = "operator";
export const SCOPES = ["operator.read", "operator.write"] as const;
export const CAPS = ["tool-events"] as const;
/** Until `hello-ok` names `policy.maxPayload`, frames larger than this are refused unread. */
export const DEFAULT_MAX_PAYLOAD = 25 * 1024 * 1024;
const CONNECT_REQUEST_ID = "connect-1";

export interface ConnectCredentials {
	/** The tenant's gateway token (shared secret); never logged. */
	token: string | null;
	/** The device token the gateway issued on an earlier `hello-ok`, if any. */
	deviceToken: string | null;
	identity: DeviceIdentity;
}

/** Why a connect was refused, as the gateway said it, minus anything secret. */
export interface ConnectRefusal {
	/** `details.code` when present (`AUTH_TOKEN_MISMATCH`, `PAIRING_REQUIRED`…), else `error.code`. */
	code: string;
	message: string;
	retryable: boolean;
	/** The gateway asks clients to stop retrying until a human acts (pairing, bad credentials). */
	pauseReconnect: boolean;
	retryAfterMs: number | null;
}

export interface Hello {
	protocol: number;
	tickIntervalMs: number;
	maxPayload: number;
	deviceToken: string | null;
	serverVersion: string | null;
}

export type ProtocolSignal =
	| { kind: "connect-sent" }
	| { kind: "ready"; hello: Hello }
	| { kind: "refused"; refusal: ConnectRefusal }
	| { kind: "agent"; event: AgentEvent }
	| { kind: "chat"; event: ChatEvent }
	| { kind: "tick" }
	| { kind: "shutdown"; restartExpectedMs: number | null }
	| { kind: "gap"; expected: number; got: number }
	| { kind: "invalid"; reason: string };

/** Connect errors a retry with the same credentials cannot fix: stop and tell the operator. */
const NEEDS_OPERATOR = new Set([
	"AUTH_TOKEN_MISMATCH",
	"AUTH_TOKEN_MISSING",
	"AUTH_TOKEN_NOT_CONFIGURED",
	"AUTH_UNAUTHORIZED",
	"AUTH_REQUIRED",
	// The device token is known but no longer covers our scopes: an operator must re-approve them.
	"AUTH_SCOPE_MISMATCH",
	"PAIRING_REQUIRED",
	"PROTOCOL_MISMATCH",
	"DEVICE_IDENTITY_REQUIRED",
	"DEVICE_AUTH_SIGNATURE_INVALID",
	"DEVICE_AUTH_PUBLIC_KEY_INVALID",
	"DEVICE_AUTH_DEVICE_ID_MISMATCH",
]);

export class GatewayProtocol {
	#state: "awaiting-challenge" | "awaiting-hello" | "ready" | "closed" = "awaiting-challenge";
	#maxPayload = DEFAULT_MAX_PAYLOAD;
	#lastSeq: number | null = null;
	readonly #credentials: ConnectCredentials;
	readonly #send: (text: string) => void;

	constructor(credentials: ConnectCredentials, send: (text: string) => void) {
		this.#credentials = credentials;
		this.#send = send;
	}

	get ready(): boolean {
		return this.#state === "ready";
	}

	/**
	 * Handles one inbound frame; the signals say what happened, in order. Synchronous for every frame
	 * but the connect challenge (whose answer is signed): the answer's events, thousands a second, take
	 * no promise (issue 17).
	 */
	receive(raw: string | ArrayBuffer): ProtocolSignal[] | Promise<ProtocolSignal[]> {
		const size = typeof raw === "string" ? raw.length : raw.byteLength;
		if (size > this.#maxPayload)
			return [{ kind: "invalid", reason: `frame of ${size} bytes exceeds maxPayload` }];
		let frame: unknown;
		try {
			frame = JSON.parse(typeof raw === "string" ? raw : new TextDecoder().decode(raw));
		} catch {
			return [{ kind: "invalid", reason: "frame is not JSON" }];
		}
		if (isGatewayEventFrame(frame)) return this.#onEvent(frame.event, frame.payload, frame.seq);
		if (isGatewayResponseFrame(frame)) return this.#onResponse(frame);
		return [{ kind: "invalid", reason: "not a gateway event or response frame" }];
	}

	#onEvent(
		name: string,
		payload: unknown,
		seq: number | undefined,
	): ProtocolSignal[] | Promise<ProtocolSignal[]> {
		if (name === "connect.challenge") return this.#onChallenge(payload);
		if (this.#state !== "ready") return [];
		const signals: ProtocolSignal[] = [];
		// The connection-level seq is contiguous (openclaw-sample-run.jsonl): a hole is a lost event.
		if (seq !== undefined) {
			if (this.#lastSeq !== null && seq > this.#lastSeq + 1) {
				signals.push({ kind: "gap", expected: this.#lastSeq + 1, got: seq });
			}
			this.#lastSeq = Math.max(seq, this.#lastSeq ?? 0);
		}
		switch (name) {
			case "tick":
				signals.push({ kind: "tick" });
				break;
			case "agent":
				signals.push(parsed(AgentEvent, payload, "agent", (event) => ({ kind: "agent", event })));
				break;
			case "chat":
				signals.push(parsed(ChatEvent, payload, "chat", (event) => ({ kind: "chat", event })));
				break;
			case "shutdown":
				signals.push(
					parsed(ShutdownEvent, payload, "shutdown", (event) => ({
						kind: "shutdown",
						restartExpectedMs: event.restartExpectedMs ?? null,
					})),
				);
				break;
			// health, presence, cron, task, sessions.changed, …: not ours.
		}
		return signals;
	}

	async #onChallenge(payload: unknown): Promise<ProtocolSignal[]> {
		if (this.#state !== "awaiting-challenge")
			return [{ kind: "invalid", reason: "unexpected connect.challenge" }];
		const challenge = ConnectChallenge.safeParse(payload);
		if (!challenge.success) return [{ kind: "invalid", reason: "malformed connect.challenge" }];
		const params = await buildConnectParams(this.#credentials, challenge.data);
		this.#state = "awaiting-hello";
		this.#send(JSON.stringify({ type: "req", id: CONNECT_REQUEST_ID, method: "connect", params }));
		return [{ kind: "connect-sent" }];
	}

	#onResponse(frame: { id: string; ok: boolean; payload?: unknown; error?: unknown }): ProtocolSignal[] {
		if (frame.id !== CONNECT_REQUEST_ID || this.#state !== "awaiting-hello") return [];
		if (!frame.ok) {
			this.#state = "closed";
			return [{ kind: "refused", refusal: refusalOf(frame.error) }];
		}
		const hello = HelloOk.safeParse(frame.payload);
		if (!hello.success) {
			this.#state = "closed";
			return [{ kind: "invalid", reason: "malformed hello-ok" }];
		}
		if (hello.data.protocol !== PROTOCOL_VERSION) {
			this.#state = "closed";
			return [
				{
					kind: "refused",
					refusal: {
						code: "PROTOCOL_MISMATCH",
						message: `gateway speaks protocol ${hello.data.protocol}`,
						retryable: false,
						pauseReconnect: true,
						retryAfterMs: null,
					},
				},
			];
		}
		this.#state = "ready";
		const maxPayload = hello.data.policy.maxPayload;
		if (maxPayload !== undefined && maxPayload > 0) this.#maxPayload = maxPayload;
		return [
			{
				kind: "ready",
				hello: {
					protocol: hello.data.protocol,
					tickIntervalMs: hello.data.policy.tickIntervalMs,
					maxPayload: this.#maxPayload,
					deviceToken: hello.data.auth?.deviceToken ?? null,
					serverVersion: hello.data.server?.version ?? null,
				},
			},
		];
	}
}

/** The `connect` params; `params` is a closed object on the gateway, so nothing extra goes in. */
export async function buildConnectParams(
	credentials: ConnectCredentials,
	challenge: ConnectChallenge,
): Promise<ConnectParams> {
	const { identity, token, deviceToken } = credentials;
	const signedAt = challenge.ts;
	// The signature covers the token the gateway will check: the shared token, else the device token.
	const signedToken = token ?? deviceToken ?? "";
	const signature = await identity.sign(
		signaturePayload({
			deviceId: identity.deviceId,
			clientId: CLIENT.id,
			clientMode: CLIENT.mode,
			role: ROLE,
			scopes: SCOPES,
			signedAt,
			token: signedToken,
			nonce: challenge.nonce,
			platform: CLIENT.platform,
			deviceFamily: "",
		}),
	);
	const auth: NonNullable<ConnectParams["auth"]> = {};
	if (token) auth.token = token;
	if (deviceToken) auth.deviceToken = deviceToken;
	return {
		minProtocol: PROTOCOL_VERSION,
		maxProtocol: PROTOCOL_VERSION,
		client: { id: CLIENT.id, version: CLIENT.version, platform: CLIENT.platform, mode: CLIENT.mode },
		role: ROLE,
		scopes: [...SCOPES],
		caps: [...CAPS],
		auth,
		device: {
			id: identity.deviceId,
			publicKey: identity.publicKey,
			signature,
			signedAt,
			nonce: challenge.nonce,
		},
	};
}

function refusalOf(error: unknown): ConnectRefusal {
	const shape = GatewayErrorShape.safeParse(error);
	if (!shape.success) {
		return {
			code: "UNKNOWN",
			message: "connect refused",
			retryable: true,
			pauseReconnect: false,
			retryAfterMs: null,
		};
	}
	const code = shape.data.details?.code ?? shape.data.code;
	const needsOperator = NEEDS_OPERATOR.has(code);
	return {
		code,
		message: shape.data.message.slice(0, 300),
		retryable: shape.data.retryable ?? !needsOperator,
		pauseReconnect: shape.data.details?.pauseReconnect ?? needsOperator,
		retryAfterMs: shape.data.retryAfterMs ?? null,
	};
}

function parsed<T>(
	schema: z.ZodMiniType<T>,
	payload: unknown,
	name: string,
	signal: (value: T) => ProtocolSignal,
): ProtocolSignal {
	const result = schema.safeParse(payload);
	return result.success ? signal(result.data) : { kind: "invalid", reason: `malformed ${name} event` };
}
