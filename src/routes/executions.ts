import { Hono } from "hono";
import { forbidden, fromHeader, identify } from "../auth/principal.ts";
import { type AppEnv, apiError, validate } from "../http.ts";
import { Identifier } from "../protocol/common.ts";

/** `GET /api/executions/:executionId`: the execution record, its stages and its audit timeline, from D1. */
export const executions = new Hono<AppEnv>();

interface ExecutionRow {
	execution_id: string;
	session_id: string;
	mandate_id: string;
	tenant_id: string;
	intent: string | null;
	state: string;
	summary: string | null;
	delivered_to: string | null;
	error: string | null;
	created_at: string;
	updated_at: string;
	completed_at: string | null;
}

executions.get("/:executionId", async (c) => {
	const executionId = validate(c, Identifier, c.req.param("executionId"));
	if (!executionId.ok) return executionId.response;
	const who = await identify(c, fromHeader(c));
	if (!who.ok) return who.response;
	if (who.principal.kind !== "service")
		return forbidden(c, "Only the pipeline and operators read executions.");

	const execution = await c.env.DB.prepare(
		`SELECT execution_id, session_id, mandate_id, tenant_id, intent, state, summary, delivered_to, error,
		        created_at, updated_at, completed_at
		 FROM executions WHERE execution_id = ?`,
	)
		.bind(executionId.value)
		.first<ExecutionRow>();
	if (!execution) return apiError(c, 404, "not_found", "No execution with this id is known.");
	const [stages, timeline, deliveries] = await c.env.DB.batch([
		c.env.DB.prepare(
			"SELECT stage, status, message, updated_at FROM pipeline_progress WHERE session_id = ? AND mandate_id = ? ORDER BY stage",
		).bind(execution.session_id, execution.mandate_id),
		c.env.DB.prepare(
			`SELECT event, detail, at FROM audit_log
			 WHERE session_id = ? AND (execution_id = ? OR (execution_id IS NULL AND mandate_id = ?)) ORDER BY seq`,
		).bind(execution.session_id, execution.execution_id, execution.mandate_id),
		c.env.DB.prepare(
			"SELECT webhook_id, status, outcome, received_at FROM delivery_events WHERE execution_id = ? ORDER BY received_at",
		).bind(execution.execution_id),
	]);
	return c.json({
		execution: {
			...execution,
			delivered_to: execution.delivered_to ? JSON.parse(execution.delivered_to) : null,
		},
		stages: stages?.results ?? [],
		timeline: (timeline?.results ?? []).map((row) => {
			const { detail, ...rest } = row as { detail: string; event: string; at: string };
			return { ...rest, detail: JSON.parse(detail) as unknown };
		}),
		deliveries: deliveries?.results ?? [],
	});
});
