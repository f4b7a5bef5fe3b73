import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type * as z from "zod/mini";
import type { Env } from "./env.ts";

/** The Hono environment every route shares. */
export type AppEnv = { Bindings: Env };
export type AppContext = Context<AppEnv>;

/** Every error the API returns: `{"error":{"code","message"}}` (DESIGN.md, "External contract"). */
export function apiError(
	c: AppContext,
	status: ContentfulStatusCode,
	code: string,
	message: string,
): Response {
	return c.json({ error: { code, message } }, status);
}

/** Bodies larger than this are refused before they are read (413). */
export function limitBody(maxSize: number) {
	return bodyLimit({
		maxSize,
		onError: (c) =>
			c.json(
				{ error: { code: "body_too_large", message: `The body may be at most ${maxSize} bytes.` } },
				413,
			),
	});
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; response: Response };

/** Parses a JSON body with a zod schema; a bad one gets a 400 that says what is wrong. */
export async function readJson<T>(c: AppContext, schema: z.ZodMiniType<T>): Promise<Parsed<T>> {
	let raw: unknown;
	try {
		raw = JSON.parse(await c.req.text());
	} catch {
		return { ok: false, response: apiError(c, 400, "invalid_json", "The body must be valid JSON.") };
	}
	return validate(c, schema, raw);
}

export function validate<T>(c: AppContext, schema: z.ZodMiniType<T>, raw: unknown): Parsed<T> {
	const result = schema.safeParse(raw);
	if (result.success) return { ok: true, value: result.data };
	const problems = result.error.issues
		.slice(0, 5)
		.map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "body"}: ${issue.message}`)
		.join("; ");
	return { ok: false, response: apiError(c, 400, "invalid_request", problems) };
}
