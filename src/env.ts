import type { GatewayDO } from "./openclaw/gateway-do.ts";
import type { PushCredentialsDO } from "./push/credentials.ts";
import type { SessionDO } from "./session/session-do.ts";

type WorkerEnv = Env;

/**
 * Bindings and configuration (DESIGN.md, "External contract"). Secrets come from
 * `wrangler secret put` in production and `.dev.vars` locally; any of them may be missing, and the
 * routes that need a missing one refuse with a clear error instead of running open.
 */
export interface Env {
	SESSION: DurableObjectNamespace<SessionDO>;
	GATEWAY: DurableObjectNamespace<GatewayDO>;
	/** Places Session and Gateway objects in a jurisdiction (e.g. "eu"); empty: anywhere (src/durable/placement.ts). */
	DO_JURISDICTION?: string;
	DB: D1Database;
	OBEGEE_BASE_URL: string;
	OBEGEE_API_TOKEN?: string;
	WEBHOOK_SECRET?: string;
	SESSION_TOKEN_SECRET?: string;
	SERVICE_TOKEN?: string;
	ADMIN_TOKEN?: string;
	POLL_INTERVAL_MS?: string;
	/** Days a finished mandate, its events and audit rows are kept (default 30). */
	RETENTION_DAYS?: string;
	EXECUTION_TIMEOUT_MS?: string;
	OPENCLAW_GATEWAY_URL?: string;
	OPENCLAW_GATEWAY_TOKEN?: string;
	/** AES-256-GCM keys (base64, 32 bytes; space-separated for rotation, the first encrypts) for the
	 * tenant gateway tokens stored in D1 (src/auth/gateway-token.ts). Without it no gateway is registered. */
	GATEWAY_TOKEN_KEY?: string;
	/** Web origins (comma-separated) allowed to call the API from a browser; same-origin needs none. */
	ALLOWED_ORIGINS?: string;
	/** "true" logs per-session work counters (one JSON line per flush and alarm); the benchmark reads them. */
	METRICS_LOG?: string;
	/** Workers Analytics Engine: one data point per stage, outcome, gateway drop and push (src/session/analytics.ts). */
	METRICS?: AnalyticsEngineDataset;
	/** "true" only in local configs (npm start, the browser test): enables src/routes/demo.ts. */
	DEMO_ROUTES?: string;
	/** The singleton that mints and caches the shared APNs provider token and FCM access token. */
	PUSH_CREDENTIALS: DurableObjectNamespace<PushCredentialsDO>;
	// Push providers (DESIGN.md "Push"): a provider whose settings are missing is off (src/push/provider.ts).
	/** Expo Push API base (…/send, …/getReceipts); "" turns Expo off. */
	EXPO_PUSH_URL?: string;
	EXPO_ACCESS_TOKEN?: string;
	/** APNs base; with Apple's production default, sandbox targets go to api.sandbox.push.apple.com. */
	APNS_BASE_URL?: string;
	/** The `.p8` key's PEM (PKCS #8). */
	APNS_KEY?: string;
	APNS_KEY_ID?: string;
	APNS_TEAM_ID?: string;
	FCM_BASE_URL?: string;
	FCM_TOKEN_URL?: string;
	/** The Google service-account JSON (project_id, private_key, client_email, private_key_id). */
	FCM_SERVICE_ACCOUNT?: string;
	/** base64url uncompressed P-256 point (65 bytes) / private scalar (32 bytes). */
	VAPID_PUBLIC_KEY?: string;
	VAPID_PRIVATE_KEY?: string;
	/** `mailto:…` or `https://…`: who the push services contact about this sender. */
	VAPID_SUBJECT?: string;
}

declare global {
	namespace Cloudflare {
		interface Env extends WorkerEnv {}
		interface GlobalProps {
			mainModule: typeof import("./index.ts");
			durableNamespaces: "SessionDO" | "GatewayDO" | "PushCredentialsDO";
		}
	}
}
