import type { GatewayDO } from "./openclaw/gateway-do.ts";
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
	DB: D1Database;
	OBEGEE_BASE_URL: string;
	OBEGEE_API_TOKEN?: string;
	WEBHOOK_SECRET?: string;
	SESSION_TOKEN_SECRET?: string;
	SERVICE_TOKEN?: string;
	ADMIN_TOKEN?: string;
	POLL_INTERVAL_MS?: string;
	EXECUTION_TIMEOUT_MS?: string;
	OPENCLAW_GATEWAY_URL?: string;
	OPENCLAW_GATEWAY_TOKEN?: string;
	/** Web origins (comma-separated) allowed to call the API from a browser; same-origin needs none. */
	ALLOWED_ORIGINS?: string;
	/** "true" logs per-session work counters (one JSON line per flush and alarm); the benchmark reads them. */
	METRICS_LOG?: string;
	/** "true" only in local configs (npm start, the browser test): enables src/routes/demo.ts. */
	DEMO_ROUTES?: string;
}

declare global {
	namespace Cloudflare {
		interface Env extends WorkerEnv {}
		interface GlobalProps {
			mainModule: typeof import("./index.ts");
			durableNamespaces: "SessionDO" | "GatewayDO";
		}
	}
}
