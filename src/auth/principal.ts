import type { AppContext } from "../http.ts";
import { apiError } from "../http.ts";
import { type MobileClaims, verifyMobileToken } from "./mobile-token.ts";
import { bearerToken, secretsEqual } from "./secrets.ts";

/**
 * Who is calling (DESIGN.md, "External contract"): the MyndLens pipeline with SERVICE_TOKEN, an
 * operator with ADMIN_TOKEN, or a phone with a mobile token scoped to one session. Missing or
 * unknown credentials are 401; a valid credential used where it has no right is 403.
 */
export type Principal = { kind: "service" } | { kind: "admin" } | { kind: "mobile"; claims: MobileClaims };

/** A refusal carries its error code too, so a WebSocket upgrade can turn it into a close reason. */
export type Identified =
	| { ok: true; principal: Principal }
	| { ok: false; code: "not_configured" | "unauthorized" | "token_expired"; response: Response };

export async function identify(c: AppContext, token: string | null): Promise<Identified> {
	const { SERVICE_TOKEN, ADMIN_TOKEN, SESSION_TOKEN_SECRET } = c.env;
	if (!SERVICE_TOKEN && !ADMIN_TOKEN && !SESSION_TOKEN_SECRET) {
		return { ok: false, code: "not_configured", response: notConfigured(c, "authentication") };
	}
	if (!token) {
		return {
			ok: false,
			code: "unauthorized",
			response: apiError(c, 401, "unauthorized", "Send a bearer token in the Authorization header."),
		};
	}
	// Both static tokens are always compared, so timing does not tell which one (if any) matched.
	const [isService, isAdmin] = await Promise.all([
		SERVICE_TOKEN ? secretsEqual(token, SERVICE_TOKEN) : false,
		ADMIN_TOKEN ? secretsEqual(token, ADMIN_TOKEN) : false,
	]);
	if (isService) return { ok: true, principal: { kind: "service" } };
	if (isAdmin) return { ok: true, principal: { kind: "admin" } };
	if (SESSION_TOKEN_SECRET && token.split(".").length === 3) {
		const verified = await verifyMobileToken(token, SESSION_TOKEN_SECRET);
		if (verified.ok) return { ok: true, principal: { kind: "mobile", claims: verified.claims } };
		if (verified.reason === "expired") {
			return {
				ok: false,
				code: "token_expired",
				response: apiError(c, 401, "token_expired", "The session token has expired."),
			};
		}
	}
	return {
		ok: false,
		code: "unauthorized",
		response: apiError(c, 401, "unauthorized", "The token is not valid."),
	};
}

export function fromHeader(c: AppContext): string | null {
	return bearerToken(c.req.header("Authorization"));
}

export function forbidden(c: AppContext, message = "This token may not do that."): Response {
	return apiError(c, 403, "forbidden", message);
}

export function notConfigured(c: AppContext, what: string): Response {
	console.error(JSON.stringify({ msg: "route refused: missing configuration", what }));
	return apiError(c, 503, "not_configured", `This service is not configured for ${what} yet.`);
}

/**
 * A mobile principal may only touch its own session (`sid`). Whether its user and tenant may watch
 * that session is the Session DO's to say (session/owner.ts): the session is bound to its first user.
 */
export function mobileMaySee(principal: Principal, sessionId: string): boolean {
	return principal.kind === "mobile" && principal.claims.sid === sessionId;
}
