import { createPublicKey, randomUUID, verify } from "node:crypto";
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
 * A strict stand-in for APNs (token-based authentication): `POST /3/device/<token>`, the provider
 * token checked against the team's `.p8` public key, the headers and payload checked as Apple
 * documents them, errors as `{"reason": …}` with Apple's status codes. HTTP/1.1 where Apple speaks
 * HTTP/2 only (a Worker's `fetch` cannot speak cleartext HTTP/2; the request is the same).
 *
 * Refusals: 405 MethodNotAllowed · 404 BadPath · 400 BadDeviceToken (not hex, 64–200 chars) ·
 * 403 MissingProviderToken / InvalidProviderToken (not a bearer ES256 JWT with our `kid` and `iss`,
 * or a bad signature, or `iat` in the future) / ExpiredProviderToken (`iat` older than an hour, or
 * expired with `/__sim/expire-tokens`) · 429 TooManyProviderTokenUpdates (a new provider token less
 * than `tokenUpdateMinIntervalMs` after the previous new one) · 400 MissingTopic / TopicDisallowed
 * (not an allowed bundle) / InvalidPushType (absent or unknown, or the topic's
 * `.push-type.liveactivity` suffix and `apns-push-type: liveactivity` disagree) / BadPriority (not 10,
 * 5, 1; or 10 for background) / BadExpirationDate / BadCollapseId (> 64 bytes) / BadMessageId (not a
 * UUID) · 400 PayloadEmpty · 413 PayloadTooLarge (> 4096 bytes) · 400 BadPayload (not a JSON object
 * with an `aps` object; a Live Activity without a numeric `timestamp`, an `event` of
 * start/update/end or a `content-state` object) · 410 Unregistered (the `unregistered` fault).
 *
 * Own control API: POST `/__sim/expire-tokens` (every provider token seen so far is now expired;
 * the next new token is allowed at once), POST `/__sim/config` `{tokenUpdateMinIntervalMs}`.
 * `GET /__sim/state` → `{distinctProviderTokens, providerTokens: [{iat, firstSeen, uses}]}`.
 */

export interface ApnsSimOptions {
	port?: number;
	host?: string;
	/** The public half of the `.p8` key (PEM, SPKI or PKCS #8). */
	publicKey: string;
	keyId: string;
	teamId: string;
	/** Bundle ids this team may push to. */
	topics: string[];
	/** Apple: "no more than once every 20 minutes". */
	tokenUpdateMinIntervalMs?: number;
	/** Each accepted push as a `[push] apns …` line. */
	log?: Log;
	/** Each accepted push (observation only). */
	onPush?: PushListener;
}

const PUSH_TYPES = [
	"alert",
	"background",
	"location",
	"voip",
	"complication",
	"fileprovider",
	"mdm",
	"liveactivity",
	"pushtotalk",
	"widgets",
];
const LIVE_SUFFIX = ".push-type.liveactivity";
const MAX_PAYLOAD = 4096;
const TOKEN_LIFETIME_S = 3600;
const CLOCK_SKEW_S = 60;

interface ApnsState {
	tokens: Map<string, { iat: number; firstSeen: number; uses: number; expired: boolean }>;
	lastNewTokenAt: number | null;
	minIntervalMs: number;
}

export function startApnsSim(options: ApnsSimOptions): Promise<PushSim> {
	const key = createPublicKey(options.publicKey);
	const report = pushReporter(options);
	const refuse = (status: number, reason: string, headers?: Record<string, string>): Reply => ({
		status,
		body: status === 410 ? { reason, timestamp: Date.now() } : { reason },
		headers: { "apns-id": randomUUID(), ...headers },
	});

	const checkProviderToken = (request: SimRequest<ApnsState>): Reply | null => {
		const auth = request.headers.authorization;
		if (!auth) return refuse(403, "MissingProviderToken");
		const match = /^bearer (\S+)$/i.exec(auth);
		const jwt = match?.[1] ? splitJwt(match[1]) : null;
		if (!match?.[1] || !jwt) return refuse(403, "InvalidProviderToken");
		const { header, claims } = jwt;
		request.note.providerToken = { header, claims };
		if (header.alg !== "ES256" || header.kid !== options.keyId || claims.iss !== options.teamId) {
			return refuse(403, "InvalidProviderToken");
		}
		const valid = verify("sha256", Buffer.from(jwt.input), { key, dsaEncoding: "ieee-p1363" }, jwt.signature);
		if (!valid || typeof claims.iat !== "number") return refuse(403, "InvalidProviderToken");
		const now = Date.now();
		if (claims.iat > now / 1000 + CLOCK_SKEW_S) return refuse(403, "InvalidProviderToken");
		const state = request.ns.state;
		const token = match[1];
		const seen = state.tokens.get(token);
		if (claims.iat < now / 1000 - TOKEN_LIFETIME_S || seen?.expired) {
			return refuse(403, "ExpiredProviderToken");
		}
		if (!seen) {
			if (state.lastNewTokenAt !== null && now - state.lastNewTokenAt < state.minIntervalMs) {
				return refuse(429, "TooManyProviderTokenUpdates");
			}
			state.lastNewTokenAt = now;
			state.tokens.set(token, { iat: claims.iat, firstSeen: now, uses: 1, expired: false });
		} else seen.uses += 1;
		return null;
	};

	const handle = (request: SimRequest<ApnsState>): Reply => {
		const route = /^\/3\/device\/([^/]*)$/.exec(request.path);
		if (!route) return refuse(404, "BadPath");
		if (request.method !== "POST") return refuse(405, "MethodNotAllowed");
		const device = decodeURIComponent(route[1] ?? "");
		request.note.deviceToken = device;
		if (!device) return refuse(400, "MissingDeviceToken");
		if (!/^[0-9a-f]{64,200}$/i.test(device)) return refuse(400, "BadDeviceToken");
		const auth = checkProviderToken(request);
		if (auth) return auth;

		const h = request.headers;
		const topic = h["apns-topic"];
		if (!topic) return refuse(400, "MissingTopic");
		const live = topic.endsWith(LIVE_SUFFIX);
		const bundle = live ? topic.slice(0, -LIVE_SUFFIX.length) : topic;
		if (!options.topics.includes(bundle)) return refuse(400, "TopicDisallowed");
		const pushType = h["apns-push-type"];
		if (!pushType || !PUSH_TYPES.includes(pushType)) return refuse(400, "InvalidPushType");
		if ((pushType === "liveactivity") !== live) return refuse(400, "InvalidPushType");
		const priority = h["apns-priority"];
		if (priority !== undefined && !["10", "5", "1"].includes(priority)) return refuse(400, "BadPriority");
		if (pushType === "background" && priority === "10") return refuse(400, "BadPriority");
		const expiration = h["apns-expiration"];
		if (expiration !== undefined && !/^\d{1,12}$/.test(expiration)) return refuse(400, "BadExpirationDate");
		const collapse = h["apns-collapse-id"];
		if (collapse !== undefined && Buffer.byteLength(collapse, "utf8") > 64)
			return refuse(400, "BadCollapseId");
		const id = h["apns-id"];
		if (id !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
			return refuse(400, "BadMessageId");
		}

		if (request.body.length === 0) return refuse(400, "PayloadEmpty");
		if (request.body.length > MAX_PAYLOAD) return refuse(413, "PayloadTooLarge");
		const parsed = parseJsonBody(request.body);
		const payload = parsed.ok ? parsed.value : null;
		if (!isObject(payload) || !isObject(payload.aps)) return refuse(400, "BadPayload");
		const aps = payload.aps;
		if (live) {
			const eventOk = aps.event === "start" || aps.event === "update" || aps.event === "end";
			if (typeof aps.timestamp !== "number" || !eventOk || !isObject(aps["content-state"])) {
				return refuse(400, "BadPayload");
			}
		}
		request.note.payload = payload;

		const fault = request.ns.takeFault(device);
		if (fault?.kind === "unregistered") return refuse(410, "Unregistered");
		if (fault?.kind === "rate_limited") {
			return refuse(
				429,
				"TooManyRequests",
				fault.retryAfter ? { "retry-after": fault.retryAfter } : undefined,
			);
		}
		if (fault?.kind === "server_error") {
			const status = fault.status ?? 500;
			return refuse(status, status === 503 ? "ServiceUnavailable" : "InternalServerError");
		}

		const apnsId = id ?? randomUUID();
		const alert = isObject(aps.alert) ? aps.alert : {};
		const { aps: _aps, ...data } = payload;
		report({
			provider: "apns",
			ns: request.ns.id,
			target: device,
			type: pushType,
			...(typeof alert.title === "string" && { title: alert.title }),
			...(typeof alert.body === "string" && { body: alert.body }),
			...(typeof aps.alert === "string" && { body: aps.alert }),
			data,
			...(live && {
				liveActivity: {
					event: String(aps.event),
					contentState: aps["content-state"] as Record<string, unknown>,
				},
			}),
		});
		return {
			status: 200,
			headers: { "apns-id": apnsId, "apns-unique-id": randomUUID() },
			delayMs: fault?.kind === "slow" ? (fault.delayMs ?? 5000) : undefined,
		};
	};

	return startSimServer<ApnsState>({
		name: "apns",
		port: options.port,
		host: options.host,
		newState: () => ({
			tokens: new Map(),
			lastNewTokenAt: null,
			minIntervalMs: options.tokenUpdateMinIntervalMs ?? 20 * 60_000,
		}),
		handle,
		control(request, name) {
			const state = request.ns.state;
			if (request.method === "POST" && name === "expire-tokens") {
				for (const token of state.tokens.values()) token.expired = true;
				state.lastNewTokenAt = null;
				return { status: 200, body: { ok: true } };
			}
			if (request.method === "POST" && name === "config") {
				const spec = parseJsonBody(request.body);
				const value = spec.ok && isObject(spec.value) ? spec.value.tokenUpdateMinIntervalMs : undefined;
				if (typeof value !== "number")
					return { status: 400, body: { error: "tokenUpdateMinIntervalMs: number" } };
				state.minIntervalMs = value;
				return { status: 200, body: { ok: true } };
			}
			return null;
		},
		describe: (state) => ({
			distinctProviderTokens: state.tokens.size,
			providerTokens: [...state.tokens.values()],
		}),
	});
}

function isObject(value: unknown): value is Record<string, unknown> {
	return value !== null && typeof value === "object" && !Array.isArray(value);
}
