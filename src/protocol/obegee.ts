import * as z from "zod/mini";
import { Identifier, text } from "./common.ts";

/**
 * ObeGee's wire formats (seed-spec.md): the dispatch response, the status response and the
 * delivery webhook body. Shared by the ObeGee client, the webhook route and the simulator.
 *
 * The status response and the webhook are read by ONE parser (issue 16), strict about what decides
 * the outcome and generous about what is only displayed:
 * - strict: `status` (a non-blank word of at most 32 characters, matched case-insensitively: it is
 *   upper-cased here) and `execution_id` (an identifier; required in a webhook, and the poll checks
 *   that it names the execution it asked about). A body that fails these is a bad answer.
 * - generous: `summary`, `error`, `delivered_to` and `completed_at` may be absent, `null` or of the
 *   wrong type (then they count as absent); a long summary is cut to MAX_SUMMARY_CHARS and ends with
 *   TRUNCATION_MARK; recipients beyond MAX_RECIPIENTS are dropped (their number is kept) and each is cut
 *   to MAX_RECIPIENT_CHARS (an email address may be 254 characters); `completed_at` sent as a number
 *   (epoch seconds or milliseconds) becomes an ISO string; ObeGee's `error` is cut to MAX_ERROR_CHARS
 *   (it is kept for the audit only and never shown). `clamped` names every field that was changed.
 */

export const DispatchResponse = z.object({
	execution_id: Identifier,
	status: text(32, 1),
});
export type DispatchResponse = z.infer<typeof DispatchResponse>;

