/*
 * The OpenClaw Gateway protocol 4 rules the gateway simulator enforces, written from the protocol's
 * own docs (`openclaw` npm package, docs/gateway/protocol/{handshake,auth,presence}.md) and checked
 * against the real gateway's source (openclaw@2026.9.6, dist/). Pure — no Node, no `src/` — so a
 * workerd test can pin it against a known-answer vector (test/gateway-sim-strictness.test.ts).
 */

export const PROTOCOL = 4;

/** `client.id`: a closed list (`GATEWAY_CLIENT_IDS`, @openclaw/gateway-protocol/client-info). */
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
/** `client.mode`: a closed list (`GATEWAY_CLIENT_MODES`). */
export const CLIENT_MODES = ["webchat", "cli", "worker", "test", "probe", "ui", "backend", "node"];
/** `connect.params` is a closed object: any other key is refused. */
export const CONNECT_KEYS = new Set([
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
export const ROLES = ["operator", "node"];
/** handshake.md "Roles and scopes": the full closed operator scope set. */
export const OPERATOR_SCOPES = [
	"operator.read",
	"operator.write",
	"operator.admin",
	"operator.approvals",
	"operator.questions",
	"operator.pairing",
	"operator.talk",
	"operator.talk.secrets",
];
/** handshake.md "Client capabilities": the cap that asks for structured tool lifecycle events. */
export const TOOL_EVENTS_CAP = "tool-events";

/** server-constants: frames before `hello-ok` larger than this close the socket with 1009. */
export const MAX_PREAUTH_PAYLOAD = 65_536;
/** timeouts: DEFAULT_PREAUTH_HANDSHAKE_TIMEOUT_MS — no `connect` by then and the socket is closed. */
export const PREAUTH_TIMEOUT_MS = 15_000;
export const MAX_PAYLOAD = 26_214_400;
/** How far `device.signedAt` may be from the gateway's clock (DEVICE_SIGNATURE_SKEW_MS). */
export const DEVICE_SIGNATURE_SKEW_MS = 120_000;
export const MAX_BUFFERED_BYTES = 52_428_800;

/**
 * Whether `granted` satisfies `required` (the real `operatorScopeSatisfied`): `operator.admin`
 * satisfies everything; `operator.write` also satisfies `operator.read` and `operator.talk`.
 */
export function scopeSatisfied(required: string, granted: readonly string[]): boolean {
	if (!required.startsWith("operator.")) return false;
	if (granted.includes(required) || granted.includes("operator.admin")) return true;
	return (required === "operator.read" || required === "operator.talk") && granted.includes("operator.write");
}

/**
 * Which events need which scope (the real `EVENT_SCOPE_GUARDS`, the part this simulator sends):
 * `[]` goes to every authenticated connection, an event not listed goes to none (fail-closed).
 */
export const EVENT_SCOPES: Record<string, string[]> = {
	agent: ["operator.read"],
	chat: ["operator.read"],
	"chat.metadata.changed": ["operator.read"],
	cron: ["operator.read"],
	presence: ["operator.read"],
	task: ["operator.read"],
	"sessions.changed": ["operator.read"],
	health: [],
	heartbeat: [],
	shutdown: [],
	tick: [],
	"update.available": [],
};

/** Whether an operator connection holding `scopes` receives `event` (presence.md, "Broadcast event scoping"). */
export function receivesEvent(role: string, scopes: readonly string[], event: string): boolean {
	const required = EVENT_SCOPES[event];
	if (!required) return false;
	if (required.length === 0) return true;
	return role === "operator" && required.some((scope) => scopeSatisfied(scope, scopes));
}

/** The fields a device signature covers (auth.md, "Device identity and pairing"). */
export interface DeviceAuthFields {
	deviceId: string;
	clientId: string;
	clientMode: string;
	role: string;
	scopes: readonly string[];
	signedAtMs: number;
	/** The token the connect presents (`auth.token`, else `auth.deviceToken`), "" when none. */
	token: string;
	nonce: string;
	platform: string;
	deviceFamily: string;
}

/**
 * The preferred "v3" payload (auth.md: binds platform and deviceFamily in addition to
 * device/client/role/scopes/token/nonce; OPENCLAW-NOTES.md, "Handshake" 3 for the order):
 * `v3|deviceId|clientId|clientMode|role|scopes,comma,joined|signedAtMs|token|nonce|platform|deviceFamily`,
 * platform and deviceFamily trimmed and ASCII-lower-cased.
 */
export function deviceAuthPayloadV3(fields: DeviceAuthFields): string {
	return [
		"v3",
		fields.deviceId,
		fields.clientId,
		fields.clientMode,
		fields.role,
		fields.scopes.join(","),
		String(fields.signedAtMs),
		fields.token,
		fields.nonce,
		metadataForAuth(fields.platform),
		metadataForAuth(fields.deviceFamily),
	].join("|");
}

/** Trimmed, A–Z lower-cased (only ASCII: the real gateway's `normalizeDeviceMetadataForAuth`). */
function metadataForAuth(value: string): string {
	return value.trim().replace(/[A-Z]/g, (char) => String.fromCharCode(char.charCodeAt(0) + 32));
}

/** The legacy "v2" payload, still accepted by the real gateway: v3 without platform and deviceFamily. */
export function deviceAuthPayloadV2(fields: DeviceAuthFields): string {
	return [
		"v2",
		fields.deviceId,
		fields.clientId,
		fields.clientMode,
		fields.role,
		fields.scopes.join(","),
		String(fields.signedAtMs),
		fields.token,
		fields.nonce,
	].join("|");
}

/** A gateway error (`ErrorShape`): connect refusals carry the structured reason in `details.code`. */
export interface GatewayError {
	code: string;
	message: string;
	retryable?: boolean;
	retryAfterMs?: number;
	details?: Record<string, unknown>;
}
