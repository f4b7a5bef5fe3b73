import { env } from "cloudflare:workers";
import { type DeviceAuthFields, deviceAuthPayloadV3 } from "../sim/openclaw-spec.ts";

/*
 * A hand-driven client for the gateway simulator's own strictness tests: it speaks protocol 4 from
 * the simulator's spec module (pinned by a known-answer vector), never through the Worker's code, and
 * lets each test break one thing in its `connect`.
 */

export interface Frame {
	type: string;
	event?: string;
	id?: string;
	ok?: boolean;
	payload?: Record<string, unknown>;
	error?: { code: string; message: string; retryAfterMs?: number; details?: Record<string, unknown> };
	seq?: number;
}

export interface Device {
	id: string;
	publicKey: string;
	sign(payload: string): Promise<string>;
}

export function toBase64Url(bytes: Uint8Array): string {
	let binary = "";
	for (const byte of bytes) binary += String.fromCharCode(byte);
	return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
	const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
	const bytes = new Uint8Array(binary.length);
	for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
	return bytes;
}

export async function newDevice(): Promise<Device> {
	const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
		"sign",
		"verify",
	])) as CryptoKeyPair;
	const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
	return {
		id: [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""),
		publicKey: toBase64Url(raw),
		async sign(payload) {
			const signature = await crypto.subtle.sign(
				{ name: "Ed25519" },
				pair.privateKey,
				new TextEncoder().encode(payload),
			);
			return toBase64Url(new Uint8Array(signature));
		},
	};
}

/** One socket to the simulator; every frame it receives is kept in order. */
export class SimSocket {
	readonly frames: Frame[] = [];
	closed: { code: number; reason: string } | null = null;
	readonly #ws: WebSocket;

	private constructor(ws: WebSocket) {
		this.#ws = ws;
		ws.addEventListener("message", (event) => {
			this.frames.push(JSON.parse(String(event.data)) as Frame);
		});
		ws.addEventListener("close", (event) => {
			this.closed = { code: event.code, reason: event.reason };
		});
	}

	static async open(path = ""): Promise<SimSocket> {
		const url = `${String(env.OPENCLAW_GATEWAY_URL).replace(/^ws/, "http")}${path}`;
		const response = await fetch(url, { headers: { Upgrade: "websocket" } });
		const ws = response.webSocket;
		if (!ws) throw new Error(`no upgrade: ${response.status}`);
		ws.accept();
		return new SimSocket(ws);
	}

	send(frame: unknown): void {
		this.#ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
	}

	close(): void {
		try {
			this.#ws.close(1000, "done");
		} catch {
			// already closed
		}
	}

	async next(match: (frame: Frame) => boolean, what: string, timeoutMs = 3_000): Promise<Frame> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const found = this.frames.find(match);
			if (found) return found;
			if (Date.now() > deadline)
				throw new Error(`no ${what}; got ${JSON.stringify(this.frames).slice(0, 500)}`);
			await new Promise((resolve) => setTimeout(resolve, 10));
		}
	}

	async waitClosed(timeoutMs = 3_000): Promise<{ code: number; reason: string }> {
		const deadline = Date.now() + timeoutMs;
		while (!this.closed) {
			if (Date.now() > deadline) throw new Error("socket not closed");
			await new Promise((resolve) => setTimeout(resolve, 10));
		}
		return this.closed;
	}

	challenge(): Promise<Frame> {
		return this.next((f) => f.event === "connect.challenge", "connect.challenge");
	}

	response(id: string): Promise<Frame> {
		return this.next((f) => f.type === "res" && f.id === id, `res ${id}`);
	}
}

export interface ConnectOptions {
	token?: string | null;
	deviceToken?: string;
	scopes?: string[];
	caps?: string[];
	device?: Device | null;
	/** Changes the signed fields only (the sent ones stay right): "sign another payload". */
	tamper?: (fields: DeviceAuthFields) => DeviceAuthFields;
	/** Changes the params after signing. */
	edit?: (params: Record<string, unknown>) => void;
	nonce?: string;
	signedAt?: number;
}

/** Answers the challenge with a `connect` (signed like the docs say unless told otherwise); its `res`. */
export async function connect(socket: SimSocket, options: ConnectOptions = {}): Promise<Frame> {
	const challenge = await socket.challenge();
	const nonce = options.nonce ?? String(challenge.payload?.nonce);
	const signedAt = options.signedAt ?? Number(challenge.payload?.ts);
	const scopes = options.scopes ?? ["operator.read", "operator.write"];
	const token = options.token === undefined ? env.OPENCLAW_GATEWAY_TOKEN : options.token;
	const client = { id: "gateway-client", version: "1.0.0", platform: "test-platform", mode: "backend" };
	const params: Record<string, unknown> = {
		minProtocol: 4,
		maxProtocol: 4,
		client,
		role: "operator",
		scopes,
		caps: options.caps ?? ["tool-events"],
		auth: {
			...(token ? { token } : {}),
			...(options.deviceToken ? { deviceToken: options.deviceToken } : {}),
		},
	};
	const device = options.device === undefined ? await newDevice() : options.device;
	if (device) {
		let fields: DeviceAuthFields = {
			deviceId: device.id,
			clientId: client.id,
			clientMode: client.mode,
			role: "operator",
			scopes,
			signedAtMs: signedAt,
			token: token ?? options.deviceToken ?? "",
			nonce,
			platform: client.platform,
			deviceFamily: "",
		};
		if (options.tamper) fields = options.tamper(fields);
		params.device = {
			id: device.id,
			publicKey: device.publicKey,
			signature: await device.sign(deviceAuthPayloadV3(fields)),
			signedAt,
			nonce,
		};
	}
	options.edit?.(params);
	const id = `c-${crypto.randomUUID()}`;
	socket.send({ type: "req", id, method: "connect", params });
	return socket.response(id);
}
