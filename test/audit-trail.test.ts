import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SWEEP_QUERIES } from "../src/d1/erasure.ts";
import { forgetRememberedExecutions, TIMELINE_QUERIES } from "../src/d1/executions.ts";
import { MAX_ROW_ATTEMPTS, OUTBOX_ALERT_ROWS } from "../src/session/outbox.ts";
import {
	auditSettled,
	deliverWebhook,
	execute,
	mandateBody,
	postJson,
	reportStage,
	runAlarm,
	sessionStub,
	simComplete,
	uniqueId,
} from "./helpers.ts";

/**
 * Issue 16: every audit row reaches D1 — one row D1 refuses never holds back the rest, an outage
 * loses nothing however long the backlog grows, webhooks are routed without the audit copy, and the
 * timeline's queries are index-exact. D1 refuses rows here for real, through SQLite triggers
 * confined to the test's own session.
 */

const count = async (sql: string, ...bindings: unknown[]) =>
	(
		await env.DB.prepare(sql)
			.bind(...bindings)
			.first<{ n: number }>()
	)?.n ?? 0;

async function refuse(table: string, sessionId: string, extra = ""): Promise<() => Promise<void>> {
	const name = `refuse_${table}_${sessionId}`;
	await env.DB.exec(
		`CREATE TRIGGER ${name} BEFORE INSERT ON ${table} WHEN NEW.session_id = '${sessionId}'${extra} BEGIN SELECT RAISE(ABORT, 'refused by test'); END;`,
	);
	return async () => {
		await env.DB.exec(`DROP TRIGGER ${name}`);
	};
}

function outboxOf(sessionId: string) {
	return runInDurableObject(sessionStub(sessionId), (_instance, state) => ({
		// Records waiting (a turn's records share one row).
		pending:
			state.storage.sql.exec<{ n: number | null }>("SELECT SUM(records) AS n FROM ml_outbox").one().n ?? 0,
		alerted:
			state.storage.sql.exec("SELECT 1 FROM ml_meta WHERE key = 'outbox_alerted'").toArray().length > 0,
	}));
}

