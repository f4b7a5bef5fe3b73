import { Hono } from "hono";
import { forbidden, fromHeader, identify, notConfigured, obegeeSettingsMissing } from "../auth/principal.ts";
import { rememberExecution } from "../d1/executions.ts";
import { type AppEnv, limitBody, readJson } from "../http.ts";
import { ExecuteRequest } from "../protocol/api.ts";
import { rpcResponse, sessionStub } from "./rpc.ts";

/** `POST /api/mandate/execute`: dispatch a mandate to ObeGee and track it on the session's phones. */
export const mandates = new Hono<AppEnv>();

mandates.post("/execute", limitBody(64 * 1024), async (c) => {
	const who = await identify(c, fromHeader(c), ["service"]);
	if (!who.ok) return who.response;
	// Phones only watch (issue 14): a mandate runs only after the pipeline's stages 1–5, so only the
	// pipeline may send one, never a phone naming any tenant, intent or skills it likes.
	if (who.principal.kind !== "service") return forbidden(c, "Only the MyndLens pipeline executes mandates.");
	const request = await readJson(c, ExecuteRequest);
	if (!request.ok) return request.response;
	const { session_id } = request.value;
	const missing = obegeeSettingsMissing(c.env);
	if (missing.length > 0) return notConfigured(c, "mandate execution", missing);
	const result = await sessionStub(c, session_id).execute(request.value);
	if (result.ok) rememberExecution(result.value.execution_id, session_id);
	return rpcResponse(c, result);
});
