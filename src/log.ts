import { AsyncLocalStorage } from "node:async_hooks";

/**
 * One JSON object per log line (issue 12, "Correlation"): `level`, `msg`, the request id of the Worker
 * request it belongs to (`X-Request-Id`, from `cf-ray` when Cloudflare sets it), and where known the
 * session, mandate and execution ids and tenant — never a token. An on-call engineer finds everything
 * about a mandate with `wrangler tail --format json --search <mandate_id>` (README, "Operations").
 *
 * Durable Objects run outside the Worker's request, so their lines carry the ids they know (the
 * Session DO adds its session id) instead of the request id.
 */

export interface LogFields {
	request_id?: string;
	session_id?: string | null;
	mandate_id?: string | null;
	execution_id?: string | null;
	tenant_id?: string | null;
	[field: string]: unknown;
}

type Level = "info" | "warn" | "error";

const requestContext = new AsyncLocalStorage<LogFields>();

/** Field names that may hold a credential: never written, whatever a caller passes. */
const SECRET_FIELD = /token|secret|signature|authorization|password|cookie|private|^key$/i;

/** Runs `fn` with `fields` (the request id, ids from the path) added to every line it logs. */
export function withLogContext<T>(fields: LogFields, fn: () => T): T {
	return requestContext.run({ ...requestContext.getStore(), ...fields }, fn);
}

/** Adds fields to the current request's context (e.g. the session id once the route has read it). */
export function addLogContext(fields: LogFields): void {
	const store = requestContext.getStore();
	if (store) Object.assign(store, fields);
}

export function log(level: Level, msg: string, fields: LogFields = {}): void {
	const line: Record<string, unknown> = { level, msg };
	for (const [name, value] of Object.entries({ ...requestContext.getStore(), ...fields })) {
		if (value === undefined || SECRET_FIELD.test(name)) continue;
		line[name] = value;
	}
	const text = JSON.stringify(line);
	if (level === "error") console.error(text);
	else if (level === "warn") console.warn(text);
	else console.log(text);
}
