import type { Env } from "../env.ts";
import { type ApnsConfig, apnsProvider } from "./apns.ts";
import { type PushCredentials, sharedCredentials } from "./credentials.ts";
import { type ExpoProvider, expoProvider } from "./expo.ts";
import { type FcmConfig, fcmProvider, parseServiceAccount } from "./fcm.ts";
import { parseVapidKeys, webPushProvider } from "./webpush.ts";
import { DEFAULT_TIMEOUT_MS, looksLikePkcs8 } from "./wire.ts";

/**
 * Push providers (issue 10, items 4–5): one message to one device, from the Worker with `fetch` and
 * WebCrypto only, and a classified answer. Who gets pushed, when, how often it is retried and what is
 * stored is the caller's business (the Session DO); this layer only speaks each provider's wire.
 *
 * ```ts
 * const providers = pushProviders(env);            // a provider whose secrets are missing is absent
 * const result = await sendPush(providers, target, message);
 * switch (result.outcome) {
 *   case "sent":          // accepted; result.providerId = Expo ticket id (fetch its receipt ~15 min later
 *                         // with providers.expo.getReceipts), apns-id, FCM message name, Web Push Location
 *   case "retry":         // 429, 5xx, network, timeout: try again, not before result.retryAfterMs (if any)
 *   case "unregistered":  // 410 / Unregistered / BadDeviceToken / UNREGISTERED / DeviceNotRegistered / 404:
 *                         // remove the device (or the Live Activity token) at once
 *   case "rejected":      // a definite 4xx (or a provider that is off): give up on this message
 * }
 * ```
 *
 * Rules every provider keeps:
 * - No timer outlives a call: one AbortController per call, its timer cleared when the call settles
 *   (`timeoutMs`, default 10 s, covers the answer's body too). Nothing is retried inside a provider,
 *   except one immediate resend with a fresh credential when APNs says ExpiredProviderToken or FCM
 *   says 401 — so the caller owns every delay.
 * - `Retry-After` (seconds or an HTTP date) becomes `retryAfterMs`; absent or unreadable → null.
 * - Every answer is parsed with zod; an unexpected answer is "retry" if 5xx/429, else "rejected".
 * - Provider credentials are shared: ONE APNs provider token per key (refreshed after 40 min — Apple
 *   wants 20–60) and ONE FCM access token per service account (kept until 5 min before it expires),
 *   minted by the `PushCredentialsDO` singleton and cached per isolate in front of it
 *   (src/push/credentials.ts), so no object or request mints its own.
 * - `collapseKey` dedupes and replaces: apns-collapse-id (≤ 64 bytes), FCM `android.collapse_key`,
 *   Web Push `Topic` (≤ 32 base64url chars); a key too long for a provider is replaced by a prefix of
 *   its SHA-256 (same key, same value). The Expo Push API has no collapse field: put the dedupe key in
 *   `data` for the app.
 * - APNs sandbox vs production: with the default APNS_BASE_URL (https://api.push.apple.com) a target
 *   with `environment: "sandbox"` goes to https://api.sandbox.push.apple.com; any other APNS_BASE_URL
 *   (a simulator, a proxy) is used for both environments.
 * - Web Push endpoints come from the browser; the registration route must accept only https
 *   endpoints of known push services before one reaches `send` (this layer posts to what it is given).
 */

/** Where one push goes: a registered device, or an iOS Live Activity's push token. */
export type PushTarget = ExpoTarget | ApnsTarget | FcmTarget | WebPushTarget;

/** An Expo push token, `ExponentPushToken[…]` (what `expo-notifications` gives an Expo app). */
export interface ExpoTarget {
	kind: "expo";
	token: string;
}

/** A native APNs device token (hex), or a Live Activity's push token with `pushType: "liveactivity"`. */
export interface ApnsTarget {
	kind: "apns";
	token: string;
	bundleId: string;
	environment: "production" | "sandbox";
	pushType: "alert" | "liveactivity";
}

