import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { readExecution } from "../src/d1/executions.ts";

/**
 * D1 migrations keep what was stored: a database migrated up to the one before a step, holding rows,
 * is migrated through that step and read back (issue 17, migration 0008 rebuilds audit_log).
 */
describe("D1 migrations", () => {
	it("0008 keeps every audit row, keyed by time, and the stages it drops are still answered", async () => {
		const db = env.MIGRATION_DB;
		const index = env.TEST_MIGRATIONS.findIndex((m) => m.name.startsWith("0008"));
		expect(index).toBeGreaterThan(0);
		await applyD1Migrations(db, env.TEST_MIGRATIONS.slice(0, index));
		const at = (s: number) => `2026-11-30T10:00:${String(s).padStart(2, "0")}.000Z`;
		const audit = (seq: number, execution: string | null, event: string, detail: unknown) =>
			db
				.prepare(
					"INSERT INTO audit_log (id, session_id, seq, mandate_id, execution_id, event, detail, at) VALUES (?, 'sess_old', ?, 'mio_old', ?, ?, ?, ?)",
				)
				.bind(`sess_old:${seq}`, seq, execution, event, JSON.stringify(detail), at(seq));
		await db.batch([
			audit(1, null, "stage", { stage: 1, status: "active", message: null }),
			audit(2, null, "stage", { stage: 1, status: "completed", message: null }),
			audit(3, "exec_old", "dispatched", { attempt: 1 }),
			audit(4, "exec_old", "stage", { stage: 9, status: "failed", message: "Mailbox full" }),
			db
				.prepare(
					"INSERT INTO pipeline_progress (session_id, mandate_id, stage, status, message, updated_at, version) VALUES ('sess_old', 'mio_old', 9, 'failed', 'Mailbox full', ?, 4)",
				)
				.bind(at(4)),
			db
				.prepare(
					"INSERT INTO executions (execution_id, session_id, mandate_id, tenant_id, state, created_at, updated_at, version) VALUES ('exec_old', 'sess_old', 'mio_old', 'tenant_old', 'failed', ?, ?, 4)",
				)
				.bind(at(3), at(4)),
		]);

		await applyD1Migrations(db, env.TEST_MIGRATIONS);

		const rows = await db
			.prepare("SELECT at, session_id, seq, mandate_id, execution_id, event FROM audit_log ORDER BY at")
			.all();
		expect(rows.results).toEqual([
			{
				at: at(1),
				session_id: "sess_old",
				seq: 1,
				mandate_id: "mio_old",
				execution_id: null,
				event: "stage",
			},
			{
				at: at(2),
				session_id: "sess_old",
				seq: 2,
				mandate_id: "mio_old",
				execution_id: null,
				event: "stage",
			},
			{
				at: at(3),
				session_id: "sess_old",
				seq: 3,
				mandate_id: "mio_old",
				execution_id: "exec_old",
				event: "dispatched",
			},
			{
				at: at(4),
				session_id: "sess_old",
				seq: 4,
				mandate_id: "mio_old",
				execution_id: "exec_old",
				event: "stage",
			},
		]);
		const tables = await db
			.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name = 'pipeline_progress'")
			.all();
		expect(tables.results).toEqual([]);
		// What pipeline_progress said, GET /api/executions/:id still says, from the audit rows.
		const found = await readExecution(db, "exec_old");
		expect(found?.stages).toEqual([
			{ stage: 1, status: "completed", message: null, updated_at: at(2) },
			{ stage: 9, status: "failed", message: "Mailbox full", updated_at: at(4) },
		]);
		expect(found?.timeline.map((t) => t.event)).toEqual(["stage", "stage", "dispatched", "stage"]);
		// The same audit row written again (an outbox retry) is still written once.
		const again = await db
			.prepare(
				"INSERT OR IGNORE INTO audit_log (session_id, seq, mandate_id, execution_id, event, detail, at) VALUES ('sess_old', 4, 'mio_old', 'exec_old', 'stage', '{}', ?)",
			)
			.bind(at(4))
			.run();
		expect(again.meta.changes).toBe(0);
	});
});
