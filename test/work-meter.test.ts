import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FOLD_MS, meteredD1, meteredEnv, WorkMeter } from "../src/durable/work-meter.ts";
import { sessionStub, uniqueId } from "./helpers.ts";

/**
 * Issue 17: the cost model is computed from what the work meter counts, so the meter must count
 * right — every statement and row of a scope, the work it handed to waitUntil, the time it kept
 * the object busy — and must cost nothing when it is off.
 */

function captureLines(): Array<Record<string, unknown>> {
	const lines: Array<Record<string, unknown>> = [];
	vi.spyOn(console, "log").mockImplementation((text: unknown) => {
		const line = typeof text === "string" && text.startsWith('{"metric"') ? JSON.parse(text) : null;
		if (line) lines.push(line as Record<string, unknown>);
	});
	return lines;
}

describe("the work meter", () => {
	afterEach(() => vi.restoreAllMocks());

	it("counts a scope's statements, rows, JSON calls and waitUntil work into one line, once that work is done", async () => {
		const lines = captureLines();
		await runInDurableObject(sessionStub(uniqueId("sess")), async (_instance, state) => {
			const meter = new WorkMeter(
				{ METRICS_LOG: "true" },
				"session",
				() => ({ session_id: "s1" }),
				state.storage,
			);
			const sql = meter.sql(state.storage.sql);
			sql.exec("CREATE TABLE IF NOT EXISTS meter_test (id INTEGER PRIMARY KEY, v TEXT)");
			let release: () => void = () => {};
			const background = new Promise<void>((resolve) => {
				release = resolve;
			});
			await meter.run("rpc:test", async () => {
				sql.exec("INSERT INTO meter_test (v) VALUES (?)", JSON.stringify({ a: 1 }));
				sql.exec("INSERT INTO meter_test (v) VALUES ('b')");
				sql.exec("SELECT * FROM meter_test").toArray();
				JSON.parse('{"x":1}');
				meter.waitUntil(
					state,
					background.then(() => {
						sql.exec("DELETE FROM meter_test");
					}),
				);
			});
			// The scope returned, but the work it handed over is still running: no line yet.
			expect(lines.filter((line) => line.kind === "rpc:test")).toEqual([]);
			release();
			await background;
			await new Promise((resolve) => setTimeout(resolve, 0));
		});
		const line = lines.find((candidate) => candidate.kind === "rpc:test");
		expect(line).toMatchObject({
			metric: "work",
			object: "session",
			kind: "rpc:test",
			session_id: "s1",
			requests: 1,
			// The CREATE TABLE ran outside any scope: it is counted with this, the next line (its
			// schema rows are the 2 rows written beyond the 2 inserts and the 2 rows deleted).
			sql_statements: 5,
			rows_written: 6,
			json_parse: 1,
			json_stringify: 1,
		});
		expect(line?.rows_read).toBeGreaterThanOrEqual(2);
		expect(line?.busy_ms).toBeGreaterThanOrEqual(0);
		expect(Number(line?.db_bytes)).toBeGreaterThan(0);
		expect(lines.filter((candidate) => candidate.kind === "rpc:test")).toHaveLength(1);
	});

	it("counts D1 statements with the rows they wrote and read, first() included", async () => {
		const lines = captureLines();
		const meter = new WorkMeter({ METRICS_LOG: "true" }, "worker", () => ({}));
		const db = meteredD1(env.DB);
		const id = uniqueId("dead");
		await meter.run("POST /test", async () => {
			await db
				.prepare(
					"INSERT INTO outbox_dead_letters (id, session_id, kind, payload, error, failed_at) VALUES (?, ?, 'audit', '{}', 'e', ?)",
				)
				.bind(`${id}:1`, id, new Date().toISOString())
				.run();
			const row = await db
				.prepare("SELECT session_id FROM outbox_dead_letters WHERE session_id = ?")
				.bind(id)
				.first<{ session_id: string }>();
			expect(row?.session_id).toBe(id);
			expect(
				await db
					.prepare("SELECT session_id FROM outbox_dead_letters WHERE session_id = ?")
					.bind(id)
					.first("session_id"),
			).toBe(id);
			await db.batch([db.prepare("DELETE FROM outbox_dead_letters WHERE session_id = ?").bind(id)]);
		});
		const line = lines.find((candidate) => candidate.kind === "POST /test");
		expect(line).toMatchObject({ object: "worker", requests: 1, d1_statements: 4 });
		expect(Number(line?.d1_rows_written)).toBeGreaterThanOrEqual(2);
		expect(Number(line?.d1_rows_read)).toBeGreaterThanOrEqual(2);
	});

	it("folds unbilled scopes (socket frames) into one line per kind with their count, sent with the next billed line, after FOLD_MS, or when the socket closes", async () => {
		const lines = captureLines();
		await runInDurableObject(sessionStub(uniqueId("sess")), async (_instance, state) => {
			const meter = new WorkMeter(
				{ METRICS_LOG: "true" },
				"gateway",
				() => ({ tenant_id: "t1" }),
				state.storage,
			);
			const sql = meter.sql(state.storage.sql);
			const frame = () => meter.run("frame", () => JSON.parse('{"event":"agent"}'), false);
			meter.holdOpen(true);
			frame();
			frame();
			frame();
			// Three frames, no line yet: they wait for their kind's line.
			expect(lines).toEqual([]);
			meter.run("rpc:watch", () => sql.exec("SELECT 1").toArray());
			expect(lines.map((line) => [line.kind, line.n])).toEqual([
				["frame", 3],
				["rpc:watch", undefined],
			]);
			expect(lines[0]).toMatchObject({ object: "gateway", tenant_id: "t1", requests: 0, json_parse: 3 });
			expect(lines[1]).toMatchObject({ requests: 1, sql_statements: 1, json_parse: 0 });

			frame();
			expect(lines).toHaveLength(2);
			await new Promise((resolve) => setTimeout(resolve, FOLD_MS + 10));
			// A frame after FOLD_MS sends the line it joins.
			frame();
			expect(lines.slice(2).map((line) => [line.kind, line.n, line.json_parse])).toEqual([["frame", 2, 2]]);

			frame();
			expect(lines).toHaveLength(3);
			meter.holdOpen(false);
			expect(lines.slice(3).map((line) => [line.kind, line.n])).toEqual([["frame", 1]]);
			// The socket's open time is on the lines: the object could not hibernate meanwhile.
			const busy = lines.reduce((total, line) => total + Number(line.busy_ms), 0);
			expect(busy).toBeGreaterThanOrEqual(FOLD_MS);
		});
	});

	it("is off unless METRICS_LOG asks for it: the same SQL and D1, no line", async () => {
		const lines = captureLines();
		const meter = new WorkMeter({}, "session", () => ({}));
		expect(meter.enabled).toBe(false);
		expect(meteredEnv(env)).toBe(env);
		await runInDurableObject(sessionStub(uniqueId("sess")), (_instance, state) => {
			expect(meter.sql(state.storage.sql)).toBe(state.storage.sql);
			meter.run("rpc:off", () => state.storage.sql.exec("SELECT 1").toArray());
		});
		expect(lines).toEqual([]);
	});
});
