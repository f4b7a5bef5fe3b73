import * as z from "zod/mini";
import { Identifier, IsoTimestamp, text } from "./common.ts";

/**
 * ObeGee's wire formats (seed-spec.md): the dispatch response, the status response and the
 * delivery webhook body. Shared by the ObeGee client, the webhook route and the simulator.
 */

export const DispatchResponse = z.object({
	execution_id: Identifier,
	status: text(32, 1),
});
export type DispatchResponse = z.infer<typeof DispatchResponse>;

/** ObeGee's own outcomes. Statuses it may add later are treated as "still running". */
export const TERMINAL_STATUSES = ["COMPLETED", "FAILED"] as const;
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];
export function isTerminalStatus(status: string): status is TerminalStatus {
	return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

const DeliveredTo = z.array(text(64)).check(z.maxLength(20));

export const ExecutionStatus = z.object({
	execution_id: z.optional(Identifier),
	status: text(32, 1),
	summary: z.nullish(text(4000)),
	error: z.nullish(text(2000)),
	delivered_to: z.nullish(DeliveredTo),
	completed_at: z.nullish(IsoTimestamp),
});
export type ExecutionStatus = z.infer<typeof ExecutionStatus>;

/** `POST /api/dispatch/delivery-webhook` body, signed with Standard Webhooks. */
export const DeliveryWebhook = z.object({
	execution_id: Identifier,
	status: text(32, 1),
	delivered_to: z.optional(DeliveredTo),
	summary: z.optional(text(4000)),
	error: z.optional(text(2000)),
	completed_at: z.optional(IsoTimestamp),
});
export type DeliveryWebhook = z.infer<typeof DeliveryWebhook>;

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
	/** ObeGee answered 4xx: it refused this request and will refuse it again. */
	| { kind: "rejected"; httpStatus: number; code: string | null; detail: string | null }
	/** ObeGee refused our credentials (401/403): an operator must fix the configuration. */
	| { kind: "unauthorized"; httpStatus: number }
	/** Network error, timeout, 5xx or 429: worth retrying later. */
	| { kind: "unavailable"; httpStatus: number | null; detail: string }
	/** ObeGee answered 2xx with a body we cannot read. */
	| { kind: "bad_response"; detail: string };
