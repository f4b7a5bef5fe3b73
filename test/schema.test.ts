import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { runMigrations } from "../src/durable/migrations.ts";
import { SESSION_MIGRATIONS } from "../src/session/schema.ts";
import { reportStage, sessionStub, uniqueId } from "./helpers.ts";

/**
 * Issue 17: a new Session DO creates its schema in one go (SESSION_MIGRATIONS.fresh) instead of step
 * by step. That shortcut is only right if it ends where the steps end: same tables, same columns with
 * the same types, defaults and keys, same indexes, same WITHOUT ROWID choices.
 */

type Shape = Record<string, unknown>;

function shapeOf(sql: SqlStorage): Shape {
	const tables = sql
		.exec<{ name: string; wr: number }>(
			"SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND name LIKE 'ml\\_%' ESCAPE '\\' ORDER BY name",
		)
		.toArray();
	const shape: Shape = {};
	for (const { name, wr } of tables) {
		shape[name] = {
			without_rowid: wr,
			columns: sql
				.exec(`SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info('${name}') ORDER BY cid`)
				.toArray(),
			indexes: sql
				.exec<{ name: string; unique: number; origin: string; partial: number }>(
					`SELECT name, "unique", origin, partial FROM pragma_index_list('${name}') ORDER BY name`,
				)
				.toArray()
				.map((index) => ({
					unique: index.unique,
					origin: index.origin,
					partial: index.partial,
					// Autoindexes are named by position; compare what they cover, not their names.
					name: index.origin === "c" ? index.name : index.origin,
					columns: sql
						.exec<{ name: string }>(`SELECT name FROM pragma_index_info('${index.name}') ORDER BY seqno`)
						.toArray()
						.map((column) => column.name),
				}))
				.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
		};
	}
	return shape;
}

describe("the Session DO's schema", () => {
	it("is the same created at once as built step by step", async () => {
		const fresh = await runInDurableObject(sessionStub(uniqueId("sess")), (_instance, state) =>
			shapeOf(state.storage.sql),
		);
		const stepped = await runInDurableObject(sessionStub(uniqueId("sess")), (_instance, state) => {
			const sql = state.storage.sql;
			// Start this object over with no tables, then run every step in order.
			for (const { name } of sql
				.exec<{ name: string }>(
					"SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'ml\\_%' ESCAPE '\\'",
				)
				.toArray())
				sql.exec(`DROP TABLE ${name}`);
			const version = runMigrations(sql, { ...SESSION_MIGRATIONS, fresh: undefined });
			return { version, shape: shapeOf(sql) };
		});
		expect(stepped.version).toBe(SESSION_MIGRATIONS.steps.length);
		expect(Object.keys(fresh)).toContain("ml_outbox");
		expect(fresh).toEqual(stepped.shape);
	});

	it("keeps what an object stored before the rebuild of its keyed tables", async () => {
		const sessionId = uniqueId("sess");
		const mandateId = uniqueId("mio");
		expect((await reportStage(sessionId, mandateId, 2, "completed")).status).toBe(200);
		const after = await runInDurableObject(sessionStub(sessionId), (_instance, state) => {
			const sql = state.storage.sql;
			const read = () => ({
				stages: sql.exec("SELECT mandate_id, stage, status FROM ml_stages ORDER BY stage").toArray(),
				meta: sql.exec("SELECT value FROM ml_meta WHERE key = 'session_id'").toArray(),
			});
			const before = read();
			// Back to the schema before the rebuild step (the keyed tables as rowid tables, without the
			// columns of the steps after it), then forward.
			const last = SESSION_MIGRATIONS.steps.length;
			const rebuild = SESSION_MIGRATIONS.steps.findIndex((step) => step.includes("ml_outbox_v2"));
			expect(rebuild).toBeGreaterThan(0);
			sql.exec(`
				CREATE INDEX ml_mandates_running ON ml_mandates(state, next_poll_at);
				CREATE INDEX ml_push_due ON ml_push (due_at);
				CREATE INDEX ml_live_due ON ml_live (due_at);
				ALTER TABLE ml_mandates DROP COLUMN answer_seq;
				ALTER TABLE ml_events DROP COLUMN answer_chars;
				ALTER TABLE ml_events DROP COLUMN answer_truncated;
				CREATE TABLE old_stages AS SELECT * FROM ml_stages; DROP TABLE ml_stages;
				CREATE TABLE ml_stages (mandate_id TEXT NOT NULL, stage INTEGER NOT NULL, status TEXT NOT NULL,
				  message TEXT, updated_at INTEGER NOT NULL, PRIMARY KEY (mandate_id, stage));
				INSERT INTO ml_stages SELECT * FROM old_stages; DROP TABLE old_stages;
				CREATE TABLE old_meta AS SELECT * FROM ml_meta; DROP TABLE ml_meta;
				CREATE TABLE ml_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
				INSERT INTO ml_meta SELECT * FROM old_meta; DROP TABLE old_meta;
				DROP TABLE ml_webhooks;
				CREATE TABLE ml_webhooks (webhook_id TEXT PRIMARY KEY, received_at INTEGER NOT NULL, duplicates INTEGER NOT NULL DEFAULT 0);
				DROP TABLE ml_outbox;
				CREATE TABLE ml_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);
				INSERT INTO ml_outbox (kind, payload) VALUES ('audit', '{}');
			`);
			sql.exec("UPDATE ml_schema SET version = ?", rebuild);
			expect(runMigrations(sql, SESSION_MIGRATIONS)).toBe(last);
			const outbox = sql.exec("SELECT kind, payload, records FROM ml_outbox").toArray();
			const rebuilt = sql
				.exec<{ name: string; wr: number }>(
					"SELECT name, wr FROM pragma_table_list WHERE name IN ('ml_stages', 'ml_meta', 'ml_webhooks') ORDER BY name",
				)
				.toArray();
			// The stand-in row was only there to be carried over: it is no record to copy to D1.
			sql.exec("DELETE FROM ml_outbox WHERE payload = '{}'");
			return { before, after: read(), outbox, rebuilt };
		});
		expect(after.after).toEqual(after.before);
		expect(after.before.stages.length).toBeGreaterThan(0);
		expect(after.before.meta).toEqual([{ value: sessionId }]);
		expect(after.outbox).toEqual([{ kind: "audit", payload: "{}", records: 1 }]);
		expect(after.rebuilt.map((table) => [table.name, table.wr])).toEqual([
			["ml_meta", 1],
			["ml_stages", 1],
			["ml_webhooks", 1],
		]);
	});
});
