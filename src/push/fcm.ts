import * as z from "zod/mini";
import type { PushCredentials } from "./credentials.ts";
import type { FcmTarget, PushMessage, PushProvider, PushResult } from "./provider.ts";
import {
	DEFAULT_TIMEOUT_MS,
	type HttpAnswer,
	importSigningKey,
	looksLikePkcs8,
	parseJson,
	signJwt,
	timedCall,
	transientFailure,
	unanswered,
} from "./wire.ts";

/**
 * FCM HTTP v1: the service account's RS256 assertion is exchanged at FCM_TOKEN_URL (OAuth 2.0 JWT
 * bearer grant, RFC 7523) for an access token, shared and cached ~55 min (src/push/credentials.ts);
 * then POST `<base>/v1/projects/<project_id>/messages:send`. Errors are read from
 * `error.details[].errorCode` (google.firebase.fcm.v1.FcmError).
 */

const SCOPE = "https://www.googleapis.com/auth/firebase.messaging";
const ASSERTION_LIFETIME_S = 3600;

export const ServiceAccount = z.object({
	project_id: z.string().check(z.minLength(1)),
	private_key: z.string().check(z.refine(looksLikePkcs8, "not a PKCS #8 PEM")),
	client_email: z.string().check(z.minLength(3)),
	private_key_id: z.optional(z.string()),
});
export type ServiceAccount = z.infer<typeof ServiceAccount>;

/** The parts of FCM_SERVICE_ACCOUNT this layer needs, or null when it is missing or malformed. */
export function parseServiceAccount(json: string | undefined): ServiceAccount | null {
	if (!json) return null;
	const parsed = z.looseObject(ServiceAccount.shape).safeParse(parseJson(json));
	if (!parsed.success) return null;
	const { project_id, private_key, client_email, private_key_id } = parsed.data;
	return { project_id, private_key, client_email, ...(private_key_id !== undefined && { private_key_id }) };
}

export interface FcmAccount {
	account: ServiceAccount;
	tokenUrl: string;
	timeoutMs?: number;
}

export interface FcmConfig {
	baseUrl: string;
	account: FcmAccount;
	timeoutMs: number;
}

const TokenAnswer = z.object({ access_token: z.string().check(z.minLength(1)), expires_in: z.number() });
const TokenError = z.object({ error: z.string(), error_description: z.optional(z.string()) });

/** One OAuth exchange (the PushCredentialsDO calls this; nothing else should). */
export async function fetchFcmAccessToken(
	fcm: FcmAccount,
	now = Date.now(),
): Promise<{ token: string; expiresAt: number } | { error: PushResult }> {
	let assertion: string;
	try {
		const key = await importSigningKey(fcm.account.private_key, "RS256");
		const iat = Math.floor(now / 1000);
		assertion = await signJwt(
			{ alg: "RS256", typ: "JWT", ...(fcm.account.private_key_id && { kid: fcm.account.private_key_id }) },
			{
				iss: fcm.account.client_email,
				scope: SCOPE,
				aud: fcm.tokenUrl,
				iat,
				exp: iat + ASSERTION_LIFETIME_S,
			},
			key,
		);
	} catch (error) {
		return { error: { outcome: "rejected", reason: `fcm_credentials: ${String(error)}` } };
	}
	const call = await timedCall(
		fcm.tokenUrl,
		{
			method: "POST",
			headers: { "content-type": "application/x-www-form-urlencoded" },
			body: new URLSearchParams({
				grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer",
				assertion,
			}).toString(),
		},
		fcm.timeoutMs ?? DEFAULT_TIMEOUT_MS,
	);
	if (!call.ok) return { error: unanswered(`fcm_credentials: ${call.reason}`) };
	const { answer } = call;
	const granted = TokenAnswer.safeParse(parseJson(answer.text));
	if (answer.status === 200 && granted.success) {
		return { token: granted.data.access_token, expiresAt: now + granted.data.expires_in * 1000 };
	}
	const refused = TokenError.safeParse(parseJson(answer.text));
	const reason = `fcm_credentials: ${refused.success ? `${refused.data.error}: ${refused.data.error_description ?? ""}` : `HTTP ${answer.status}`}`;
	return {
		error: transientFailure(answer, reason) ?? { outcome: "rejected", reason, status: answer.status },
	};
}

