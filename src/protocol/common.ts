import * as z from "zod/mini";

/*
 * Schemas use `zod/mini`: the same validation as classic zod, tree-shakeable, so the Worker bundles
 * ~20 KB of it instead of ~450 KB.
 */

/** Identifiers from outside (sessions, mandates, executions, tenants): short, printable, URL-safe. */
export const Identifier = z
	.string()
	.check(
		z.minLength(1),
		z.maxLength(128),
		z.regex(/^[A-Za-z0-9_.:-]+$/, "may only contain letters, digits, '_', '-', '.' and ':'"),
	);

export const IsoTimestamp = z.string().check(z.maxLength(64));

/** A bounded string: every string from outside has a length limit. */
export const text = (max: number, min = 0) => z.string().check(z.minLength(min), z.maxLength(max));

/** Every error body the service returns: `{"error":{"code","message"}}` (DESIGN.md). */
export const ErrorBody = z.object({
	error: z.object({ code: z.string(), message: z.string() }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;
