import { createECDH, createPublicKey, type ECDH, randomBytes, randomUUID, verify } from "node:crypto";
import ece from "http_ece";
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
 * A strict stand-in for a browser's push service (RFC 8030) AND the browser behind it: it creates
 * subscriptions (holding the user agent's private ECDH key and auth secret, as a browser does),
 * verifies VAPID (RFC 8292) and decrypts each push with `http_ece` — the independent RFC 8188/8291
 * implementation the `web-push` package builds on — recording the plaintext.
 *
 * `POST /push/<id>`. Refusals: 404 (no such subscription) · 410 Gone (`unregistered`: the
 * subscription expired; it stays gone) · 405 (not POST) · 401 (no `Authorization: vapid t=…, k=…`;
 * `k` not a P-256 point; the JWT not ES256, badly signed, `aud` ≠ this service's origin, `exp`
 * missing, passed or more than 24 h ahead, `sub` not mailto:/https:) · 403 (`k` is not the
 * applicationServerKey the subscription was created with) · 400 (TTL missing or not a non-negative
 * integer; Urgency not very-low/low/normal/high; Topic over 32 chars or outside the base64url
 * alphabet; Content-Encoding not aes128gcm; a body that does not decrypt) · 413 (body over 4096
 * bytes) · 429 (`rate_limited`, Retry-After) · 5xx (`server_error`). Success: 201 + Location.
 *
 * Own control API: POST `/__sim/subscriptions` `{applicationServerKey?}` → `{endpoint, keys: {p256dh,
 * auth}}` (what `PushSubscription.toJSON()` gives a page). `GET /__sim/state` → `{subscriptions,
 * delivered}`. Each accepted push's recorded `note` has `plaintext`, `ttl`, `urgency`, `topic`, `vapid`.
 */

export interface WebPushSimOptions {
	port?: number;
	host?: string;
	/** Each accepted push as a `[push] webpush …` line. */
	log?: Log;
	/** Each accepted push (observation only). */
	onPush?: PushListener;
}

const MAX_BODY = 4096;
const MAX_EXP_AHEAD_S = 24 * 3600;
const URGENCIES = ["very-low", "low", "normal", "high"];

interface Subscription {
	ecdh: ECDH;
	auth: Buffer;
	applicationServerKey?: string;
	gone: boolean;
}

interface WebPushState {
	subscriptions: Map<string, Subscription>;
	delivered: number;
}

export function startWebPushSim(options: WebPushSimOptions = {}): Promise<PushSim> {
	const report = pushReporter(options);
	const text = (status: number, message: string, headers?: Record<string, string>): Reply => ({
		status,
		body: { code: status, message },
		headers,
	});

	const checkVapid = (request: SimRequest<WebPushState>, subscription: Subscription): Reply | null => {
		const auth = request.headers.authorization ?? "";
		const match = /^vapid\s+(.+)$/i.exec(auth);
		if (!match?.[1]) return text(401, "VAPID authorization (vapid t=…, k=…) required");
		const params = new Map<string, string>();
		for (const part of match[1].split(",")) {
			const [name, ...rest] = part.trim().split("=");
			if (name) params.set(name.trim().toLowerCase(), rest.join("=").trim());
		}
		const t = params.get("t");
		const k = params.get("k");
		if (!t || !k) return text(401, "vapid: t and k are required");
		const point = Buffer.from(k, "base64url");
		if (point.length !== 65 || point[0] !== 4) return text(401, "vapid: k is not an uncompressed P-256 key");
		let key: ReturnType<typeof createPublicKey>;
		try {
			key = createPublicKey({
				key: {
					kty: "EC",
					crv: "P-256",
					x: point.subarray(1, 33).toString("base64url"),
					y: point.subarray(33).toString("base64url"),
				},
				format: "jwk",
			});
		} catch {
			return text(401, "vapid: k is not on the curve");
		}
		const jwt = splitJwt(t);
		if (jwt?.header.alg !== "ES256") return text(401, "vapid: t is not an ES256 JWT");
		request.note.vapid = jwt.claims;
		if (!verify("sha256", Buffer.from(jwt.input), { key, dsaEncoding: "ieee-p1363" }, jwt.signature)) {
			return text(401, "vapid: bad signature");
		}
		const { aud, exp, sub } = jwt.claims;
		if (aud !== request.url.origin) return text(401, `vapid: aud must be ${request.url.origin}`);
		const now = Date.now() / 1000;
		if (typeof exp !== "number" || exp <= now || exp > now + MAX_EXP_AHEAD_S) {
			return text(401, "vapid: exp must be in the next 24 hours");
		}
		if (typeof sub !== "string" || !/^(mailto:|https:)/.test(sub))
			return text(401, "vapid: sub must be mailto: or https:");
		if (subscription.applicationServerKey && subscription.applicationServerKey !== k) {
			return text(403, "vapid: k is not this subscription's applicationServerKey");
		}
		return null;
	};

	const push = (request: SimRequest<WebPushState>, id: string): Reply => {
		const subscription = request.ns.state.subscriptions.get(id);
		if (!subscription) return text(404, "No such subscription");
		if (subscription.gone) return text(410, "Subscription expired");
		if (request.method !== "POST") return text(405, "Use POST");
		const refused = checkVapid(request, subscription);
		if (refused) return refused;
		const h = request.headers;
		if (h.ttl === undefined || !/^\d{1,10}$/.test(h.ttl)) return text(400, "TTL header required (seconds)");
		if (h.urgency !== undefined && !URGENCIES.includes(h.urgency))
			return text(400, "Urgency must be very-low, low, normal or high");
		if (h.topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(h.topic))
			return text(400, "Topic: at most 32 base64url characters");
		if (request.body.length > MAX_BODY) return text(413, "Payload too large");
		let plaintext = "";
		if (request.body.length > 0) {
			if (h["content-encoding"] !== "aes128gcm") return text(400, "Content-Encoding must be aes128gcm");
			try {
				plaintext = ece
					.decrypt(request.body, {
						version: "aes128gcm",
						privateKey: subscription.ecdh,
						authSecret: subscription.auth,
					})
					.toString("utf8");
			} catch (error) {
				return text(400, `Decryption failed: ${String(error)}`);
			}
		}
		request.note.plaintext = plaintext;
		request.note.ttl = Number(h.ttl);
		request.note.urgency = h.urgency ?? null;
		request.note.topic = h.topic ?? null;
		const fault = request.ns.takeFault(id);
		if (fault?.kind === "unregistered") {
			subscription.gone = true;
			return text(410, "Subscription expired");
		}
		if (fault?.kind === "rate_limited") {
			return text(
				429,
				"Too many requests",
				fault.retryAfter ? { "retry-after": fault.retryAfter } : undefined,
			);
		}
		if (fault?.kind === "server_error") return text(fault.status ?? 503, "Service unavailable");
		request.ns.state.delivered += 1;
		const parsed = parseJsonBody(Buffer.from(plaintext));
		const json =
			parsed.ok && parsed.value && typeof parsed.value === "object" && !Array.isArray(parsed.value)
				? (parsed.value as Record<string, unknown>)
				: null;
		const title = typeof json?.title === "string" ? json.title : undefined;
		const body = typeof json?.body === "string" ? json.body : undefined;
		report({
			provider: "webpush",
			ns: request.ns.id,
			target: id,
			type: title || body ? "notification" : "data",
			...(title !== undefined && { title }),
			...(body !== undefined && { body }),
			// The JSON's `data` (beside title and body), else the whole JSON, else the text.
			data:
				json?.data && typeof json.data === "object" && !Array.isArray(json.data)
					? (json.data as Record<string, unknown>)
					: (json ?? { text: plaintext }),
		});
		return {
			status: 201,
			headers: { location: `${request.ns.base}/message/${randomUUID()}`, ttl: h.ttl },
			delayMs: fault?.kind === "slow" ? (fault.delayMs ?? 5000) : undefined,
		};
	};

	return startSimServer<WebPushState>({
		name: "webpush",
		port: options.port,
		host: options.host,
		newState: () => ({ subscriptions: new Map(), delivered: 0 }),
		handle(request) {
			const route = /^\/push\/([A-Za-z0-9_-]+)$/.exec(request.path);
			if (!route?.[1]) return text(404, `No route ${request.path}`);
			return push(request, route[1]);
		},
		control(request, name) {
			if (request.method !== "POST" || name !== "subscriptions") return null;
			const spec = parseJsonBody(request.body);
			const applicationServerKey =
				spec.ok && spec.value && typeof spec.value === "object"
					? (spec.value as Record<string, unknown>).applicationServerKey
					: undefined;
			const ecdh = createECDH("prime256v1");
			ecdh.generateKeys();
			const auth = randomBytes(16);
			const id = randomBytes(18).toString("base64url");
			request.ns.state.subscriptions.set(id, {
				ecdh,
				auth,
				gone: false,
				...(typeof applicationServerKey === "string" && { applicationServerKey }),
			});
			return {
				status: 201,
				body: {
					endpoint: `${request.ns.base}/push/${id}`,
					keys: { p256dh: ecdh.getPublicKey().toString("base64url"), auth: auth.toString("base64url") },
				},
			};
		},
		describe: (state) => ({ subscriptions: state.subscriptions.size, delivered: state.delivered }),
	});
}