/** The v1 `message` for one target. */
export function fcmMessage(target: FcmTarget, message: PushMessage): Record<string, unknown> {
	const notification =
		message.title !== undefined || message.body !== undefined
			? {
					...(message.title !== undefined && { title: message.title }),
					...(message.body !== undefined && { body: message.body }),
				}
			: undefined;
	return {
		token: target.token,
		...(notification && { notification }),
		...(message.data && { data: message.data }),
		android: {
			priority: message.priority === "high" ? "HIGH" : "NORMAL",
			ttl: `${message.ttlSeconds}s`,
			...(message.collapseKey !== undefined && { collapse_key: message.collapseKey }),
		},
	};
}

export function fcmProvider(config: FcmConfig, credentials: PushCredentials): PushProvider<FcmTarget> {
	const url = `${config.baseUrl.replace(/\/+$/, "")}/v1/projects/${encodeURIComponent(config.account.account.project_id)}/messages:send`;
	const account = { ...config.account, timeoutMs: config.timeoutMs };
	const attempt = (body: string, token: string) =>
		timedCall(
			url,
			{
				method: "POST",
				headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
				body,
			},
			config.timeoutMs,
		);
	return {
		async send(target, message) {
			const body = JSON.stringify({ message: fcmMessage(target, message) });
			let credential = await credentials.fcmAccessToken(account);
			if ("error" in credential) return credential.error;
			let call = await attempt(body, credential.token);
			if (call.ok && call.answer.status === 401) {
				// The access token was refused (revoked, expired early): renew it once and resend now.
				credential = await credentials.fcmAccessToken(account, credential.token);
				if ("error" in credential) return credential.error;
				call = await attempt(body, credential.token);
			}
			if (!call.ok) return unanswered(call.reason);
			return classifyFcm(call.answer);
		},
	};
}

const FcmErrorBody = z.object({
	error: z.object({
		code: z.optional(z.number()),
		status: z.optional(z.string()),
		message: z.optional(z.string()),
		details: z.optional(
			z.array(z.looseObject({ "@type": z.optional(z.string()), errorCode: z.optional(z.string()) })),
		),
	}),
});
const Sent = z.object({ name: z.string() });

const RETRY_CODES = new Set(["QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"]);

/**
 * 200 → sent (the message name); errorCode UNREGISTERED → unregistered; QUOTA_EXCEEDED, UNAVAILABLE,
 * INTERNAL, any 429/5xx → retry (Retry-After honoured); INVALID_ARGUMENT, SENDER_ID_MISMATCH,
 * THIRD_PARTY_AUTH_ERROR and any other 4xx → rejected.
 */
export function classifyFcm(answer: HttpAnswer): PushResult {
	if (answer.status === 200) {
		const sent = Sent.safeParse(parseJson(answer.text));
		return sent.success ? { outcome: "sent", providerId: sent.data.name } : { outcome: "sent" };
	}
	const parsed = FcmErrorBody.safeParse(parseJson(answer.text));
	const errorCode = parsed.success
		? parsed.data.error.details?.find((d) => d.errorCode !== undefined)?.errorCode
		: undefined;
	const reason =
		errorCode ?? (parsed.success ? parsed.data.error.status : undefined) ?? `HTTP ${answer.status}`;
	const detail =
		parsed.success && parsed.data.error.message ? `${reason}: ${parsed.data.error.message}` : reason;
	if (errorCode === "UNREGISTERED") return { outcome: "unregistered", reason: detail, status: answer.status };
	const transient = transientFailure(answer, detail);
	if (transient) return transient;
	if (errorCode && RETRY_CODES.has(errorCode)) {
		return { outcome: "retry", retryAfterMs: null, reason: detail, status: answer.status };
	}
	return { outcome: "rejected", reason: detail, status: answer.status };
}
