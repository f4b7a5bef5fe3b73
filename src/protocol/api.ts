import { z } from "zod";
import { STAGE_STATUSES } from "../pipeline/stages.ts";
import { Identifier } from "./common.ts";

/** Bodies accepted by the HTTP API (DESIGN.md, "External contract"). Every string and array is bounded. */

export const StageReport = z.strictObject({
	mandate_id: Identifier,
	stage: z.number().int().min(1).max(5),
	status: z.enum(STAGE_STATUSES),
	message: z.string().max(500).optional(),
});
export type StageReport = z.infer<typeof StageReport>;

/** The seed's mandate body, as ObeGee's dispatch endpoint takes it. */
export const Mandate = z.object({
	mandate_id: Identifier,
	tenant_id: Identifier,
	intent: z.string().min(1).max(2000),
	dimensions: z.record(z.string().max(128), z.unknown()).optional(),
	generated_skills: z.array(z.unknown()).max(50).optional(),
	delivery_channels: z.array(z.string().min(1).max(64)).max(10).optional(),
});
export type Mandate = z.infer<typeof Mandate>;

/** `POST /api/mandate/execute`: the seed's mandate plus the session whose phones watch it. */
export const ExecuteRequest = Mandate.extend({ session_id: Identifier });
export type ExecuteRequest = z.infer<typeof ExecuteRequest>;

export const ExecuteResponse = z.object({ execution_id: z.string(), status: z.string() });
export type ExecuteResponse = z.infer<typeof ExecuteResponse>;

export const ResumeQuery = z.object({
	since: z.coerce.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});
