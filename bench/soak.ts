import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { gatewayAgent, startObeGeeSim } from "../sim/obegee.ts";
import { startGatewaySim } from "../sim/openclaw.ts";
import {
	freePort,
	HOST,
	isolatedWorkerConfig,
	type RunningWorker,
	randomSecrets,
	startLocalWorker,
} from "../tools/local-worker.ts";
import { pool } from "./stats.ts";

/**
 * `npm run bench -- --soak`: 1,000 mandates through the simulators' fault scenarios — 5xx bursts,
 * status timeouts, duplicate, early and missing webhooks, gateway drops, agent errors, failures,
 * invalid tenants — while the whole Worker is restarted mid-run (every Durable Object evicted).
 * Every mandate must reach exactly one terminal state, the right one for its scenario, and every
 * mandate's audit trail must be complete in D1.
 */

const SESSIONS = 100;
const MANDATES_PER_SESSION = 10;
const TENANT = "tenant_soak";
const DURATION_MS = 3_000;

interface SoakCase {
	scenario: string;
	dimensions: Record<string, unknown>;
	expected: "completed" | "failed";
}

const CASES: SoakCase[] = [
	{ scenario: "happy", dimensions: { sim_scenario: "happy" }, expected: "completed" },
	{
		scenario: "5xx burst",
		dimensions: { sim_scenario: "happy", sim_status_errors: 3 },
		expected: "completed",
	},
	{ scenario: "flaky", dimensions: { sim_scenario: "flaky" }, expected: "completed" },
	{ scenario: "duplicate webhook", dimensions: { sim_scenario: "duplicate_webhook" }, expected: "completed" },
	{ scenario: "early webhook", dimensions: { sim_scenario: "early_webhook" }, expected: "completed" },
	{ scenario: "no webhook", dimensions: { sim_scenario: "no_webhook" }, expected: "completed" },
	{ scenario: "gateway drop", dimensions: { sim_scenario: "gateway_drop" }, expected: "completed" },
	{ scenario: "agent error", dimensions: { sim_scenario: "agent_error" }, expected: "completed" },
	{ scenario: "fail", dimensions: { sim_scenario: "fail" }, expected: "failed" },
	{ scenario: "invalid tenant", dimensions: { sim_scenario: "invalid_tenant" }, expected: "failed" },
];

interface Planned {
	sessionId: string;
	mandateId: string;
	kase: SoakCase;
	executionId: string | null;
}

function log(line: string) {
	console.log(`[soak] ${line}`);
}

