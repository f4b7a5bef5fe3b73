import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { SignJWT } from "jose";
import { Webhook } from "standardwebhooks";
import { startObeGeeSim } from "../sim/obegee.ts";
import { Phone } from "./phone.ts";
import { writeReport } from "./report.ts";
import { freePort, HOST, type RunningWorker, randomSecrets, startWrangler } from "./stack.ts";
import { type Distribution, distribution, pool } from "./stats.ts";

/**
 * `npm run bench`: the Worker and the simulated ObeGee run locally in workerd (`wrangler dev`),
 * real WebSocket phones run here in Node, and every latency and throughput figure is measured
 * beside the floor — a bare Durable Object forwarding a posted message to its sockets — under the
 * same load in the same run (DESIGN.md, "Performance"; issue 6).
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SIZES = [1, 50, 200];
const PHONES_PER_SESSION = 2;
const ROUNDS = 5;
/** Share of phones that drop and resume during each round at the largest size. */
const RECONNECT_SHARE = 0.2;

type Secrets = ReturnType<typeof randomSecrets>;

interface LatencyResult {
	sessions: number;
	service: Distribution;
	floor: Distribution;
	ratio_p99: number;
}

function log(line: string) {
	console.log(`[bench] ${line}`);
}

async function token(secrets: Secrets, sid: string): Promise<string> {
	return new SignJWT({ sid })
		.setProtectedHeader({ alg: "HS256" })
		.setSubject("bench")
		.setExpirationTime("2h")
		.sign(new TextEncoder().encode(secrets.SESSION_TOKEN_SECRET));
}

async function postJson(url: string, body: unknown, bearer: string): Promise<Record<string, unknown>> {
	const response = await fetch(url, {
		method: "POST",
		headers: { "Content-Type": "application/json", Authorization: `Bearer ${bearer}` },
		body: JSON.stringify(body),
	});
	const json = (await response.json()) as Record<string, unknown>;
	if (!response.ok) throw new Error(`${url} answered ${response.status}: ${JSON.stringify(json)}`);
	return json;
}

const isStage =
	(mandateId: string, stage: number, status: string) => (f: { frame: Record<string, unknown> }) => {
		const data = f.frame.data as { mandate_id?: string; stage?: number; status?: string } | undefined;
		return (
			f.frame.event === "pipeline_stage" &&
			data?.mandate_id === mandateId &&
			data.stage === stage &&
			data.status === status
		);
	};

/** Signal → phone on the real service: a signed delivery webhook completes a running mandate. */
async function serviceLatency(service: RunningWorker, secrets: Secrets, sessions: number, runId: string) {
	const signer = new Webhook(secrets.WEBHOOK_SECRET);
	const ids = Array.from({ length: sessions }, (_, i) => `bench-${runId}-${sessions}-${i}`);
	const phones = await pool(ids, 25, async (sid) => {
		const url = `${service.url.replace("http", "ws")}/api/sessions/${sid}/ws?token=${await token(secrets, sid)}`;
		return Promise.all(
			Array.from({ length: PHONES_PER_SESSION }, async () => {
				const phone = new Phone(url);
				await phone.connect();
				return phone;
			}),
		);
	});
	const samples: number[] = [];
	const reconnecting = sessions === Math.max(...SIZES);
	for (let round = 0; round < ROUNDS; round++) {
		const executions = await pool(ids, 25, async (sid, i) => {
			const mandateId = `mio-${runId}-${sessions}-${i}-${round}`;
			const { execution_id } = (await postJson(
				`${service.url}/api/mandate/execute`,
				{
					session_id: sid,
					mandate_id: mandateId,
					tenant_id: "tenant_bench",
					intent: "Send weekly report to team",
					dimensions: { sim_scenario: "manual" },
					delivery_channels: ["email"],
				},
				secrets.SERVICE_TOKEN,
			)) as { execution_id: string };
			return { mandateId, executionId: execution_id };
		});
		await Promise.all(
			phones
				.flat()
				.map((phone, i) =>
					phone.waitFor(
						isStage(executions[Math.floor(i / PHONES_PER_SESSION)]?.mandateId ?? "", 9, "active"),
					),
				),
		);
		// Phones that drop and resume during the round are audited for loss, not timed.
		const dropping = new Set(reconnecting ? phones.flat().filter(() => Math.random() < RECONNECT_SHARE) : []);
		const drops = [...dropping].map(async (phone) => {
			await sleep(Math.random() * 20);
			await phone.reconnect();
		});
		const sent = await Promise.all(
			executions.map(async ({ executionId }) => {
				const body = JSON.stringify({
					execution_id: executionId,
					status: "COMPLETED",
					delivered_to: ["email"],
					summary: "Sent",
				});
				const id = `msg_${executionId}`;
				const now = new Date();
				const at = performance.now();
				const response = await fetch(`${service.url}/api/dispatch/delivery-webhook`, {
					method: "POST",
					headers: {
						"Content-Type": "application/json",
						"webhook-id": id,
						"webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
						"webhook-signature": signer.sign(id, now, body),
					},
					body,
				});
				await response.body?.cancel();
				return at;
			}),
		);
		await Promise.all(drops);
		await Promise.all(
			phones.map((pair, i) =>
				Promise.all(
					pair.map(async (phone) => {
						const frame = await phone.waitFor(isStage(executions[i]?.mandateId ?? "", 10, "completed"));
						if (!dropping.has(phone)) samples.push(frame.at - (sent[i] ?? 0));
					}),
				),
			),
		);
	}
	const finalSeqs = await pool(ids, 25, async (sid) => {
		const response = await fetch(`${service.url}/api/sessions/${sid}/progress`, {
			headers: { Authorization: `Bearer ${secrets.SERVICE_TOKEN}` },
		});
		return ((await response.json()) as { seq: number }).seq;
	});
	const audit = { lost: 0, duplicated: 0, out_of_order: 0, reconnects: 0, events: 0 };
	phones.forEach((pair, i) => {
		for (const phone of pair) {
			const { lost, duplicated } = phone.audit(finalSeqs[i] ?? 0);
			audit.lost += lost;
			audit.duplicated += duplicated;
			audit.out_of_order += phone.outOfOrder;
			audit.reconnects += phone.reconnects;
			audit.events += phone.seqs.length;
			phone.close();
		}
	});
	return { samples, audit };
}

