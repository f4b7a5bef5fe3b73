import { createPublicKey, randomBytes, verify } from "node:crypto";
import {
	type Log,
	type PushListener,
	type PushSim,
	parseJsonBody,
	pushReporter,
	type Reply,
	type SimRequest,
	splitJwt,
	startSimServer,
} from "./common.ts";

/**
 * A strict stand-in for FCM HTTP v1 and Google's OAuth token endpoint.
 *
 * `POST /token` (FCM_TOKEN_URL = `<base>/token`): the JWT-bearer grant (RFC 7523). Refusals, as
 * `{error, error_description}`: 400 invalid_request (not a form, no assertion, not a JWT) ·
 * unsupported_grant_type · invalid_grant "Invalid JWT Signature." (not RS256, wrong `kid`, bad
 * signature against the service account's public key) · invalid_grant "Invalid email or User ID"
 * (`iss` ≠ client_email) · invalid_grant "Invalid JWT: Failed audience check." (`aud` ≠ this
 * endpoint's URL) · invalid_grant "…short-lived token…" (no `iat`/`exp`, `exp` passed, lifetime
 * > 1 h, `iat` in the future) · invalid_scope (no firebase.messaging scope). Success:
 * `{access_token, expires_in: 3599, token_type: "Bearer"}`.
 *
 * `POST /v1/projects/<project>/messages:send`: errors as `{error: {code, message, status, details:
 * [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", errorCode}]}}`.
 * 401 UNAUTHENTICATED (no/unknown/expired/revoked bearer) · 403 PERMISSION_DENIED (another
 * project) · 400 INVALID_ARGUMENT (not JSON, an unknown field anywhere we check, not exactly one of
 * token/topic/condition, a malformed token, `data` values not strings or a reserved key, android
 * priority not NORMAL/HIGH, ttl not like "3600s", a message over 4096 bytes) · 404 UNREGISTERED
 * (`unregistered`) · 429 QUOTA_EXCEEDED (`rate_limited`, Retry-After) · 503 UNAVAILABLE / 500
 * INTERNAL (`server_error`). Success: `{name: "projects/<p>/messages/<id>"}`.
 *
 * Own control API: POST `/__sim/expire-tokens` revokes every access token issued so far.
 * `GET /__sim/state` → `{tokenRequests, accessTokensIssued, sends}`.
 */

export interface FcmSimOptions {
	port?: number;
	host?: string;
	projectId: string;
	clientEmail: string;
	privateKeyId: string;
	/** The service account key's public half (PEM). */
	publicKey: string;
	/** Each accepted message as a `[push] fcm …` line. */
	log?: Log;
	/** Each accepted message (observation only). */
	onPush?: PushListener;
}

const SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ACCESS_TOKEN_LIFETIME_S = 3599;
const MAX_MESSAGE_BYTES = 4096;
const SKEW_S = 60;
const FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError";
const MESSAGE_FIELDS = new Set([
	"name",
	"token",
	"topic",
	"condition",
	"data",
	"notification",
	"android",
	"webpush",
	"apns",
	"fcm_options",
]);
const ANDROID_FIELDS = new Set([
	"collapse_key",
	"priority",
	"ttl",
	"restricted_package_name",
	"data",
	"notification",
	"fcm_options",
	"direct_boot_ok",
]);
const NOTIFICATION_FIELDS = new Set(["title", "body", "image"]);

interface FcmState {
	tokenRequests: number;
	accessTokens: Map<string, { expiresAt: number; revoked: boolean }>;
	sends: number;
}