/** An FCM registration token. */
export interface FcmTarget {
	kind: "fcm";
	token: string;
}

/** A browser's PushSubscription: endpoint + keys.p256dh + keys.auth (base64url). */
export interface WebPushTarget {
	kind: "webpush";
	endpoint: string;
	p256dh: string;
	auth: string;
}

export interface PushMessage {
	/** The notification a person sees. Without title and body the message is data-only (APNs
	 * background push, FCM data message, Web Push data for the service worker). */
	title?: string;
	body?: string;
	/** Delivered to the app: mandate_id, session_id, … (strings only, as FCM demands). */
	data?: Record<string, string>;
	/** Dedupe/replace key (see above). */
	collapseKey?: string;
	/** high: APNs 10 / FCM HIGH / Expo high / Urgency high; normal: APNs 5 / NORMAL / normal / normal. */
	priority: "high" | "normal";
	/** How long the provider may hold the message for an offline device; 0 = now or never. */
	ttlSeconds: number;
	/** Required for an APNs target with `pushType: "liveactivity"`, ignored by everything else. */
	liveActivity?: LiveActivityUpdate;
}

/** The `aps` of a Live Activity push (DESIGN.md "Push"). Times are Unix seconds. */
export interface LiveActivityUpdate {
	event: "update" | "end";
	/** The app's `ContentState` (stage, stage_name, status, progress, sub_status, answer_preview). */
	contentState: Record<string, unknown>;
	timestamp: number;
	staleDate?: number;
	/** With `event: "end"`: when the system removes the ended activity from the lock screen. */
	dismissalDate?: number;
}

export type PushResult =
	| { outcome: "sent"; providerId?: string }
	| { outcome: "retry"; retryAfterMs: number | null; reason: string; status?: number }
	| { outcome: "unregistered"; reason: string; status?: number }
	| { outcome: "rejected"; reason: string; status?: number };

/** One provider: send one message to one target. */
export interface PushProvider<T extends PushTarget> {
	send(target: T, message: PushMessage): Promise<PushResult>;
}

/** The providers that are on; a provider whose configuration is missing or malformed is absent. */
export interface PushProviders {
	expo?: ExpoProvider;
	apns?: PushProvider<ApnsTarget>;
	fcm?: PushProvider<FcmTarget>;
	webpush?: PushProvider<WebPushTarget>;
}

export type PushKind = PushTarget["kind"];

/** Why a provider is off: the settings that are missing or malformed (never their values). */
export type ProviderStatus = { on: true } | { on: false; missing: string[] };

export interface PushOptions {
	/** One provider call's limit, answer body included. Default 10 s. */
	timeoutMs?: number;
	/** Where APNs provider tokens and FCM access tokens come from; default the shared PushCredentialsDO. */
	credentials?: PushCredentials;
}

/** The settings this layer reads (DESIGN.md "Push"; the names are the contract). */
export type PushEnv = Pick<
	Env,
	| "PUSH_CREDENTIALS"
	| "EXPO_PUSH_URL"
	| "EXPO_ACCESS_TOKEN"
	| "APNS_BASE_URL"
	| "APNS_KEY"
	| "APNS_KEY_ID"
	| "APNS_TEAM_ID"
	| "FCM_BASE_URL"
	| "FCM_TOKEN_URL"
	| "FCM_SERVICE_ACCOUNT"
	| "VAPID_PUBLIC_KEY"
	| "VAPID_PRIVATE_KEY"
	| "VAPID_SUBJECT"
>;

export const PUSH_DEFAULTS = {
	EXPO_PUSH_URL: "https://exp.host/--/api/v2/push",
	APNS_BASE_URL: "https://api.push.apple.com",
	APNS_SANDBOX_URL: "https://api.sandbox.push.apple.com",
	FCM_BASE_URL: "https://fcm.googleapis.com",
	FCM_TOKEN_URL: "https://oauth2.googleapis.com/token",
} as const;

