import { Hono } from "hono";
import { forbidden, fromHeader, identify } from "../auth/principal.ts";
import { readExecution } from "../d1/executions.ts";
import { type AppEnv, apiError, validate } from "../http.ts";
import { Identifier } from "../protocol/common.ts";

/** `GET /api/executions/:executionId`: the execution record, its stages and its audit timeline, from D1. */
export const executions = new Hono<AppEnv>();

executions.get("/:executionId", async (c) => {
	const executionId = validate(c, Identifier, c.req.param("executionId"));
	if (!executionId.ok) return executionId.response;
	const who = await identify(c, fromHeader(c), ["service", "admin"]);
	if (!who.ok) return who.response;
	if (who.principal.kind !== "service" && who.principal.kind !== "admin")
		return forbidden(c, "Only the pipeline and operators read executions.");

	const found = await readExecution(c.env.DB, executionId.value);
	if (!found) return apiError(c, 404, "not_found", "No execution with this id is known.");
	return c.json(found);
});
