import { Hono } from "hono";
import * as z from "zod/mini";
import { MAX_TOKEN_LIFETIME_SECONDS, mintMobileToken } from "../auth/mobile-token.ts";
import { forbidden, fromHeader, identify, notConfigured } from "../auth/principal.ts";
import { currentSecret } from "../auth/secret-values.ts";
import { type AppEnv, limitBody, readJson, validate } from "../http.ts";
import { Identifier } from "../protocol/common.ts";

/**
 * `POST /api/sessions/:sessionId/tokens` (DESIGN.md, "Operations"; issue 12): the MyndLens pipeline
 * asks for a phone's mobile token instead of signing JWTs itself. Only SERVICE_TOKEN may ask (a
 * phone or an operator gets 403); the token is signed with the first SESSION_TOKEN_SECRET, scoped
 * to this session, and lives `ttl_seconds` (15 min by default, at most 24 h — the longest a mobile
 * token may live). The answer is never cached (Cache-Control: no-store on the API) nor logged.
 *
 * Minting binds nothing: the session is bound to its first user when a token first opens it
 * (session/owner.ts), so a token minted for another `sub` of an owned session is refused there.
 */
export const tokens = new Hono<AppEnv>();

export const DEFAULT_MINTED_TTL_SECONDS = 15 * 60;
export const MIN_MINTED_TTL_SECONDS = 60;

export const TokenRequest = z.strictObject({
	sub: Identifier,
	tenant_id: z.optional(Identifier),
	ttl_seconds: z.optional(
		z
			.int()
			.check(
				z.gte(MIN_MINTED_TTL_SECONDS, `must be at least ${MIN_MINTED_TTL_SECONDS}`),
				z.lte(MAX_TOKEN_LIFETIME_SECONDS, `must be at most ${MAX_TOKEN_LIFETIME_SECONDS} (24 h)`),
			),
	),
});
export type TokenRequest = z.infer<typeof TokenRequest>;

tokens.post("/:sessionId/tokens", limitBody(4 * 1024), async (c) => {
	const sessionId = validate(c, Identifier, c.req.param("sessionId"));
	if (!sessionId.ok) return sessionId.response;
	const who = await identify(c, fromHeader(c), ["service"]);
	if (!who.ok) return who.response;
	if (who.principal.kind !== "service") return forbidden(c, "Only the MyndLens pipeline mints phone tokens.");
	const body = await readJson(c, TokenRequest);
	if (!body.ok) return body.response;
	const secret = currentSecret(c.env.SESSION_TOKEN_SECRET);
	if (!secret) return notConfigured(c, "phone tokens", ["SESSION_TOKEN_SECRET"]);
	const issuedAt = Math.floor(Date.now() / 1000);
	const expiresAt = issuedAt + (body.value.ttl_seconds ?? DEFAULT_MINTED_TTL_SECONDS);
	const token = await mintMobileToken(secret, {
		sid: sessionId.value,
		sub: body.value.sub,
		tenantId: body.value.tenant_id,
		issuedAt,
		expiresAt,
	});
	return c.json({ token, expires_at: new Date(expiresAt * 1000).toISOString() }, 201);
});