export async function soak(root: string) {
	const started = performance.now();
	const secrets = randomSecrets();
	const port = await freePort();
	const workerUrl = `http://${HOST}:${port}`;
	const gateway = await startGatewaySim({ port: 0, token: secrets.OPENCLAW_GATEWAY_TOKEN, log: () => {} });
	const sim = await startObeGeeSim({
		port: 0,
		apiToken: secrets.OBEGEE_API_TOKEN,
		webhookSecret: secrets.WEBHOOK_SECRET,
		webhookUrl: `${workerUrl}/api/dispatch/delivery-webhook`,
		agent: gatewayAgent(gateway),
		log: () => {},
	});
	const isolated = isolatedWorkerConfig(root);
	const persist = mkdtempSync(join(tmpdir(), "myndlens-soak-"));
	const start = (migrations: boolean) =>
		startLocalWorker({
			root,
			config: isolated.config,
			port,
			persist,
			migrations,
			readyPath: "/health",
			vars: { ...secrets, OBEGEE_BASE_URL: sim.url, POLL_INTERVAL_MS: "2000" },
		});
	let worker: RunningWorker = await start(true);
	const restarts = { count: 0 };
	try {
		await request(workerUrl, "PUT", `/api/admin/tenants/${TENANT}/gateway`, secrets.ADMIN_TOKEN, {
			url: gateway.url,
			token: secrets.OPENCLAW_GATEWAY_TOKEN,
		});
		const plan: Planned[] = [];
		for (let s = 0; s < SESSIONS; s++) {
			for (let m = 0; m < MANDATES_PER_SESSION; m++) {
				const kase = CASES[(s * MANDATES_PER_SESSION + m) % CASES.length] as SoakCase;
				// A session is one tenant's (issue 14): the mandate for an unknown tenant gets a session of its own.
				const sessionId = kase.scenario === "invalid tenant" ? `soak-${s}-other-tenant` : `soak-${s}`;
				plan.push({ sessionId, mandateId: `mio-soak-${s}-${m}`, kase, executionId: null });
			}
		}
		log(
			`${plan.length} mandates over ${SESSIONS} sessions, ${CASES.length} scenarios; the Worker restarts halfway`,
		);
		let launched = 0;
		const restartAt = Math.floor(plan.length / 2);
		let restarting: Promise<void> | null = null;
		await pool(plan, 40, async (item) => {
			launched++;
			if (launched === restartAt) {
				// A forced eviction of every object: the whole runtime goes away and comes back.
				restarting = (async () => {
					await worker.stop();
					worker = await start(false);
					restarts.count++;
				})();
			}
			item.executionId = await executeWithRetry(workerUrl, secrets.SERVICE_TOKEN, item, () => restarting);
		});
		if (restarting) await restarting;

		log("waiting for every mandate to finish");
		const sessions = [...new Set(plan.map((item) => item.sessionId))];
		const deadline = Date.now() + 180_000;
		let states = new Map<string, string>();
		for (;;) {
			states = await mandateStates(workerUrl, secrets.SERVICE_TOKEN, sessions);
			const open = plan.filter(
				(item) => !["completed", "failed", "timed_out"].includes(states.get(item.mandateId) ?? ""),
			);
			if (open.length === 0 || Date.now() > deadline) break;
			await sleep(2_000);
		}
		// Let the last outbox flushes reach D1 before the audit is read.
		await sleep(3_000);
		const result = await verify(workerUrl, secrets.SERVICE_TOKEN, plan, states);
		return {
			mandates: plan.length,
			restarts: restarts.count,
			duration_s: Math.round((performance.now() - started) / 1000),
			...result,
		};
	} finally {
		await worker.stop();
		await Promise.all([sim.close(), gateway.close()]);
		isolated.cleanup();
		rmSync(persist, { recursive: true, force: true });
	}
}

