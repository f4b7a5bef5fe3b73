/**
 * The session socket's address (README, "API"): `/api/sessions/:id/ws[?since=N]` on the service's
 * origin. The mobile token never goes in the URL (URLs end up in logs): it travels as the subprotocol
 * `bearer.<token>` beside `myndlens.v1` (DESIGN.md, "External contract").
 *
 * Built from strings, not with `URL`: React Native's `URL` leaves most setters unimplemented.
 */
export function sessionSocketUrl(baseUrl: string, sessionId: string, since: number | null): string {
	const origin = /^(https?|wss?):\/\/([^/?#\s]+)/i.exec(baseUrl.trim());
	if (!origin?.[1] || !origin[2]) {
		throw new TypeError(`baseUrl must start with http(s):// or ws(s)://, not ${JSON.stringify(baseUrl)}`);
	}
	const scheme = origin[1].toLowerCase();
	const secure = scheme === "https" || scheme === "wss";
	const url = `${secure ? "wss" : "ws"}://${origin[2]}/api/sessions/${encodeURIComponent(sessionId)}/ws`;
	return since === null ? url : `${url}?since=${since}`;
}

/** The subprotocols a client offers: the protocol itself, and the token beside it. */
export const SUBPROTOCOL = "myndlens.v1";
/** The prefix of the subprotocol that carries the token. */
export const BEARER_PREFIX = "bearer.";
export function sessionSocketProtocols(token: string): string[] {
	return [SUBPROTOCOL, `${BEARER_PREFIX}${token}`];
}
