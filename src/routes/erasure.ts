import { Hono } from "hono";
import { forbidden, fromHeader, identify } from "../auth/principal.ts";
import { deleteAllDevices } from "../d1/devices.ts";
import { sessionsOfUser } from "../d1/erasure.ts";
import { type AppContext, type AppEnv, apiError, validate } from "../http.ts";
import { log } from "../log.ts";
import { Identifier } from "../protocol/common.ts";
import type { SessionErasure } from "../session/session-do.ts";
import { rpcResponse, sessionStub } from "./rpc.ts";

/**
 * Erasure (issue 12, DESIGN.md "Operations"; UK GDPR art. 17): `DELETE /api/admin/users/:sub` erases
 * every session the user opened and their push devices; `DELETE /api/admin/sessions/:sessionId` one
 * session. ADMIN_TOKEN only; idempotent; each answers a receipt of what was removed. Afterwards no
 * route returns any of it, and a late webhook for an erased execution is answered 2xx, stored nowhere.
 */
export const erasure = new Hono<AppEnv>();

async function asAdmin(c: AppContext): Promise<Response | null> {
	const who = await identify(c, fromHeader(c), ["admin"]);
	if (!who.ok) return who.response;
	return who.principal.kind === "admin" ? null : forbidden(c, "Only operators erase data.");
}

erasure.delete("/sessions/:sessionId", async (c) => {
	const refused = await asAdmin(c);
	if (refused) return refused;
	const sessionId = validate(c, Identifier, c.req.param("sessionId"));
	if (!sessionId.ok) return sessionId.response;
	const result = await sessionStub(c, sessionId.value).erase(sessionId.value);
	if (result.ok) {
		log("info", "session erased", { session_id: sessionId.value, mandates: result.value.mandates });
	}
	return rpcResponse(c, result);
});

erasure.delete("/users/:sub", async (c) => {
	const refused = await asAdmin(c);
	if (refused) return refused;
	const sub = validate(c, Identifier, c.req.param("sub"));
	if (!sub.ok) return sub.response;
	const sessions: SessionErasure[] = [];
	for (const sessionId of await sessionsOfUser(c.env.DB, sub.value)) {
		const result = await sessionStub(c, sessionId).erase(sessionId);
		if (!result.ok) return rpcResponse(c, result);
		sessions.push(result.value);
	}
	const devices = await deleteAllDevices(c.env.DB, sub.value);
	// The user id itself is not logged: a count says enough.
	log("info", "user erased", { sessions: sessions.length, devices });
	if (sessions.length === 0 && devices === 0) {
		return c.json({ sub: sub.value, sessions: [], devices: 0, found: false });
	}
	return c.json({ sub: sub.value, sessions, devices, found: true });
});

/** A mistaken method on these paths still gets the API's error shape. */
erasure.all("/users/:sub", (c) => apiError(c, 405, "method_not_allowed", "Use DELETE."));