async function request(base: string, method: string, path: string, bearer: string, body?: unknown) {
	const response = await fetch(`${base}${path}`, {
		method,
		headers: { "Content-Type": "application/json", Authorization: `Bearer ${bearer}` },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	return {
		status: response.status,
		json: (await response.json().catch(() => null)) as Record<string, unknown> | null,
	};
}

/**
 * Execute is idempotent per mandate, so a call lost to the restart is simply made again. A dispatch
 * attempt cut by the restart answers 503 `dispatch_pending` until the alarm sends it again, once its
 * lease has run out (DISPATCH_LEASE_MS: the 10-s dispatch timeout + 5 s): keep asking past that.
 */
const EXECUTE_RETRY_MS = 45_000;
async function executeWithRetry(
	base: string,
	token: string,
	item: Planned,
	restarting: () => Promise<void> | null,
): Promise<string | null> {
	let last = "no answer";
	const deadline = Date.now() + EXECUTE_RETRY_MS;
	while (Date.now() < deadline) {
		try {
			const { status, json } = await request(base, "POST", "/api/mandate/execute", token, {
				session_id: item.sessionId,
				mandate_id: item.mandateId,
				tenant_id: item.kase.scenario === "invalid tenant" ? "tenant_invalid_soak" : TENANT,
				intent: `Soak: ${item.kase.scenario}`,
				dimensions: { ...item.kase.dimensions, sim_duration_ms: DURATION_MS },
				delivery_channels: ["app"],
			});
			// A 200 without a readable body can come from the proxy while the runtime restarts: ask again.
			if (status === 200 && typeof json?.execution_id === "string") return json.execution_id;
			if (status === 422) return null;
			last = `${status} ${JSON.stringify(json).slice(0, 300)}`;
		} catch (error) {
			// the Worker is restarting
			last = String(error);
		}
		await (restarting() ?? sleep(500));
		await sleep(250);
	}
	throw new Error(`could not execute ${item.mandateId}: the last answer was ${last}`);
}

async function mandateStates(base: string, token: string, sessions: string[]): Promise<Map<string, string>> {
	const states = new Map<string, string>();
	await pool(sessions, 20, async (sessionId) => {
		const { json } = await request(base, "GET", `/api/sessions/${sessionId}/progress`, token);
		for (const mandate of (json?.mandates as Array<{ mandate_id: string; state: string }>) ?? []) {
			states.set(mandate.mandate_id, mandate.state);
		}
	});
	return states;
}

/** Exactly one terminal outcome per execution, the expected state, and a complete audit trail. */
async function verify(base: string, token: string, plan: Planned[], states: Map<string, string>) {
	let wrongState = 0;
	let multipleOutcomes = 0;
	let lostAuditRows = 0;
	const examples: Array<Record<string, unknown>> = [];
	const byScenario: Record<string, { total: number; correct: number }> = {};
	await pool(plan, 20, async (item) => {
		const state = states.get(item.mandateId) ?? "missing";
		const correct = state === item.kase.expected;
		if (!correct) wrongState++;
		const tally = byScenario[item.kase.scenario] ?? { total: 0, correct: 0 };
		byScenario[item.kase.scenario] = tally;
		tally.total++;
		if (correct) tally.correct++;
		if (!item.executionId) return;
		const { json } = await request(base, "GET", `/api/executions/${item.executionId}`, token);
		const timeline =
			(json?.timeline as Array<{ event: string; detail: { stage?: number; status?: string } }>) ?? [];
		const stages = (json?.stages as Array<{ stage: number; status: string }>) ?? [];
		const outcomes = timeline.filter((row) => row.event === "outcome" || row.event === "late_success").length;
		const timeouts = timeline.filter((row) => row.event === "timeout").length;
		if (outcomes + timeouts !== 1) {
			multipleOutcomes++;
			if (examples.length < 5) {
				const progress = await request(base, "GET", `/api/sessions/${item.sessionId}/progress`, token);
				const inDo = (
					(progress.json?.mandates as Array<{ mandate_id: string; execution_id: string }>) ?? []
				).find((m) => m.mandate_id === item.mandateId);
				// Any write to the session flushes its outbox: is the row late, or gone?
				await request(base, "POST", `/api/sessions/${item.sessionId}/stages`, token, {
					mandate_id: `${item.mandateId}-poke`,
					stage: 1,
					status: "active",
				});
				const again = await request(base, "GET", `/api/executions/${item.executionId}`, token);
				examples.push({
					mandate: item.mandateId,
					scenario: item.kase.scenario,
					state,
					http: json === null ? "no json" : "ok",
					events: timeline.map((row) => row.event),
					execution_returned: item.executionId,
					execution_in_do: inDo?.execution_id,
					after_poke: (again.json?.timeline as unknown[] | undefined)?.length ?? again.status,
				});
			}
		}
		// Every stage the mandate reached has its transition in the audit trail, and so does the dispatch.
		const audited = new Set(
			timeline
				.filter((row) => row.event === "stage")
				.map((row) => `${row.detail.stage}:${row.detail.status}`),
		);
		for (const stage of stages) if (!audited.has(`${stage.stage}:${stage.status}`)) lostAuditRows++;
		if (!timeline.some((row) => row.event === "dispatched")) lostAuditRows++;
		if (outcomes + timeouts === 0) lostAuditRows++;
	});
	if (examples.length > 0) console.log(`[soak] examples: ${JSON.stringify(examples)}`);
	return {
		wrong_state: wrongState,
		not_exactly_one_outcome: multipleOutcomes,
		lost_audit_rows: lostAuditRows,
		by_scenario: byScenario,
	};
}
