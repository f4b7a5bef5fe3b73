import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { forgetRememberedExecutions } from "../src/d1/executions.ts";
import { CANCELLED_MESSAGE } from "../src/session/erasure.ts";
import {
	ADMIN,
	api,
	auditSettled,
	connectPhone,
	deliverWebhook,
	execute,
	mandateBody,
	mobileToken,
	type Phone,
	phonesClosedAfterEach,
	progressOf,
	runAlarm,
	SERVICE,
	sessionStub,
	simComplete,
	uniqueId,
} from "./helpers.ts";

/**
 * Issue 12, item 2: erasure. Everything of a user (or one session) goes — Session DO storage, D1 rows,
 * push devices — a running mandate is stopped first, nothing comes back through a late webhook or
 * poll, and every other user's data stays.
 */

/** A session opened by `sub`'s phone, with one finished and one running mandate, and a push device. */
async function sessionOf(phones: Phone[], sub: string) {
	const sessionId = uniqueId("sess");
	const token = await mobileToken(sessionId, { sub });
	const phone = await connectPhone(sessionId, { token });
	phones.push(phone);
	await phone.waitFor((f) => f.type === "snapshot", "snapshot");
	const done = mandateBody(sessionId);
	const doneExecution = (await execute(done)).json.execution_id;
	const webhook = await simComplete(doneExecution, { status: "COMPLETED", summary: "Report sent" });
	await deliverWebhook(webhook);
	await phone.waitForStage(done.mandate_id, 10, "completed");
	const running = mandateBody(sessionId);
	const runningExecution = (await execute(running)).json.execution_id;
	await phone.waitForStage(running.mandate_id, 9, "active");
	const device = await api(`/api/devices/phone_${sessionId}`, {
		method: "PUT",
		headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
		body: JSON.stringify({ kind: "expo", token: `ExponentPushToken[${sessionId.replaceAll("_", "x")}]` }),
	});
	expect(device.status).toBe(201);
	await auditSettled(sessionId);
	return { sessionId, token, phone, done, running, executions: [doneExecution, runningExecution], webhook };
}

/** Every D1 row that names the session or its executions, per table. */
async function d1Rows(sessionId: string, executions: string[]) {
	const inList = executions.map(() => "?").join(", ");
	const count = async (sql: string, ...binds: unknown[]) =>
		((
			await env.DB.prepare(sql)
				.bind(...binds)
				.first<{ n: number }>()
		)?.n ?? 0) as number;
	return {
		executions: await count(
			`SELECT COUNT(*) AS n FROM executions WHERE execution_id IN (${inList})`,
			...executions,
		),
		audit_log: await count(
			`SELECT COUNT(*) AS n FROM audit_log WHERE session_id = ? OR execution_id IN (${inList})`,
			sessionId,
			...executions,
		),
		delivery_events: await count(
			`SELECT COUNT(*) AS n FROM delivery_events WHERE execution_id IN (${inList})`,
			...executions,
		),
		mandate_owners: await count("SELECT COUNT(*) AS n FROM mandate_owners WHERE session_id = ?", sessionId),
		session_owners: await count("SELECT COUNT(*) AS n FROM session_owners WHERE session_id = ?", sessionId),
	};
}

const nothing = {
	executions: 0,
	audit_log: 0,
	delivery_events: 0,
	mandate_owners: 0,
	session_owners: 0,
};

/** What the Session DO holds: its tables' rows (none at all once its storage is deleted). */
function storedRows(sessionId: string) {
	return runInDurableObject(sessionStub(sessionId), (_instance, state) => {
		const sql = state.storage.sql;
		const tables = sql
			.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'ml_%'")
			.toArray()
			.map((row) => row.name);
		return tables.reduce(
			(n, table) => n + sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n,
			0,
		);
	});
}

const erase = (path: string, headers: Record<string, string> = ADMIN) =>
	api(path, { method: "DELETE", headers });