/** ObeGee's own outcomes (upper-cased). Statuses it may add later are treated as "still running". */
export const TERMINAL_STATUSES = ["COMPLETED", "FAILED", "CANCELLED", "REJECTED"] as const;
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];
export function isTerminalStatus(status: string): status is TerminalStatus {
	return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

export const MAX_SUMMARY_CHARS = 4000;
export const MAX_ERROR_CHARS = 2000;
export const MAX_RECIPIENTS = 20;
export const MAX_RECIPIENT_CHARS = 254;
export const MAX_TIMESTAMP_CHARS = 64;
/** Ends a display field that was cut to its bound. */
export const TRUNCATION_MARK = "…";

/** A status or webhook body as ObeGee sends it (the simulator builds these). */
export interface ExecutionStatusBody {
	execution_id?: string | null;
	status: string;
	summary?: string | null;
	error?: string | null;
	delivered_to?: string[] | null;
	completed_at?: string | number | null;
}
export interface DeliveryWebhookBody extends ExecutionStatusBody {
	execution_id: string;
}

/** An ObeGee answer about an execution, as the service reads it (poll and webhook alike). */
export interface ExecutionAnswer {
	execution_id: string | null;
	/** Upper-cased: `completed` and `COMPLETED` are the same status. */
	status: string;
	summary: string | null;
	/** ObeGee's own failure text, bounded: for the audit only, never for the phone. */
	error: string | null;
	/** At most MAX_RECIPIENTS, each at most MAX_RECIPIENT_CHARS. */
	delivered_to: string[];
	/** How many recipients ObeGee named (may exceed `delivered_to.length`). */
	delivered_to_count: number;
	/** When ObeGee says the execution ended, as ObeGee said it (bounded); never our own clock. */
	completed_at: string | null;
	/** The display fields that were cut, dropped or converted to be read. */
	clamped: string[];
}

/** Cuts a string to `max` characters, the last of them the truncation mark. */
export function clampText(value: string, max: number): string {
	if (value.length <= max) return value;
	return `${value.slice(0, Math.max(0, max - TRUNCATION_MARK.length))}${TRUNCATION_MARK}`;
}

const Status = z.string().check(z.maxLength(32), z.regex(/\S/, "must not be blank"));
const Display = z.optional(z.unknown());

function readAnswer(raw: {
	execution_id?: string | null;
	status: string;
	summary?: unknown;
	error?: unknown;
	delivered_to?: unknown;
	completed_at?: unknown;
}): ExecutionAnswer {
	const clamped: string[] = [];
	const note = (field: string) => clamped.includes(field) || clamped.push(field);
	const boundedString = (field: string, value: unknown, max: number): string | null => {
		if (value === undefined || value === null) return null;
		if (typeof value !== "string") {
			note(field);
			return null;
		}
		if (value.length > max) note(field);
		return clampText(value, max);
	};
	let deliveredTo: string[] = [];
	let count = 0;
	if (Array.isArray(raw.delivered_to)) {
		const names = raw.delivered_to.filter((name): name is string => typeof name === "string");
		if (names.length !== raw.delivered_to.length) note("delivered_to");
		count = names.length;
		if (names.length > MAX_RECIPIENTS) note("delivered_to");
		deliveredTo = names.slice(0, MAX_RECIPIENTS).map((name) => {
			if (name.length > MAX_RECIPIENT_CHARS) note("delivered_to");
			return clampText(name, MAX_RECIPIENT_CHARS);
		});
	} else if (raw.delivered_to !== undefined && raw.delivered_to !== null) {
		note("delivered_to");
	}
	let completedAt: string | null;
	if (typeof raw.completed_at === "number") {
		completedAt = epochToIso(raw.completed_at);
		note("completed_at");
	} else {
		completedAt = boundedString("completed_at", raw.completed_at, MAX_TIMESTAMP_CHARS);
	}
	return {
		execution_id: raw.execution_id ?? null,
		status: normalizeStatus(raw.status),
		summary: boundedString("summary", raw.summary, MAX_SUMMARY_CHARS),
		error: boundedString("error", raw.error, MAX_ERROR_CHARS),
		delivered_to: deliveredTo,
		delivered_to_count: count,
		completed_at: completedAt,
		clamped,
	};
}

function normalizeStatus(status: string): string {
	const upper = status.trim().toUpperCase();
	return upper === "CANCELED" ? "CANCELLED" : upper;
}

/** Epoch seconds (below 10^11) or milliseconds as an ISO string; null when it is no real time. */
function epochToIso(value: number): string | null {
	if (!Number.isFinite(value) || value < 0) return null;
	const ms = value < 1e11 ? value * 1000 : value;
	const date = new Date(ms);
	return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** `GET /api/myndlens/dispatch/status/:id`: the answer the poll reads. */
export const ExecutionStatus = z.pipe(
	z.object({
		execution_id: z.nullish(Identifier),
		status: Status,
		summary: Display,
		error: Display,
		delivered_to: Display,
		completed_at: Display,
	}),
	z.transform(readAnswer),
);
export type ExecutionStatus = ExecutionAnswer;

/** `POST /api/dispatch/delivery-webhook` body, signed with Standard Webhooks: the same reading. */
export const DeliveryWebhook = z.pipe(
	z.object({
		execution_id: Identifier,
		status: Status,
		summary: Display,
		error: Display,
		delivered_to: Display,
		completed_at: Display,
	}),
	z.transform((raw) => ({ ...readAnswer(raw), execution_id: raw.execution_id })),
);
export type DeliveryWebhook = ExecutionAnswer & { execution_id: string };

/** What ObeGee says when it rejects a request (best effort: any JSON shape is tolerated). */
export const ObeGeeErrorBody = z.partial(
	z.object({
		error: z.union([z.string(), z.object({ code: z.optional(z.string()), message: z.optional(z.string()) })]),
		detail: z.string(),
		message: z.string(),
	}),
);

/** How a call to ObeGee failed, as the service classifies it (the ObeGee client makes these). */
export type ObeGeeError =
	/** ObeGee answered 4xx: it refused this request and will refuse it again. Texts are bounded. */
	| { kind: "rejected"; httpStatus: number; code: string | null; detail: string | null }
	/** ObeGee refused our credentials (401/403): an operator must fix the configuration. */
	| { kind: "unauthorized"; httpStatus: number }
	/**
	 * Network error, timeout, 5xx, 408, 409 (still processing the same Idempotency-Key) or 429: worth
	 * retrying later; `retryAfterMs` is ObeGee's `Retry-After`, when it sent one.
	 */
	| { kind: "unavailable"; httpStatus: number | null; detail: string; retryAfterMs?: number | null }
	/** ObeGee answered 2xx with a body we cannot read (malformed, too large, about another execution). */
	| { kind: "bad_response"; detail: string };
