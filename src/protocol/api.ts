import * as z from "zod/mini";
import { withinFreeFormLimits } from "./bounded-json.ts";
import { Identifier, text } from "./common.ts";
import { STAGE_STATUSES } from "./stages.ts";

/** Bodies accepted by the HTTP API (DESIGN.md, "External contract"). Every string and array is bounded. */

export const StageReport = z.strictObject({
	mandate_id: Identifier,
	stage: z.int().check(z.gte(1), z.lte(5)),
	status: z.enum(STAGE_STATUSES),
	message: z.optional(text(500)),
});
export type StageReport = z.infer<typeof StageReport>;

/** The seed's mandate body, as ObeGee's dispatch endpoint takes it. */
export const Mandate = z.object({
	mandate_id: Identifier,
	tenant_id: Identifier,
	intent: text(2000, 1),
	// Free-form, passed on to ObeGee as they came: bounded in depth, values and string length.
	dimensions: z.optional(z.record(text(128), z.unknown()).check(withinFreeFormLimits())),
	generated_skills: z.optional(z.array(z.unknown()).check(z.maxLength(50), withinFreeFormLimits())),
	delivery_channels: z.optional(z.array(text(64, 1)).check(z.maxLength(10))),
});
export type Mandate = z.infer<typeof Mandate>;

/** `POST /api/mandate/execute`: the seed's mandate plus the session whose phones watch it. */
export const ExecuteRequest = z.extend(Mandate, { session_id: Identifier });
export type ExecuteRequest = z.infer<typeof ExecuteRequest>;

export const ExecuteResponse = z.object({ execution_id: z.string(), status: z.string() });
export type ExecuteResponse = z.infer<typeof ExecuteResponse>;

export const ResumeQuery = z.object({
	since: z.optional(z.coerce.number().check(z.int(), z.gte(0), z.lte(Number.MAX_SAFE_INTEGER))),
});