/** The floor: the same fan-out with nothing but a Durable Object forwarding a posted message. */
async function floorLatency(floor: RunningWorker, sessions: number, runId: string): Promise<number[]> {
	const rooms = Array.from({ length: sessions }, (_, i) => `room-${runId}-${sessions}-${i}`);
	const phones = await pool(rooms, 25, async (room) =>
		Promise.all(
			Array.from({ length: PHONES_PER_SESSION }, async () => {
				const phone = new Phone(`${floor.url.replace("http", "ws")}/rooms/${room}/ws?x=1`);
				await phone.connect();
				return phone;
			}),
		),
	);
	const samples: number[] = [];
	for (let round = 0; round < ROUNDS; round++) {
		const message = JSON.stringify({ event: "pipeline_stage", seq: round + 1, data: { stage: 10, round } });
		const sent = await Promise.all(
			rooms.map(async (room) => {
				const at = performance.now();
				const response = await fetch(`${floor.url}/rooms/${room}`, { method: "POST", body: message });
				await response.body?.cancel();
				return at;
			}),
		);
		await Promise.all(
			phones.map((pair, i) =>
				Promise.all(
					pair.map(async (phone) => {
						const frame = await phone.waitFor((f) => f.frame.seq === round + 1);
						samples.push(frame.at - (sent[i] ?? 0));
					}),
				),
			),
		);
	}
	for (const phone of phones.flat()) phone.close();
	return samples;
}

interface MetricLine {
	metric: string;
	session_id: string;
	rows_written?: number;
	events?: number;
	frames_sent?: number;
	d1_statements?: number;
	d1_rows_written?: number;
}

/** What one execution costs: frames, ObeGee calls, D1 writes, alarm wake-ups and SQLite rows. */
async function perExecutionCosts(
	service: RunningWorker,
	secrets: Secrets,
	simUrl: string,
	metrics: MetricLine[],
	runId: string,
	options: { executions: number; durationMs: number; label: string },
) {
	const ids = Array.from({ length: options.executions }, (_, i) => `cost-${runId}-${options.label}-${i}`);
	const phones = await pool(ids, 25, async (sid) => {
		const phone = new Phone(
			`${service.url.replace("http", "ws")}/api/sessions/${sid}/ws?token=${await token(secrets, sid)}`,
		);
		await phone.connect();
		return phone;
	});
	const executionIds = await pool(ids, 25, async (sid, i) => {
		const mandateId = `mio-${sid}`;
		for (const stage of [1, 2, 3]) {
			await postJson(
				`${service.url}/api/sessions/${sid}/stages`,
				{ mandate_id: mandateId, stage, status: "completed" },
				secrets.SERVICE_TOKEN,
			);
		}
		const { execution_id } = (await postJson(
			`${service.url}/api/mandate/execute`,
			{
				session_id: sid,
				mandate_id: mandateId,
				tenant_id: "tenant_bench",
				intent: "Send weekly report to team",
				dimensions: { sim_scenario: "happy", sim_duration_ms: options.durationMs },
				delivery_channels: ["email"],
			},
			secrets.SERVICE_TOKEN,
		)) as { execution_id: string };
		await phones[i]?.waitFor(isStage(mandateId, 10, "completed"), options.durationMs + 30_000);
		return execution_id;
	});
	await sleep(1_000);
	const calls = (await (await fetch(`${simUrl}/__sim/calls`)).json()) as { status: Record<string, number> };
	const own = metrics.filter((line) => ids.includes(line.session_id));
	const sum = (key: keyof MetricLine) => own.reduce((total, line) => total + (Number(line[key]) || 0), 0);
	const frames = phones.reduce((total, phone) => total + phone.frames.length, 0);
	for (const phone of phones) phone.close();
	const per = (value: number) => Math.round((value / options.executions) * 10) / 10;
	return {
		label: options.label,
		execution_ms: options.durationMs,
		executions: options.executions,
		frames_per_phone: per(frames),
		obegee_calls: per(
			options.executions + executionIds.reduce((total, id) => total + (calls.status[id] ?? 0), 0),
		),
		alarm_wakeups: per(own.filter((line) => line.metric === "alarm").length),
		sqlite_rows_written: per(sum("rows_written")),
		events_logged: per(sum("events")),
		d1_statements: per(sum("d1_statements")),
		d1_rows_written: per(sum("d1_rows_written")),
		d1_batches: per(
			own.filter((line) => line.metric === "session_flush" && (line.d1_statements ?? 0) > 0).length,
		),
	};
}

