import { z } from "zod";

/** Identifiers from outside (sessions, mandates, executions, tenants): short, printable, URL-safe. */
export const Identifier = z
	.string()
	.min(1)
	.max(128)
	.regex(/^[A-Za-z0-9_.:-]+$/, "may only contain letters, digits, '_', '-', '.' and ':'");

export const IsoTimestamp = z.string().max(64);

/** Every error body the service returns: `{"error":{"code","message"}}` (DESIGN.md). */
export const ErrorBody = z.object({
	error: z.object({ code: z.string(), message: z.string() }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;
