import { z } from "zod";
import { Identifier, IsoTimestamp } from "./common.ts";

/**
 * ObeGee's wire formats (seed-spec.md): the dispatch response, the status response and the
 * delivery webhook body. Shared by the ObeGee client, the webhook route and the simulator.
 */

export const DispatchResponse = z.object({
	execution_id: Identifier,
	status: z.string().min(1).max(32),
});
export type DispatchResponse = z.infer<typeof DispatchResponse>;

/** ObeGee's own outcomes. Statuses it may add later are treated as "still running". */
export const TERMINAL_STATUSES = ["COMPLETED", "FAILED"] as const;
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];
export function isTerminalStatus(status: string): status is TerminalStatus {
	return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

export const ExecutionStatus = z.object({
	execution_id: Identifier.optional(),
	status: z.string().min(1).max(32),
	summary: z.string().max(4000).nullish(),
	error: z.string().max(2000).nullish(),
	delivered_to: z.array(z.string().max(64)).max(20).nullish(),
	completed_at: IsoTimestamp.nullish(),
});
export type ExecutionStatus = z.infer<typeof ExecutionStatus>;

/** `POST /api/dispatch/delivery-webhook` body, signed with Standard Webhooks. */
export const DeliveryWebhook = z.object({
	execution_id: Identifier,
	status: z.string().min(1).max(32),
	delivered_to: z.array(z.string().max(64)).max(20).optional(),
	summary: z.string().max(4000).optional(),
	error: z.string().max(2000).optional(),
	completed_at: IsoTimestamp.optional(),
});
export type DeliveryWebhook = z.infer<typeof DeliveryWebhook>;

/** What ObeGee says when it rejects a request (best effort: any JSON shape is tolerated). */
export const ObeGeeErrorBody = z
	.object({
		error: z.union([z.string(), z.object({ code: z.string().optional(), message: z.string().optional() })]),
		detail: z.string().optional(),
		message: z.string().optional(),
	})
	.partial();