function bundleSize(): { bytes: number; gzip: number } {
	const outdir = mkdtempSync(join(tmpdir(), "myndlens-bundle-"));
	try {
		execFileSync(
			process.execPath,
			["node_modules/wrangler/bin/wrangler.js", "deploy", "--dry-run", "--outdir", outdir],
			{
				cwd: ROOT,
				env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
				stdio: "pipe",
			},
		);
		const code = readFileSync(join(outdir, "index.js"));
		return { bytes: code.length, gzip: gzipSync(code).length };
	} finally {
		rmSync(outdir, { recursive: true, force: true });
	}
}

async function main() {
	const started = performance.now();
	const secrets = randomSecrets();
	const runId = Date.now().toString(36);
	const servicePort = await freePort();
	const sim = await startObeGeeSim({
		port: 0,
		apiToken: secrets.OBEGEE_API_TOKEN,
		webhookSecret: secrets.WEBHOOK_SECRET,
		webhookUrl: `http://${HOST}:${servicePort}/api/dispatch/delivery-webhook`,
	});
	log("starting the Worker and the floor in workerd (wrangler dev)");
	const [service, floor] = await Promise.all([
		startWrangler({
			root: ROOT,
			config: "wrangler.toml",
			port: servicePort,
			migrations: true,
			readyPath: "/health",
			vars: { ...secrets, OBEGEE_BASE_URL: sim.url, POLL_INTERVAL_MS: "2000", METRICS_LOG: "true" },
		}),
		startWrangler({ root: ROOT, config: "bench/floor/wrangler.toml", readyPath: "/rooms/warmup", vars: {} }),
	]);
	const metrics: MetricLine[] = [];
	service.onLine((line) => {
		const start = line.indexOf('{"metric"');
		if (start >= 0) {
			try {
				metrics.push(JSON.parse(line.slice(start)) as MetricLine);
			} catch {
				// a line cut by the terminal; not ours to count
			}
		}
	});
	try {
		// Warm both up so the first size does not measure compilation.
		await serviceLatency(service, secrets, 2, `${runId}w`);
		await floorLatency(floor, 2, `${runId}w`);

		const latency: LatencyResult[] = [];
		let correctness = { lost: 0, duplicated: 0, out_of_order: 0, reconnects: 0, events: 0 };
		for (const sessions of SIZES) {
			log(`latency at ${sessions} session(s) × ${PHONES_PER_SESSION} phones, ${ROUNDS} rounds`);
			const { samples, audit } = await serviceLatency(service, secrets, sessions, runId);
			const floorSamples = await floorLatency(floor, sessions, runId);
			const result = {
				sessions,
				service: distribution(samples),
				floor: distribution(floorSamples),
				ratio_p99: 0,
			};
			result.ratio_p99 = Math.round((result.service.p99 / Math.max(result.floor.p99, 0.01)) * 100) / 100;
			latency.push(result);
			log(
				`  service p50 ${result.service.p50} p99 ${result.service.p99} ms · floor p50 ${result.floor.p50} p99 ${result.floor.p99} ms`,
			);
			if (sessions === Math.max(...SIZES)) correctness = audit;
		}
		log("per-execution costs (6 s and 30 s executions, ObeGee polling every 2 s)");
		const costs = await Promise.all([
			perExecutionCosts(service, secrets, sim.url, metrics, runId, {
				executions: 20,
				durationMs: 6_000,
				label: "6s",
			}),
			perExecutionCosts(service, secrets, sim.url, metrics, runId, {
				executions: 5,
				durationMs: 30_000,
				label: "30s",
			}),
		]);
		const bundle = bundleSize();
		const report = {
			generated_at: new Date().toISOString(),
			machine: "2-core shared sandbox, workerd via wrangler dev, phones in Node on loopback",
			duration_s: Math.round((performance.now() - started) / 1000),
			latency,
			correctness,
			costs,
			bundle,
		};
		writeReport(ROOT, report);
		log(`done in ${report.duration_s} s; results in bench/results/`);
	} finally {
		await Promise.all([service.stop(), floor.stop(), sim.close()]);
	}
}

main().catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
