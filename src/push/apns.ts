import * as z from "zod/mini";
import type { PushCredentials } from "./credentials.ts";
import {
	type ApnsTarget,
	PUSH_DEFAULTS,
	type PushMessage,
	type PushProvider,
	type PushResult,
} from "./provider.ts";
import {
	fittedKey,
	importSigningKey,
	parseJson,
	signJwt,
	timedCall,
	transientFailure,
	unanswered,
	utf8Bytes,
} from "./wire.ts";

/**
 * APNs with token authentication: POST `<base>/3/device/<token>` with an ES256 provider token
 * (`{alg: ES256, kid: APNS_KEY_ID}` · `{iss: APNS_TEAM_ID, iat}`) signed with the `.p8` key. Production
 * APNs speaks HTTP/2 only, which a deployed Worker's `fetch` negotiates; simulators speak HTTP/1.1.
 */

export interface ApnsKey {
	/** The `.p8` file's PEM (PKCS #8, P-256). */
	key: string;
	keyId: string;
	teamId: string;
}

export interface ApnsConfig {
	baseUrl: string;
	key: ApnsKey;
	timeoutMs: number;
}

/** Apple's limit on a notification's JSON (Live Activities included; VoIP has 5 KB). */
export const APNS_MAX_PAYLOAD_BYTES = 4096;
const COLLAPSE_ID_MAX_BYTES = 64;

const ApnsError = z.object({ reason: z.string(), timestamp: z.optional(z.number()) });

export async function mintApnsToken(key: ApnsKey, now = Date.now()): Promise<string> {
	const signingKey = await importSigningKey(key.key, "ES256");
	return signJwt(
		{ alg: "ES256", kid: key.keyId },
		{ iss: key.teamId, iat: Math.floor(now / 1000) },
		signingKey,
	);
}

/** The origin for a target: Apple's sandbox host only when the configured base is Apple's production host. */
export function apnsOrigin(baseUrl: string, environment: ApnsTarget["environment"]): string {
	const base = baseUrl.replace(/\/+$/, "");
	if (environment === "sandbox" && base === PUSH_DEFAULTS.APNS_BASE_URL)
		return PUSH_DEFAULTS.APNS_SANDBOX_URL;
	return base;
}

/** The APNs request for one message: headers and JSON body, or why it cannot be sent. */
export async function apnsRequest(
	target: ApnsTarget,
	message: PushMessage,
	now = Date.now(),
): Promise<{ headers: Record<string, string>; body: string } | { invalid: string }> {
	if (message.data && "aps" in message.data) return { invalid: "data may not contain the key 'aps'" };
	const alert =
		message.title !== undefined || message.body !== undefined
			? {
					...(message.title !== undefined && { title: message.title }),
					...(message.body !== undefined && { body: message.body }),
				}
			: undefined;
	let pushType: string;
	let topic: string;
	let aps: Record<string, unknown>;
	if (target.pushType === "liveactivity") {
		const live = message.liveActivity;
		if (!live) return { invalid: "a Live Activity push needs message.liveActivity" };
		pushType = "liveactivity";
		topic = `${target.bundleId}.push-type.liveactivity`;
		aps = {
			timestamp: Math.floor(live.timestamp),
			event: live.event,
			"content-state": live.contentState,
			...(live.staleDate !== undefined && { "stale-date": Math.floor(live.staleDate) }),
			...(live.dismissalDate !== undefined && { "dismissal-date": Math.floor(live.dismissalDate) }),
			...(alert && { alert }),
		};
	} else if (alert) {
		pushType = "alert";
		topic = target.bundleId;
		aps = { alert, sound: "default" };
	} else {
		pushType = "background";
		topic = target.bundleId;
		aps = { "content-available": 1 };
	}
	const body = JSON.stringify({ ...message.data, aps });
	if (utf8Bytes(body).length > APNS_MAX_PAYLOAD_BYTES) {
		return { invalid: `payload over ${APNS_MAX_PAYLOAD_BYTES} bytes` };
	}
	const headers: Record<string, string> = {
		"apns-topic": topic,
		"apns-push-type": pushType,
		// Background pushes must be priority 5; Apple refuses 10 for them.
		"apns-priority": message.priority === "high" && pushType !== "background" ? "10" : "5",
		"apns-expiration": message.ttlSeconds > 0 ? String(Math.floor(now / 1000) + message.ttlSeconds) : "0",
		"content-type": "application/json",
	};
	if (message.collapseKey !== undefined) {
		headers["apns-collapse-id"] = await fittedKey(
			message.collapseKey,
			COLLAPSE_ID_MAX_BYTES,
			/^[\x20-\x7e]+$/,
		);
	}
	return { headers, body };
}

export function apnsProvider(config: ApnsConfig, credentials: PushCredentials): PushProvider<ApnsTarget> {
	const attempt = async (
		target: ApnsTarget,
		request: { headers: Record<string, string>; body: string },
		token: string,
	) => {
		const url = `${apnsOrigin(config.baseUrl, target.environment)}/3/device/${encodeURIComponent(target.token)}`;
		return timedCall(
			url,
			{
				method: "POST",
				headers: { ...request.headers, authorization: `bearer ${token}` },
				body: request.body,
			},
			config.timeoutMs,
		);
	};
	return {
		async send(target, message) {
			const request = await apnsRequest(target, message);
			if ("invalid" in request) return { outcome: "rejected", reason: `invalid_message: ${request.invalid}` };
			let credential = await credentials.apnsToken(config.key);
			if ("error" in credential) return credential.error;
			let call = await attempt(target, request, credential.token);
			if (call.ok && call.answer.status === 403 && apnsReason(call.answer.text) === "ExpiredProviderToken") {
				// Apple says the shared token is too old: renew it (once, for everybody) and resend now.
				credential = await credentials.apnsToken(config.key, credential.token);
				if ("error" in credential) return credential.error;
				call = await attempt(target, request, credential.token);
			}
			if (!call.ok) return unanswered(call.reason);
			return classifyApns(call.answer);
		},
	};
}

function apnsReason(text: string): string | null {
	const parsed = ApnsError.safeParse(parseJson(text));
	return parsed.success ? parsed.data.reason : null;
}

/**
 * 200 → sent (apns-id); 410 (Unregistered, ExpiredToken) and 400 BadDeviceToken → unregistered: the
 * token will never work again for this app and environment; 429 (TooManyRequests,
 * TooManyProviderTokenUpdates) and 5xx → retry; any other 4xx → rejected with Apple's reason.
 */
export function classifyApns(answer: { status: number; headers: Headers; text: string }): PushResult {
	const reason = apnsReason(answer.text) ?? `HTTP ${answer.status}`;
	if (answer.status === 200) {
		const id = answer.headers.get("apns-id");
		return id ? { outcome: "sent", providerId: id } : { outcome: "sent" };
	}
	const transient = transientFailure(answer, reason);
	if (transient) return transient;
	if (answer.status === 410 || reason === "BadDeviceToken") {
		return { outcome: "unregistered", reason, status: answer.status };
	}
	return { outcome: "rejected", reason, status: answer.status };
}
