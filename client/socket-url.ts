/**
 * The session socket's address (README, "API"): `/api/sessions/:id/ws[?since=N]`. The mobile token
 * never goes in the URL (URLs end up in logs): it travels as the subprotocol `bearer.<token>` beside
 * `myndlens.v1` (DESIGN.md, "External contract").
 */
export function sessionSocketUrl(baseUrl: string, sessionId: string, since: number | null): string {
	const url = new URL(`/api/sessions/${encodeURIComponent(sessionId)}/ws`, baseUrl);
	url.protocol = url.protocol === "https:" || url.protocol === "wss:" ? "wss:" : "ws:";
	if (since !== null) url.searchParams.set("since", String(since));
	return url.toString();
}

/** The subprotocols a client offers: the protocol itself, and the token beside it. */
export const SUBPROTOCOL = "myndlens.v1";
export function sessionSocketProtocols(token: string): string[] {
	return [SUBPROTOCOL, `bearer.${token}`];
}