/**
 * Which providers are on and, for each one that is off, which settings it lacks — for a registration
 * route's clear 4xx and the operator's log. Expo needs no secret: it is on unless EXPO_PUSH_URL is
 * set to "". Synchronous: keys are checked for their shape here; a key WebCrypto still refuses
 * makes each send "rejected" with the reason.
 */
export function pushProviderStatus(env: PushEnv): Record<PushKind, ProviderStatus> {
	const missing = (checks: [string, boolean][]): ProviderStatus => {
		const names = checks.filter(([, ok]) => !ok).map(([name]) => name);
		return names.length === 0 ? { on: true } : { on: false, missing: names };
	};
	return {
		expo: missing([["EXPO_PUSH_URL", env.EXPO_PUSH_URL !== ""]]),
		apns: missing([
			["APNS_KEY", !!env.APNS_KEY && looksLikePkcs8(env.APNS_KEY)],
			["APNS_KEY_ID", !!env.APNS_KEY_ID],
			["APNS_TEAM_ID", !!env.APNS_TEAM_ID],
		]),
		fcm: missing([["FCM_SERVICE_ACCOUNT", parseServiceAccount(env.FCM_SERVICE_ACCOUNT) !== null]]),
		webpush: missing([
			["VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY", parseVapidKeys(env) !== null],
			["VAPID_SUBJECT", /^(mailto:|https:)/.test(env.VAPID_SUBJECT ?? "")],
		]),
	};
}

/** The providers that are on; build once per request or object (cheap: no I/O, no key import). */
export function pushProviders(env: PushEnv, options: PushOptions = {}): PushProviders {
	const status = pushProviderStatus(env);
	const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
	const credentials = () => options.credentials ?? sharedCredentials(env.PUSH_CREDENTIALS);
	const providers: PushProviders = {};
	if (status.expo.on) {
		providers.expo = expoProvider({
			baseUrl: env.EXPO_PUSH_URL ?? PUSH_DEFAULTS.EXPO_PUSH_URL,
			accessToken: env.EXPO_ACCESS_TOKEN || undefined,
			timeoutMs,
		});
	}
	if (status.apns.on && env.APNS_KEY && env.APNS_KEY_ID && env.APNS_TEAM_ID) {
		const config: ApnsConfig = {
			baseUrl: env.APNS_BASE_URL || PUSH_DEFAULTS.APNS_BASE_URL,
			key: { key: env.APNS_KEY, keyId: env.APNS_KEY_ID, teamId: env.APNS_TEAM_ID },
			timeoutMs,
		};
		providers.apns = apnsProvider(config, credentials());
	}
	const account = parseServiceAccount(env.FCM_SERVICE_ACCOUNT);
	if (status.fcm.on && account) {
		const config: FcmConfig = {
			baseUrl: env.FCM_BASE_URL || PUSH_DEFAULTS.FCM_BASE_URL,
			account: { account, tokenUrl: env.FCM_TOKEN_URL || PUSH_DEFAULTS.FCM_TOKEN_URL },
			timeoutMs,
		};
		providers.fcm = fcmProvider(config, credentials());
	}
	const vapid = parseVapidKeys(env);
	if (status.webpush.on && vapid && env.VAPID_SUBJECT) {
		providers.webpush = webPushProvider({ vapid, subject: env.VAPID_SUBJECT, timeoutMs });
	}
	return providers;
}

/** Sends to whichever provider the target needs; a provider that is off answers "rejected". */
export function sendPush(
	providers: PushProviders,
	target: PushTarget,
	message: PushMessage,
): Promise<PushResult> {
	switch (target.kind) {
		case "expo":
			return providers.expo?.send(target, message) ?? off("expo");
		case "apns":
			return providers.apns?.send(target, message) ?? off("apns");
		case "fcm":
			return providers.fcm?.send(target, message) ?? off("fcm");
		case "webpush":
			return providers.webpush?.send(target, message) ?? off("webpush");
	}
}

function off(kind: PushKind): Promise<PushResult> {
	return Promise.resolve({ outcome: "rejected", reason: `provider_off: ${kind} is not configured` });
}
