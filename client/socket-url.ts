/**
 * The session socket's address (README, "API"): `/api/sessions/:id/ws?token=…[&since=N]`. Browsers
 * cannot set headers on a WebSocket, so the mobile token travels as `?token=`.
 */
export function sessionSocketUrl(
	baseUrl: string,
	sessionId: string,
	token: string,
	since: number | null,
): string {
	const url = new URL(`/api/sessions/${encodeURIComponent(sessionId)}/ws`, baseUrl);
	url.protocol = url.protocol === "https:" || url.protocol === "wss:" ? "wss:" : "ws:";
	url.searchParams.set("token", token);
	if (since !== null) url.searchParams.set("since", String(since));
	return url.toString();
}
