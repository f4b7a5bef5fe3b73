import { Hono } from "hono";
import { forbidden, fromHeader, identify, mobileMaySee, type Principal } from "../auth/principal.ts";
import { bearerToken } from "../auth/secrets.ts";
import { type AppEnv, apiError, limitBody, readJson, validate } from "../http.ts";
import { log } from "../log.ts";
import { ResumeQuery, StageReport } from "../protocol/api.ts";
import { CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED } from "../protocol/close-codes.ts";
import { Identifier } from "../protocol/common.ts";
import { LiveActivityRegistration } from "../protocol/devices.ts";
import { pushProviderStatus } from "../push/provider.ts";
import { refusedSocket } from "../session/sockets.ts";
import { rpcResponse, sessionStub } from "./rpc.ts";

/** Phones' live socket, the pipeline's stage reports and the progress snapshot of one session. */
export const sessions = new Hono<AppEnv>();

/** The subprotocol phones speak; the token travels beside it as `bearer.<token>` (DESIGN.md). */
export const SUBPROTOCOL = "myndlens.v1";
const BEARER_PROTOCOL = "bearer.";

sessions.get("/:sessionId/ws", async (c) => {
	if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
		return apiError(c, 426, "upgrade_required", "Connect with a WebSocket upgrade.");
	}
	const sessionId = validate(c, Identifier, c.req.param("sessionId"));
	if (!sessionId.ok) return sessionId.response;
	const query = validate(c, ResumeQuery, { since: c.req.query("since") });
	if (!query.ok) return query.response;
	const offered = (c.req.header("Sec-WebSocket-Protocol") ?? "")
		.split(",")
		.map((protocol) => protocol.trim())
		.filter(Boolean);
	// The token rides in the subprotocol so it never sits in a logged URL; the Authorization header
	// (native clients) and ?token= (old clients) are still accepted.
	const fromProtocol = offered.find((protocol) => protocol.startsWith(BEARER_PROTOCOL));
	const token =
		(fromProtocol ? fromProtocol.slice(BEARER_PROTOCOL.length) : null) ??
		bearerToken(c.req.header("Authorization")) ??
		c.req.query("token") ??
		null;
	// Only ever the plain subprotocol in the answer, never the offered bearer.<token>.
	const answer = offered.includes(SUBPROTOCOL) ? { "Sec-WebSocket-Protocol": SUBPROTOCOL } : undefined;

	// Refused here, before any Durable Object is woken: accepted and closed at once with a code the
	// client can read, since a browser or phone never sees the status of a refused upgrade (issue 14).
	const who = await identify(c, token, ["mobile"]);
	if (!who.ok) {
		return who.code === "not_configured" ? who.response : refusedSocket(CLOSE_UNAUTHORIZED, who.code, answer);
	}
	if (!mobileMaySee(who.principal, sessionId.value)) {
		return refusedSocket(CLOSE_FORBIDDEN, "token is not for this session", answer);
	}
	const { claims } = who.principal as Extract<Principal, { kind: "mobile" }>;
	const headers = new Headers({
		Upgrade: "websocket",
		"X-Session-Id": sessionId.value,
		"X-Subject": claims.sub,
		"X-Token-Expires-At": String(claims.exp * 1000),
	});
	if (claims.tenant_id) headers.set("X-Tenant", claims.tenant_id);
	if (query.value.since !== undefined) headers.set("X-Resume-Since", String(query.value.since));
	const response = await sessionStub(c, sessionId.value).fetch("https://session/ws", { headers });
	if (!answer || response.status !== 101) return response;
	return new Response(null, { status: 101, webSocket: response.webSocket, headers: answer });
});

sessions.post("/:sessionId/stages", limitBody(8 * 1024), async (c) => {
	const sessionId = validate(c, Identifier, c.req.param("sessionId"));
	if (!sessionId.ok) return sessionId.response;
	const who = await identify(c, fromHeader(c), ["service"]);
	if (!who.ok) return who.response;
	if (who.principal.kind !== "service") return forbidden(c, "Only the MyndLens pipeline reports stages.");
	const report = await readJson(c, StageReport);
	if (!report.ok) return report.response;
	return rpcResponse(c, await sessionStub(c, sessionId.value).reportStage(sessionId.value, report.value));
});

sessions.get("/:sessionId/progress", async (c) => {
	const sessionId = validate(c, Identifier, c.req.param("sessionId"));
	if (!sessionId.ok) return sessionId.response;
	const who = await identify(c, fromHeader(c), ["service", "mobile"]);
	if (!who.ok) return who.response;
	const { principal } = who;
	if (principal.kind !== "service" && !mobileMaySee(principal, sessionId.value)) {
		return forbidden(c, "This token is not for this session.");
	}
	const viewer =
		principal.kind === "mobile"
			? { sub: principal.claims.sub, tenantId: principal.claims.tenant_id ?? null }
			: null;
	return rpcResponse(c, await sessionStub(c, sessionId.value).progress(sessionId.value, viewer));
});

/**
 * The iOS Live Activity the app started for a mandate (issue 10, DESIGN.md "Push"): its push token, so
 * the lock screen follows the mandate's stages. Only a mobile token of this session, of its owner.
 */
sessions.put("/:sessionId/mandates/:mandateId/live-activity", limitBody(4 * 1024), async (c) => {
	const sessionId = validate(c, Identifier, c.req.param("sessionId"));
	if (!sessionId.ok) return sessionId.response;
	const mandateId = validate(c, Identifier, c.req.param("mandateId"));
	if (!mandateId.ok) return mandateId.response;
	const who = await identify(c, fromHeader(c), ["mobile"]);
	if (!who.ok) return who.response;
	const { principal } = who;
	if (principal.kind !== "mobile") return forbidden(c, "Only the app registers a Live Activity.");
	if (!mobileMaySee(principal, sessionId.value)) return forbidden(c, "This token is not for this session.");
	const body = await readJson(c, LiveActivityRegistration);
	if (!body.ok) return body.response;
	const apns = pushProviderStatus(c.env).apns;
	if (!apns.on) {
		log("warn", "push provider off", { kind: "apns", missing: apns.missing });
		return apiError(c, 422, "provider_unavailable", "Live Activities (APNs) are not set up on this service.");
	}
	const viewer = { sub: principal.claims.sub, tenantId: principal.claims.tenant_id ?? null };
	const result = await sessionStub(c, sessionId.value).registerLiveActivity(
		sessionId.value,
		mandateId.value,
		viewer,
		body.value,
	);
	return rpcResponse(c, result, result.ok && result.value.registered === "created" ? 201 : 200);
});
