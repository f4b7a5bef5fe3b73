import { z } from "zod";

/**
 * ObeGee's wire formats as `seed-spec.md` states them, written for the simulator alone: it imports
 * nothing from `src/`, so a Worker that drifts from the seed fails against it instead of agreeing with
 * itself. Where the seed is silent, the choice is the simulator's and sim/README.md lists it.
 */

/**
 * `POST /api/myndlens/dispatch/mandate`: the seed's six fields. `mandate_id`, `tenant_id` and `intent`
 * are required (the seed's flow needs all three); `dimensions` (`{...}`), `generated_skills` (`[...]`)
 * and `delivery_channels` (`["email"]`) may be absent, and their contents are free-form as the seed
 * leaves them. Unknown top-level fields are REFUSED (400 `invalid_request`): the seed lists the body
 * exactly, so anything else the Worker sends (a leaked `session_id`, a renamed field) fails a test
 * here rather than being dropped silently. `null` is no value for any of them.
 */
export const DispatchRequest = z.strictObject({
	mandate_id: z.string().min(1),
	tenant_id: z.string().min(1),
	intent: z.string().min(1),
	dimensions: z.record(z.string(), z.unknown()).optional(),
	generated_skills: z.array(z.unknown()).optional(),
	delivery_channels: z.array(z.string()).optional(),
});
export type DispatchRequest = z.infer<typeof DispatchRequest>;

/** The seed's immediate answer to a dispatch. */
export interface DispatchResponse {
	execution_id: string;
	status: "QUEUED";
}

export type TerminalStatus = "COMPLETED" | "FAILED";

/**
 * The delivery webhook body, exactly the seed's five fields (`execution_id`, `status`, `delivered_to`,
 * `summary`, `completed_at`). The seed shows only a COMPLETED one; a FAILED one carries the same fields
 * (no recipients, and the reason in `summary`) — never an `error` field the seed does not have.
 */
export const WebhookBody = z.strictObject({
	execution_id: z.string().min(1),
	status: z.enum(["COMPLETED", "FAILED"]),
	delivered_to: z.array(z.string()),
	summary: z.string(),
	completed_at: z.iso.datetime(),
});
export type WebhookBody = z.infer<typeof WebhookBody>;

/**
 * `GET /api/myndlens/dispatch/status/:id`: `QUEUED` or `EXECUTING` while it runs (the seed names
 * EXECUTING), then the webhook's body.
 */
export const StatusBody = z.union([
	z.strictObject({ execution_id: z.string().min(1), status: z.enum(["QUEUED", "EXECUTING"]) }),
	WebhookBody,
]);
export type StatusBody = z.infer<typeof StatusBody>;

/**
 * Every refusal: `{"error":{"code","message"}}`. The seed shows no error body at all; this shape is
 * the simulator's (and the project's) convention, not ObeGee's documented one.
 */
export interface ErrorBody {
	error: { code: string; message: string };
}