describe("the audit trail", () => {
	it("dead-letters a row D1 always refuses, while the rows behind it reach D1", async () => {
		const sessionId = uniqueId("sess");
		const mandateId = uniqueId("mio");
		const poison = `poison ${sessionId}`;
		const allow = await refuse("audit_log", sessionId, ` AND NEW.detail LIKE '%${poison}%'`);
		try {
			const report = (stage: number, status: string, message?: string) =>
				postJson(`/api/sessions/${sessionId}/stages`, {
					mandate_id: mandateId,
					stage,
					status,
					...(message ? { message } : {}),
				});
			expect((await report(1, "active", poison)).status).toBe(200);
			expect((await report(2, "completed")).status).toBe(200);
			expect((await report(3, "completed")).status).toBe(200);
			await auditSettled(sessionId);
			// At the next try, everything but the poison row reaches D1; all the audit rows do.
			await runAlarm(sessionId);
			// Stage 1 active (the poison row), stage 1 and 2 completed, stage 3 completed.
			expect(await count("SELECT COUNT(*) AS n FROM audit_log WHERE session_id = ?", sessionId)).toBe(3);
			expect((await outboxOf(sessionId)).pending).toBe(1);
			for (let i = 0; i < MAX_ROW_ATTEMPTS && (await outboxOf(sessionId)).pending > 0; i++)
				await runAlarm(sessionId);
			expect((await outboxOf(sessionId)).pending).toBe(0);
			const dead = await env.DB.prepare("SELECT kind, payload FROM outbox_dead_letters WHERE session_id = ?")
				.bind(sessionId)
				.all<{ kind: string; payload: string }>();
			expect(dead.results).toHaveLength(1);
			expect(dead.results[0]?.kind).toBe("audit");
			expect(JSON.parse(dead.results[0]?.payload ?? "{}")).toMatchObject({
				event: "stage",
				detail: { stage: 1, status: "active", message: poison },
			});
			const stages = await env.DB.prepare(
				"SELECT json_extract(detail, '$.stage') AS stage, json_extract(detail, '$.status') AS status FROM audit_log WHERE session_id = ? ORDER BY seq",
			)
				.bind(sessionId)
				.all();
			expect(stages.results).toEqual([
				{ stage: 1, status: "completed" },
				{ stage: 2, status: "completed" },
				{ stage: 3, status: "completed" },
			]);
		} finally {
			await allow();
		}
	});

	it("dead-letters at once a row that cannot become a statement (not a D1 outage)", async () => {
		const sessionId = uniqueId("sess");
		const mandateId = uniqueId("mio");
		expect((await reportStage(sessionId, mandateId, 1, "active")).status).toBe(200);
		await auditSettled(sessionId);
		await runInDurableObject(sessionStub(sessionId), (_instance, state) => {
			state.storage.sql.exec("INSERT INTO ml_outbox (kind, payload) VALUES ('audit', '{not json')");
		});
		expect((await reportStage(sessionId, mandateId, 2, "active")).status).toBe(200);
		await auditSettled(sessionId);
		expect((await outboxOf(sessionId)).pending).toBe(0);
		expect(await count("SELECT COUNT(*) AS n FROM outbox_dead_letters WHERE session_id = ?", sessionId)).toBe(
			1,
		);
		expect(await count("SELECT COUNT(*) AS n FROM audit_log WHERE session_id = ?", sessionId)).toBe(3);
	});

	it("delivers a stage record written before migration 0008 as nothing, not as poison", async () => {
		const sessionId = uniqueId("sess");
		const mandateId = uniqueId("mio");
		expect((await reportStage(sessionId, mandateId, 1, "active")).status).toBe(200);
		await auditSettled(sessionId);
		const legacy = { kind: "stage", mandate_id: mandateId, stage: 1, status: "active", message: null, at: 1 };
		const audit = {
			kind: "audit",
			mandate_id: mandateId,
			execution_id: null,
			event: "legacy",
			detail: {},
			at: 1,
		};
		await runInDurableObject(sessionStub(sessionId), (_instance, state) => {
			// A row of the stage record alone, and a turn's row holding it beside an audit record.
			state.storage.sql.exec(
				"INSERT INTO ml_outbox (kind, payload, records) VALUES ('stage', ?, 1), ('stage', ?, 2)",
				JSON.stringify(legacy),
				JSON.stringify([legacy, audit]),
			);
		});
		// The next turn's flush takes them with it.
		expect((await reportStage(sessionId, mandateId, 2, "active")).status).toBe(200);
		await auditSettled(sessionId);
		expect((await outboxOf(sessionId)).pending).toBe(0);
		expect(await count("SELECT COUNT(*) AS n FROM outbox_dead_letters WHERE session_id = ?", sessionId)).toBe(
			0,
		);
		expect(
			await count("SELECT COUNT(*) AS n FROM audit_log WHERE session_id = ? AND event = 'legacy'", sessionId),
		).toBe(1);
	});

	it("keeps a backlog past its bound through a D1 outage, says so, and loses nothing when D1 is back", async () => {
		const sessionId = uniqueId("sess");
		const allowAudit = await refuse("audit_log", sessionId);
		let reports = 0;
		try {
			// Each new mandate reported at stage 5 writes 5 audit rows (one per stage change).
			while (reports * 5 <= OUTBOX_ALERT_ROWS) {
				expect((await reportStage(sessionId, uniqueId("mio"), 5, "completed")).status).toBe(200);
				reports++;
			}
			await auditSettled(sessionId);
			expect(await runAlarm(sessionId)).toBe(true);
			const backlog = await outboxOf(sessionId);
			expect(backlog.pending).toBe(reports * 5);
			expect(backlog.alerted).toBe(true);
			// An outage is not a poison row: nothing was dead-lettered.
			expect(
				await count("SELECT COUNT(*) AS n FROM outbox_dead_letters WHERE session_id = ?", sessionId),
			).toBe(0);
		} finally {
			await allowAudit();
		}
		expect(await runAlarm(sessionId)).toBe(true);
		expect(await outboxOf(sessionId)).toEqual({ pending: 0, alerted: false });
		expect(await count("SELECT COUNT(*) AS n FROM audit_log WHERE session_id = ?", sessionId)).toBe(
			reports * 5,
		);
	});

	it("routes a webhook by the owner row written before execute answered, not by the audit copy", async () => {
		const sessionId = uniqueId("sess");
		// The audit copy cannot reach D1 at all…
		const allowAudit = await refuse("audit_log", sessionId);
		try {
			const body = mandateBody(sessionId);
			const { response, json } = await execute(body);
			expect(response.status).toBe(200);
			// …and the webhook lands in another isolate, which remembers nothing.
			forgetRememberedExecutions();
			const webhook = await deliverWebhook(await simComplete(json.execution_id));
			expect(webhook.status).toBe(200);
			expect(await webhook.json()).toEqual({ outcome: "applied" });
		} finally {
			await allowAudit();
		}
	});

	it("records when we learned every outcome, failures included, and ObeGee's own time beside it", async () => {
		const sessionId = uniqueId("sess");
		const { json } = await execute(mandateBody(sessionId));
		const webhook = await simComplete(json.execution_id, { status: "FAILED", error: "Mailbox full" });
		const reported = (JSON.parse(webhook.body) as { completed_at: string }).completed_at;
		const before = Date.now();
		expect((await deliverWebhook(webhook)).status).toBe(200);
		await auditSettled(sessionId);
		const row = await env.DB.prepare(
			"SELECT state, completed_at, reported_completed_at FROM executions WHERE execution_id = ?",
		)
			.bind(json.execution_id)
			.first<{ state: string; completed_at: string | null; reported_completed_at: string | null }>();
		expect(row?.state).toBe("failed");
		expect(row?.reported_completed_at).toBe(reported);
		// Ours, on our clock, for a failure too (it used to be NULL).
		expect(Date.parse(row?.completed_at ?? "")).toBeGreaterThanOrEqual(before - 1_000);
	});

	it("answers the execution timeline with index-exact queries over a large table", async () => {
		// A big audit_log with statistics (PRAGMA optimize, as D1's docs recommend): a plan that scans
		// would show here, where it costs, not only in production.
		await env.DB.exec(
			"INSERT OR IGNORE INTO audit_log (session_id, seq, mandate_id, execution_id, event, detail, at) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT 'plan_sess_' || (i % 50), i, 'plan_mio_' || (i % 400), CASE WHEN i % 3 = 0 THEN NULL ELSE 'plan_exec_' || (i % 400) END, 'stage', '{}', '2026-01-01T00:00:00Z' FROM n",
		);
		await env.DB.exec(
			"INSERT OR IGNORE INTO delivery_events (webhook_id, execution_id, session_id, status, payload, outcome, received_at) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) SELECT 'plan_msg_' || i, 'plan_exec_' || (i % 400), 'plan_sess_' || (i % 50), 'COMPLETED', '{}', 'applied', '2026-01-01T00:00:00Z' FROM n",
		);
		await env.DB.exec("PRAGMA optimize");
		await env.DB.exec("ANALYZE");
		const plan = async (sql: string, ...bindings: string[]) =>
			(
				await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
					.bind(...bindings)
					.all<{ detail: string }>()
			).results
				.map((row) => row.detail)
				.join(" | ");
		expect(await plan(TIMELINE_QUERIES.ofExecution, "plan_exec_7", "plan_sess_7")).toMatch(
			/SEARCH audit_log USING INDEX audit_log_execution \(execution_id=\?\)/,
		);
		expect(await plan(TIMELINE_QUERIES.beforeExecution, "plan_sess_7", "plan_mio_7")).toMatch(
			/SEARCH audit_log USING INDEX audit_log_mandate \(session_id=\? AND mandate_id=\?\)/,
		);
		expect(await plan(TIMELINE_QUERIES.deliveries, "e")).toMatch(
			/SEARCH delivery_events USING INDEX delivery_events_execution/,
		);
		// The retention sweep takes audit rows in time order by the table's own key (migration 0008).
		expect(await plan(SWEEP_QUERIES.audit_log, "2026-01-02T00:00:00Z")).toMatch(
			/SEARCH audit_log USING PRIMARY KEY \(at<\?\)/,
		);
		for (const sql of Object.values(TIMELINE_QUERIES)) {
			expect(await plan(sql, "a", "b").catch(() => plan(sql, "a"))).not.toMatch(/SCAN/);
		}
	});
});