describe("erasure", () => {
	const phones = phonesClosedAfterEach();

	it("erases everything of a user, stops what runs, and leaves nothing a late webhook or poll can bring back", async () => {
		const sub = uniqueId("user");
		const first = await sessionOf(phones, sub);
		const second = await sessionOf(phones, sub);
		const other = await sessionOf(phones, uniqueId("other"));
		const otherBefore = await d1Rows(other.sessionId, other.executions);
		expect((await d1Rows(first.sessionId, first.executions)).session_owners).toBe(1);

		const response = await erase(`/api/admin/users/${sub}`);
		expect(response.status).toBe(200);
		const receipt = (await response.json()) as {
			found: boolean;
			devices: number;
			sessions: Array<{
				session_id: string;
				mandates: number;
				executions: number;
				d1: Record<string, number>;
			}>;
		};
		expect(receipt.found).toBe(true);
		expect(receipt.devices).toBe(2);
		expect(receipt.sessions.map((s) => s.session_id).sort()).toEqual(
			[first.sessionId, second.sessionId].sort(),
		);
		for (const session of receipt.sessions) {
			expect(session).toMatchObject({ mandates: 2, executions: 2 });
			expect(session.d1.executions).toBe(2);
			expect(session.d1.audit_log).toBeGreaterThan(0);
		}

		// The running mandate was stopped where the phones could see it, then the sockets closed.
		await first.phone.waitForStage(first.running.mandate_id, 9, "failed");
		expect(first.phone.stages(first.running.mandate_id).at(-1)?.message).toBe(CANCELLED_MESSAGE);
		await expect.poll(() => first.phone.closed?.reason).toBe("session erased");

		for (const session of [first, second]) {
			expect(await d1Rows(session.sessionId, session.executions)).toEqual(nothing);
			expect(await storedRows(session.sessionId)).toBe(0);
			expect(await runAlarm(session.sessionId)).toBe(false);
			expect((await progressOf(session.sessionId)).mandates).toEqual([]);
			for (const executionId of session.executions) {
				expect((await api(`/api/executions/${executionId}`, { headers: SERVICE })).status).toBe(404);
			}
		}
		const devices = await api("/api/devices", { headers: { Authorization: `Bearer ${first.token}` } });
		expect(((await devices.json()) as { devices: unknown[] }).devices).toEqual([]);

		// A late webhook for an erased execution: 2xx for ObeGee, stored nowhere — in this isolate and in a cold one.
		const late = await simComplete(first.executions[1] as string, { status: "COMPLETED" });
		expect(await (await deliverWebhook(late)).json()).toEqual({ outcome: "erased" });
		forgetRememberedExecutions();
		const replay = await deliverWebhook(first.webhook);
		expect([replay.status, await replay.json()]).toEqual([200, { outcome: "erased" }]);
		await auditSettled(first.sessionId);
		expect(await d1Rows(first.sessionId, first.executions)).toEqual(nothing);
		expect((await progressOf(first.sessionId)).mandates).toEqual([]);

		// Another user's data is untouched.
		expect(await d1Rows(other.sessionId, other.executions)).toEqual(otherBefore);
		expect((await progressOf(other.sessionId)).mandates).toHaveLength(2);
	});

	it("is idempotent: erasing again answers an empty receipt", async () => {
		const sub = uniqueId("user");
		const { sessionId } = await sessionOf(phones, sub);
		expect((await erase(`/api/admin/sessions/${sessionId}`)).status).toBe(200);
		const again = await erase(`/api/admin/sessions/${sessionId}`);
		expect(await again.json()).toEqual({
			session_id: sessionId,
			mandates: 0,
			executions: 0,
			events: 0,
			d1: {},
		});
		// The user's devices are theirs, not the session's: erasing the user removes them, then nothing.
		expect(await (await erase(`/api/admin/users/${sub}`)).json()).toMatchObject({ devices: 1, sessions: [] });
		expect(await (await erase(`/api/admin/users/${sub}`)).json()).toEqual({
			sub,
			sessions: [],
			devices: 0,
			found: false,
		});
	});

	it("is for operators only; a bad id is a 400; a refused call erases nothing", async () => {
		const sub = uniqueId("user");
		const { sessionId, token, executions } = await sessionOf(phones, sub);
		const before = await d1Rows(sessionId, executions);
		for (const headers of [
			{},
			SERVICE,
			{ Authorization: `Bearer ${token}` },
			{ Authorization: "Bearer nope" },
		]) {
			const users = await erase(`/api/admin/users/${sub}`, headers);
			const sessions = await erase(`/api/admin/sessions/${sessionId}`, headers);
			expect([users.status, sessions.status]).toEqual(
				"Authorization" in headers && headers.Authorization !== "Bearer nope" ? [403, 403] : [401, 401],
			);
		}
		expect((await erase("/api/admin/users/bad%20sub")).status).toBe(400);
		expect((await erase("/api/admin/sessions/bad%20id")).status).toBe(400);
		expect(await d1Rows(sessionId, executions)).toEqual(before);
		expect((await progressOf(sessionId)).mandates).toHaveLength(2);
	});
});
