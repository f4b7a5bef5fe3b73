import { Hono } from "hono";
import { forbidden, fromHeader, identify, mobileMaySee } from "../auth/principal.ts";
import { bearerToken } from "../auth/secrets.ts";
import { type AppEnv, apiError, limitBody, readJson, validate } from "../http.ts";
import { ResumeQuery, StageReport } from "../protocol/api.ts";
import { Identifier } from "../protocol/common.ts";
import { rpcResponse, sessionStub } from "./rpc.ts";

/** Phones' live socket, the pipeline's stage reports and the progress snapshot of one session. */
export const sessions = new Hono<AppEnv>();

sessions.get("/:sessionId/ws", async (c) => {
	if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
		return apiError(c, 426, "upgrade_required", "Connect with a WebSocket upgrade.");
	}
	const sessionId = validate(c, Identifier, c.req.param("sessionId"));
	if (!sessionId.ok) return sessionId.response;
	const query = validate(c, ResumeQuery, { since: c.req.query("since") });
	if (!query.ok) return query.response;
	// Browsers cannot set headers on a WebSocket, so the token may also come as ?token=.
	const token = bearerToken(c.req.header("Authorization")) ?? c.req.query("token") ?? null;
	// Refused here, before any Durable Object is woken (issue 4).
	const who = await identify(c, token);
	if (!who.ok) return who.response;
	if (!mobileMaySee(who.principal, sessionId.value))
		return forbidden(c, "This token is not for this session.");

	const headers = new Headers({
		Upgrade: "websocket",
		"X-Session-Id": sessionId.value,
		"X-Subject": who.principal.kind === "mobile" ? who.principal.claims.sub : "",
	});
	if (query.value.since !== undefined) headers.set("X-Resume-Since", String(query.value.since));
	return sessionStub(c, sessionId.value).fetch("https://session/ws", { headers });
});

sessions.post("/:sessionId/stages", limitBody(8 * 1024), async (c) => {
	const sessionId = validate(c, Identifier, c.req.param("sessionId"));
	if (!sessionId.ok) return sessionId.response;
	const who = await identify(c, fromHeader(c));
	if (!who.ok) return who.response;
	if (who.principal.kind !== "service") return forbidden(c, "Only the MyndLens pipeline reports stages.");
	const report = await readJson(c, StageReport);
	if (!report.ok) return report.response;
	return rpcResponse(c, await sessionStub(c, sessionId.value).reportStage(sessionId.value, report.value));
});

sessions.get("/:sessionId/progress", async (c) => {
	const sessionId = validate(c, Identifier, c.req.param("sessionId"));
	if (!sessionId.ok) return sessionId.response;
	const who = await identify(c, fromHeader(c));
	if (!who.ok) return who.response;
	if (who.principal.kind !== "service" && !mobileMaySee(who.principal, sessionId.value)) {
		return forbidden(c, "This token is not for this session.");
	}
	return c.json(await sessionStub(c, sessionId.value).progress(sessionId.value));
});
