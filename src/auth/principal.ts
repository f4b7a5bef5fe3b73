import type { AppContext } from "../http.ts";
import { apiError } from "../http.ts";
import { log } from "../log.ts";
import { type MobileClaims, verifyMobileToken } from "./mobile-token.ts";
import { secretValues } from "./secret-values.ts";
import { bearerToken, matchSecrets } from "./secrets.ts";

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

/** The setting each kind of caller is checked against (DESIGN.md, "Configuration"). */
const SETTING = {
	service: "SERVICE_TOKEN",
	admin: "ADMIN_TOKEN",
	mobile: "SESSION_TOKEN_SECRET",
} as const satisfies Record<Principal["kind"], string>;

export type PrincipalKind = Principal["kind"];

/**
 * Who holds `token`, for a route that `accepts` these kinds of caller. A route none of whose
 * settings is set answers 503 `not_configured` and logs the missing settings by name; so does a
 * credential that matches nothing while one of them is missing (the caller may hold a credential
 * this service cannot check) — an operator who forgot a secret sees 503, never a silent 401.
 * Each setting may hold several space-separated values during a rotation (DESIGN.md, "Operations"):
 * any of them is accepted; a setting that is empty after splitting counts as missing.
 */
export async function identify(
	c: AppContext,
	token: string | null,
	accepts: readonly PrincipalKind[] = ["service", "admin", "mobile"],
): Promise<Identified> {
	const { SERVICE_TOKEN, ADMIN_TOKEN, SESSION_TOKEN_SECRET } = c.env;
	const missing = accepts
		.filter((kind) => secretValues(c.env[SETTING[kind]]).length === 0)
		.map((kind) => SETTING[kind]);
	const unconfigured = (): Identified => ({
		ok: false,
		code: "not_configured",
		response: notConfigured(c, "authentication", missing),
	});
	if (missing.length === accepts.length) return unconfigured();
	if (!token) {
		return {
			ok: false,
			code: "unauthorized",
			response: apiError(c, 401, "unauthorized", "Send a bearer token in the Authorization header."),
		};
	}
	// Every value of both static tokens is always compared, in constant time, so timing does not
	// tell which one (if any) matched.
	const [isService, isAdmin] = await matchSecrets(token, [SERVICE_TOKEN, ADMIN_TOKEN]);
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
	if (missing.length > 0) return unconfigured();
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

/** 503 for a route whose settings are missing; the log line names them (never their values). */
export function notConfigured(c: AppContext, what: string, settings: readonly string[]): Response {
	log("error", "route refused: missing configuration", { what, missing: settings, path: c.req.path });
	return apiError(c, 503, "not_configured", `This service is not configured for ${what} yet.`);
}

/**
 * A mobile principal may only touch its own session (`sid`). Whether its user and tenant may watch
 * that session is the Session DO's to say (session/owner.ts): the session is bound to its first user.
 */
export function mobileMaySee(principal: Principal, sessionId: string): boolean {
	return principal.kind === "mobile" && principal.claims.sid === sessionId;
}

/** The ObeGee settings a dispatch needs that are missing (by name). */
export function obegeeSettingsMissing(env: {
	OBEGEE_API_TOKEN?: string;
	OBEGEE_BASE_URL?: string;
}): string[] {
	return (["OBEGEE_API_TOKEN", "OBEGEE_BASE_URL"] as const).filter((name) => !env[name]);
}