export function startFcmSim(options: FcmSimOptions): Promise<PushSim> {
	const key = createPublicKey(options.publicKey);
	const report = pushReporter(options);
	const oauthError = (error: string, description: string, status = 400): Reply => ({
		status,
		body: { error, error_description: description },
	});
	const fcmError = (
		code: number,
		status: string,
		message: string,
		errorCode?: string,
		headers?: Record<string, string>,
	): Reply => ({
		status: code,
		body: {
			error: { code, message, status, ...(errorCode && { details: [{ "@type": FCM_ERROR, errorCode }] }) },
		},
		headers,
	});
	const invalid = (message: string) => fcmError(400, "INVALID_ARGUMENT", message, "INVALID_ARGUMENT");

	const token = (request: SimRequest<FcmState>): Reply => {
		request.ns.state.tokenRequests += 1;
		if (request.method !== "POST") return oauthError("invalid_request", "Use POST.", 405);
		if (!(request.headers["content-type"] ?? "").includes("application/x-www-form-urlencoded")) {
			return oauthError("invalid_request", "The body must be application/x-www-form-urlencoded.");
		}
		const form = new URLSearchParams(request.body.toString("utf8"));
		const grant = form.get("grant_type");
		if (grant !== GRANT) return oauthError("unsupported_grant_type", `Invalid grant_type: ${grant ?? ""}`);
		const assertion = form.get("assertion");
		const jwt = assertion ? splitJwt(assertion) : null;
		if (!jwt) return oauthError("invalid_request", "Invalid assertion format.");
		const { header, claims } = jwt;
		request.note.assertion = { header, claims };
		const signed =
			header.alg === "RS256" &&
			(header.kid === undefined || header.kid === options.privateKeyId) &&
			verify("sha256", Buffer.from(jwt.input), key, jwt.signature);
		if (!signed) return oauthError("invalid_grant", "Invalid JWT Signature.");
		if (claims.iss !== options.clientEmail) return oauthError("invalid_grant", "Invalid email or User ID");
		const audience = `${request.ns.base}/token`;
		if (claims.aud !== audience) {
			return oauthError(
				"invalid_grant",
				`Invalid JWT: Failed audience check. The right audience is ${audience}`,
			);
		}
		const now = Date.now() / 1000;
		const { iat, exp } = claims;
		if (
			typeof iat !== "number" ||
			typeof exp !== "number" ||
			exp <= now ||
			exp - iat > 3600 ||
			iat > now + SKEW_S
		) {
			return oauthError(
				"invalid_grant",
				"Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
			);
		}
		if (typeof claims.scope !== "string" || !claims.scope.split(" ").includes(SCOPE)) {
			return oauthError("invalid_scope", "The firebase.messaging scope is required.");
		}
		const fault = request.ns.takeFault("token", ["rate_limited", "server_error", "slow"]);
		if (fault?.kind === "rate_limited") {
			return {
				...oauthError("rate_limit_exceeded", "Rate limit exceeded", 429),
				headers: retryAfter(fault.retryAfter),
			};
		}
		if (fault?.kind === "server_error")
			return oauthError("internal_failure", "Backend error", fault.status ?? 503);
		const accessToken = `ya29.sim-${randomBytes(24).toString("base64url")}`;
		request.ns.state.accessTokens.set(accessToken, {
			expiresAt: Date.now() + ACCESS_TOKEN_LIFETIME_S * 1000,
			revoked: false,
		});
		return {
			status: 200,
			body: { access_token: accessToken, expires_in: ACCESS_TOKEN_LIFETIME_S, token_type: "Bearer" },
			delayMs: fault?.kind === "slow" ? (fault.delayMs ?? 5000) : undefined,
		};
	};

	const validate = (message: Record<string, unknown>): string | null => {
		for (const k of Object.keys(message))
			if (!MESSAGE_FIELDS.has(k))
				return `Invalid JSON payload received. Unknown name "${k}" at 'message': Cannot find field.`;
		const targets = ["token", "topic", "condition"].filter((k) => message[k] !== undefined);
		if (targets.length !== 1)
			return "Exactly one of message.token, message.topic or message.condition must be set.";
		if (
			message.token !== undefined &&
			(typeof message.token !== "string" || !/^[A-Za-z0-9_:-]{20,4096}$/.test(message.token))
		) {
			return "The registration token is not a valid FCM registration token";
		}
		const data = message.data;
		if (data !== undefined) {
			if (!isObject(data)) return "Invalid value at 'message.data': not a map.";
			for (const [k, v] of Object.entries(data)) {
				if (typeof v !== "string") return `Invalid value at 'message.data[${k}]' (TYPE_STRING)`;
				if (["from", "notification", "message_type"].includes(k) || /^(google|gcm)\./.test(k)) {
					return `Invalid data payload key: ${k}`;
				}
			}
		}
		const notification = message.notification;
		if (notification !== undefined) {
			if (!isObject(notification)) return "Invalid value at 'message.notification'.";
			for (const [k, v] of Object.entries(notification)) {
				if (!NOTIFICATION_FIELDS.has(k))
					return `Invalid JSON payload received. Unknown name "${k}" at 'message.notification': Cannot find field.`;
				if (typeof v !== "string") return `Invalid value at 'message.notification.${k}' (TYPE_STRING)`;
			}
		}
		const android = message.android;
		if (android !== undefined) {
			if (!isObject(android)) return "Invalid value at 'message.android'.";
			for (const k of Object.keys(android))
				if (!ANDROID_FIELDS.has(k))
					return `Invalid JSON payload received. Unknown name "${k}" at 'message.android': Cannot find field.`;
			if (android.priority !== undefined && android.priority !== "NORMAL" && android.priority !== "HIGH") {
				return `Invalid value at 'message.android.priority' (type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), "${String(android.priority)}"`;
			}
			if (
				android.ttl !== undefined &&
				(typeof android.ttl !== "string" || !/^\d+(\.\d{1,9})?s$/.test(android.ttl))
			) {
				return "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration): Illegal duration format; duration must end with 's'";
			}
			if (android.collapse_key !== undefined && typeof android.collapse_key !== "string") {
				return "Invalid value at 'message.android.collapse_key' (TYPE_STRING)";
			}
		}
		if (Buffer.byteLength(JSON.stringify(message), "utf8") > MAX_MESSAGE_BYTES)
			return "Android message is too big";
		return null;
	};

	const send = (request: SimRequest<FcmState>, project: string): Reply => {
		if (request.method !== "POST") return fcmError(404, "NOT_FOUND", "Method not found.");
		const bearer = /^Bearer (\S+)$/.exec(request.headers.authorization ?? "")?.[1];
		const access = bearer ? request.ns.state.accessTokens.get(bearer) : undefined;
		if (!access || access.revoked || access.expiresAt <= Date.now()) {
			return fcmError(
				401,
				"UNAUTHENTICATED",
				"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
			);
		}
		if (project !== options.projectId) {
			return fcmError(
				403,
				"PERMISSION_DENIED",
				`Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/${project}' (or it may not exist).`,
			);
		}
		const parsed = parseJsonBody(request.body);
		const body = parsed.ok ? parsed.value : null;
		if (!isObject(body)) return invalid("Invalid JSON payload received.");
		for (const k of Object.keys(body)) {
			if (k !== "message" && k !== "validate_only")
				return invalid(`Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
		}
		if (!isObject(body.message)) return invalid("Request contains an invalid argument: message is required.");
		const message = body.message;
		const problem = validate(message);
		if (problem) return invalid(problem);
		const target = String(message.token ?? message.topic ?? message.condition);
		request.note.target = target;
		const fault = request.ns.takeFault(target);
		if (fault?.kind === "unregistered")
			return fcmError(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED");
		if (fault?.kind === "rate_limited") {
			return fcmError(
				429,
				"RESOURCE_EXHAUSTED",
				"Quota exceeded.",
				"QUOTA_EXCEEDED",
				retryAfter(fault.retryAfter),
			);
		}
		if (fault?.kind === "server_error") {
			const status = fault.status ?? 503;
			return status === 503
				? fcmError(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")
				: fcmError(status, "INTERNAL", "Internal error encountered.", "INTERNAL");
		}
		request.ns.state.sends += 1;
		const note = isObject(message.notification) ? message.notification : null;
		report({
			provider: "fcm",
			ns: request.ns.id,
			target,
			type: note ? "notification" : "data",
			...(typeof note?.title === "string" && { title: note.title }),
			...(typeof note?.body === "string" && { body: note.body }),
			...(isObject(message.data) && { data: message.data }),
		});
		return {
			status: 200,
			body: { name: `projects/${project}/messages/0:${Date.now()}%${randomBytes(8).toString("hex")}` },
			delayMs: fault?.kind === "slow" ? (fault.delayMs ?? 5000) : undefined,
		};
	};

	return startSimServer<FcmState>({
		name: "fcm",
		port: options.port,
		host: options.host,
		newState: () => ({ tokenRequests: 0, accessTokens: new Map(), sends: 0 }),
		handle(request) {
			if (request.path === "/token") return token(request);
			const route = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(request.path);
			if (route?.[1]) return send(request, decodeURIComponent(route[1]));
			return fcmError(404, "NOT_FOUND", `No route ${request.path}`);
		},
		control(request, name) {
			if (request.method === "POST" && name === "expire-tokens") {
				for (const access of request.ns.state.accessTokens.values()) access.revoked = true;
				return { status: 200, body: { ok: true } };
			}
			return null;
		},
		describe: (state) => ({
			tokenRequests: state.tokenRequests,
			accessTokensIssued: state.accessTokens.size,
			sends: state.sends,
		}),
	});
}

function retryAfter(value: string | undefined): Record<string, string> | undefined {
	return value ? { "retry-after": value } : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
	return value !== null && typeof value === "object" && !Array.isArray(value);
}
