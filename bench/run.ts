import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { Webhook } from "standardwebhooks";
import { type WebSocket as NodeWebSocket, WebSocketServer } from "ws";
import { startObeGeeSim } from "../sim/obegee.ts";
import { pace, splitAnswer } from "../sim/openclaw.ts";
import { mintMobileToken } from "../src/auth/mobile-token.ts";
import {
	freePort,
	HOST,
	isolatedWorkerConfig,
	type RunningWorker,
	randomSecrets,
	startLocalWorker,
} from "../tools/local-worker.ts";
import { answerEvents, streamedAnswer } from "./answer.ts";
import { Gateways } from "./gateways.ts";
import { growthBench, growthMarkdown } from "./growth.ts";
import { Phone } from "./phone.ts";
import { pushBench } from "./push.ts";
import { type LatencyResult, pushMarkdown, writeReport, writeSoakReport } from "./report.ts";
import { soak } from "./soak.ts";
import { type Distribution, distribution, pool } from "./stats.ts";
import {
	collectWork,
	d1Growth,
	MINIMUM_WEBHOOK_WORK,
	summarizeWork,
	type WebhookWork,
	type WorkLine,
	webhookWork,
	workByKind,
} from "./work.ts";

/**
 * `npm run bench`: the Worker and the simulated ObeGee run locally in workerd (`wrangler dev`),
 * real WebSocket phones run here in Node, and every latency and throughput figure is measured
 * beside the floor — a bare Durable Object forwarding a posted message to its sockets — under the
 * same load in the same run (DESIGN.md, "Performance"; issue 6). Last, completion pushes to 1,000
 * devices on a Worker of their own beside the push provider simulators (bench/push.ts, issue 10).
 * `npm run bench -- --only push` runs that scenario alone; `-- --soak` the soak (bench/soak.ts).
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
/** BENCH_SIZES (e.g. "1,50") and BENCH_ROUNDS narrow a latency run for an experiment; the report uses the defaults. */
const SIZES = (process.env.BENCH_SIZES ?? "1,50,200").split(",").map(Number);
const PHONES_PER_SESSION = 2;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/**
 * Before each signal of a settled round, the bench waits this long per session: the service has
 * finished the round's earlier work (the dispatches' and the agent runs' D1 copies, unwatches, the
 * runs' last events) when the signal arrives, as a floor's object has when its signal arrives. At 200
 * sessions × 2 phones the service's workerd was busy for about a second after a run's end.
 */
const SETTLE_MS_PER_SESSION = 25;
/**
 * Share of phones that drop and resume during each audit round. At the largest size, ROUNDS more
 * rounds follow the timed ones, with phones dropping, to audit loss under reconnects; they are not
 * timed, so the service is timed under the same load as the floors, whose phones never drop.
 */
const RECONNECT_SHARE = 0.2;
/** Sessions share tenants (one Gateway DO and gateway connection per tenant), as real users do. */
const SESSIONS_PER_TENANT = 20;

/** The tool step the latency run times: only the gateway can produce this sub-status. */
const GATEWAY_SIGNAL = "Read from BENCH.md";

const tenantOf = (index: number) => `tenant_bench_${Math.floor(index / SESSIONS_PER_TENANT)}`;

type Secrets = ReturnType<typeof randomSecrets>;

function log(line: string) {
	console.log(`[bench] ${line}`);
}

function token(secrets: Secrets, sid: string): Promise<string> {
	return mintMobileToken(secrets.SESSION_TOKEN_SECRET, { sid, sub: "bench", ttlSeconds: 2 * 60 * 60 });
}

/** A phone on a session of the real service, connected with a fresh mobile token. */
async function connectPhone(service: RunningWorker, secrets: Secrets, sessionId: string): Promise<Phone> {
	const phone = new Phone(
		`${service.url.replace("http", "ws")}/api/sessions/${sessionId}/ws?token=${await token(secrets, sessionId)}`,
	);
	await phone.connect();
	return phone;
}

async function postJson(url: string, body: unknown, bearer: string): Promise<Record<string, unknown>> {
	const response = await fetch(url, {
		method: "POST",
		headers: { "Content-Type": "application/json", Authorization: `Bearer ${bearer}` },
		body: JSON.stringify(body),
	});
	const text = await response.text();
	if (!response.ok) throw new Error(`${url} answered ${response.status}: ${text.slice(0, 300)}`);
	return JSON.parse(text) as Record<string, unknown>;
}

/** Executes that answered 503 `dispatch_pending` first and were asked again (logged with the run). */
let dispatchPendingRetries = 0;

/**
 * `POST /api/mandate/execute`, asked again while it answers 503 `dispatch_pending`: ObeGee's simulator
 * did not answer in time on the loaded machine, the session's alarm sends the dispatch again, and
 * execute is idempotent per mandate, so asking again returns the execution once it is dispatched.
 */
async function executeMandate(service: RunningWorker, secrets: Secrets, body: Record<string, unknown>) {
	for (let attempt = 0; ; attempt++) {
		const response = await fetch(`${service.url}/api/mandate/execute`, {
			method: "POST",
			headers: { "Content-Type": "application/json", Authorization: `Bearer ${secrets.SERVICE_TOKEN}` },
			body: JSON.stringify(body),
		});
		const text = await response.text();
		if (response.ok) return JSON.parse(text) as { execution_id: string };
		if (response.status !== 503 || !text.includes("dispatch_pending") || attempt >= 30) {
			throw new Error(`execute answered ${response.status}: ${text.slice(0, 300)}`);
		}
		dispatchPendingRetries++;
		await sleep(2_000);
	}
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

/**
 * Signal → phone on the real service, two signals per round: the tenant's gateway emits the
 * agent's first tool step (→ its progress frame), then a signed delivery webhook
 * completes the mandate (→ the stage-10 frame).
 */
async function serviceLatency(
	service: RunningWorker,
	gateways: Gateways,
	secrets: Secrets,
	sessions: number,
	runId: string,
) {
	const signer = new Webhook(secrets.WEBHOOK_SECRET);
	const ids = Array.from({ length: sessions }, (_, i) => `bench-${runId}-${sessions}-${i}`);
	const phones = await pool(ids, 25, (sid) =>
		Promise.all(Array.from({ length: PHONES_PER_SESSION }, () => connectPhone(service, secrets, sid))),
	);
	// Each tenant's gateway is registered before its first mandate, as a real tenant's is.
	await Promise.all([...new Set(ids.map((_, i) => tenantOf(i)))].map((tenant) => gateways.forTenant(tenant)));
	// Timed back to back (each signal right after the previous step's frames), then settled.
	const samples: number[] = [];
	const gatewaySamples: number[] = [];
	const settledSamples: number[] = [];
	const settledGatewaySamples: number[] = [];
	const auditRounds = sessions === Math.max(...SIZES) ? ROUNDS : 0;
	for (let round = 0; round < 2 * ROUNDS + auditRounds; round++) {
		const settled = round >= ROUNDS && round < 2 * ROUNDS;
		const auditing = round >= 2 * ROUNDS;
		const timed = (back: number[], calm: number[]) => (auditing ? [] : settled ? calm : back);
		const settle = () => (settled ? sleep(SETTLE_MS_PER_SESSION * sessions) : Promise.resolve());
		const executions = await pool(ids, 25, async (sid, i) => {
			const mandateId = `mio-${runId}-${sessions}-${i}-${round}`;
			const { execution_id } = await executeMandate(service, secrets, {
				session_id: sid,
				mandate_id: mandateId,
				tenant_id: tenantOf(i),
				intent: "Send weekly report to team",
				dimensions: { sim_scenario: "manual" },
				delivery_channels: ["email"],
			});
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
		const sims = await Promise.all(ids.map((_, i) => gateways.connected(tenantOf(i))));
		// A Gateway DO records a watch as the execution starts; give the last watch a moment.
		await sleep(100);
		await settle();
		// Timed from the tool step's own send (the run's lifecycle events go 1 ms apart before it).
		const signalSent: number[] = [];
		executions.forEach(({ executionId }, i) => {
			void sims[i]?.run({
				runId: executionId,
				answer: "Report sent to 4 people.",
				tools: [{ name: "read", title: GATEWAY_SIGNAL }],
				paceMs: 1,
				onAgentEvent: (stream, data) => {
					if (stream === "item" && data.phase === "start") signalSent[i] = performance.now();
				},
			});
		});
		await Promise.all(
			phones.map((pair, i) =>
				Promise.all(
					pair.map(async (phone) => {
						const executionId = executions[i]?.executionId;
						const started = await phone.waitFor(
							(f) =>
								f.frame.type === "progress" &&
								f.frame.execution_id === executionId &&
								f.frame.status === GATEWAY_SIGNAL,
						);
						timed(gatewaySamples, settledGatewaySamples).push(started.at - (signalSent[i] ?? Number.NaN));
						await phone.waitFor(isStage(executions[i]?.mandateId ?? "", 9, "completed"));
					}),
				),
			),
		);
		await settle();
		// In an audit round phones drop and resume, and the round is audited for loss, not timed.
		const dropping = new Set(auditing ? phones.flat().filter(() => Math.random() < RECONNECT_SHARE) : []);
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
						timed(samples, settledSamples).push(frame.at - (sent[i] ?? 0));
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
	return { samples, gatewaySamples, settledSamples, settledGatewaySamples, audit };
}

/**
 * The floor: the same fan-out with nothing but a Durable Object forwarding a posted message; the
 * durable floor first writes it to SQLite; the alarm floor also arms the object's alarm; the
 * work-matched floor also runs the service's measured work per webhook (`work`) and copies to D1 (on
 * the same cores); the minimum-work floor does the same with the least the guarantees need
 * (MINIMUM_WEBHOOK_WORK as `work`); the worker-matched floor also checks a signed delivery webhook
 * in its Worker, as the service's route does, and reaches its object by RPC (`signer` signs its
 * posts); the relay floor is the durable floor reached through one more Durable Object, shared by
 * SESSIONS_PER_TENANT rooms as a tenant's Gateway DO is by its sessions (the gateway path's extra hop).
 */
async function floorLatency(
	floor: RunningWorker,
	sessions: number,
	runId: string,
	mode: "bare" | "durable" | "alarm" | "matched" | "minimum" | "worker" | "relay" = "bare",
	work: WebhookWork = { sql: 0, rows: 0, d1: 0 },
	signer?: Webhook,
): Promise<number[]> {
	const rooms = Array.from({ length: sessions }, (_, i) => `room-${runId}-${sessions}-${i}-${mode}`);
	const matched = `?durable&alarm&sql=${work.sql}&rows=${work.rows}&d1=${work.d1}`;
	const query = {
		bare: "",
		durable: "?durable",
		alarm: "?durable&alarm",
		matched,
		minimum: matched,
		worker: `${matched}&verify&rpc`,
		relay: "?durable&relay=",
	}[mode];
	const roomQuery = (i: number) =>
		mode === "relay" ? `${query}relay-${runId}-${sessions}-${Math.floor(i / SESSIONS_PER_TENANT)}` : query;
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
		// The worker-matched floor's signal is a delivery webhook as ObeGee signs it (plus the seq phones wait for).
		const message =
			mode === "worker"
				? JSON.stringify({
						execution_id: `exec_floor_${round}`,
						status: "COMPLETED",
						delivered_to: ["email"],
						summary: "Sent",
						seq: round + 1,
					})
				: JSON.stringify({ event: "pipeline_stage", seq: round + 1, data: { stage: 10, round } });
		const sent = await Promise.all(
			rooms.map(async (room, i) => {
				const headers: Record<string, string> = {};
				const at = performance.now();
				if (signer) {
					const id = `msg_${room}_${round}`;
					const now = new Date();
					headers["webhook-id"] = id;
					headers["webhook-timestamp"] = String(Math.floor(now.getTime() / 1000));
					headers["webhook-signature"] = signer.sign(id, now, message);
				}
				const response = await fetch(`${floor.url}/rooms/${room}${roomQuery(i)}`, {
					method: "POST",
					headers,
					body: message,
				});
				if (!response.ok) throw new Error(`floor ${mode}: ${response.status} ${await response.text()}`);
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

/**
 * What one execution costs, from the work every entry point reported (bench/work.ts): requests,
 * SQLite and D1 statements and rows, JSON calls, the time each object could not hibernate, storage.
 */
async function perExecutionCosts(
	service: RunningWorker,
	secrets: Secrets,
	simUrl: string,
	metrics: WorkLine[],
	runId: string,
	options: { executions: number; durationMs: number; label: string; gateways?: Gateways },
) {
	const ids = Array.from({ length: options.executions }, (_, i) => `cost-${runId}-${options.label}-${i}`);
	const from = metrics.length;
	// The tenant's gateway is registered before its first mandate, as a real tenant's is.
	if (options.gateways) await options.gateways.forTenant(`tenant_cost_${options.label}`);
	const phones = await pool(ids, 25, (sid) => connectPhone(service, secrets, sid));
	const executionIds = await pool(ids, 25, async (sid, i) => {
		const mandateId = `mio-${sid}`;
		for (const stage of [1, 2, 3]) {
			await postJson(
				`${service.url}/api/sessions/${sid}/stages`,
				{ mandate_id: mandateId, stage, status: "completed" },
				secrets.SERVICE_TOKEN,
			);
		}
		const { execution_id } = await executeMandate(service, secrets, {
			session_id: sid,
			mandate_id: mandateId,
			tenant_id: `tenant_cost_${options.label}`,
			intent: "Send weekly report to team",
			dimensions: { sim_scenario: "happy", sim_duration_ms: options.durationMs },
			delivery_channels: ["email"],
		});
		if (options.gateways) {
			// The agent streams its answer over most of the run, about 10 pieces a second.
			const gateway = await options.gateways.connected(`tenant_cost_${options.label}`);
			await sleep(100);
			const pieces = Math.floor((options.durationMs * 0.8) / 100);
			void gateway.run({ runId: execution_id, answer: "word ".repeat(pieces * 2), paceMs: 98 });
		}
		await phones[i]?.waitFor(isStage(mandateId, 10, "completed"), options.durationMs + 30_000);
		return execution_id;
	});
	for (const phone of phones) phone.close();
	// The phones' goodbyes, the last flushes and the Gateway DO's idle close (5 s) belong to the run.
	await sleep(7_000);
	const calls = (await (await fetch(`${simUrl}/__sim/calls`)).json()) as { status: Record<string, number> };
	const frames = phones.reduce((total, phone) => total + phone.frames.length, 0);
	const per = (value: number) => Math.round((value / options.executions) * 10) / 10;
	const work = summarizeWork(metrics, ids, options.executions, {
		tenants: [`tenant_cost_${options.label}`],
		d1Bytes: d1Growth(metrics, from),
		from,
	});
	return {
		label: options.label,
		execution_ms: options.durationMs,
		executions: options.executions,
		frames_per_phone: per(frames),
		obegee_calls: per(
			options.executions + executionIds.reduce((total, id) => total + (calls.status[id] ?? 0), 0),
		),
		alarm_wakeups: per(
			metrics.filter(
				(line) => line.object === "session" && line.kind === "alarm" && ids.includes(line.session_id ?? ""),
			).length,
		),
		...work.per_mandate,
		cost_per_million: work.cost_per_million,
	};
}

/** The three per-execution scenarios, one after another (the D1 database's growth is one scenario's). */
async function costScenarios(
	service: RunningWorker,
	secrets: Secrets,
	simUrl: string,
	metrics: WorkLine[],
	runId: string,
	gateways: Gateways,
) {
	return [
		await perExecutionCosts(service, secrets, simUrl, metrics, runId, {
			executions: 20,
			durationMs: 6_000,
			label: "6s",
		}),
		await perExecutionCosts(service, secrets, simUrl, metrics, runId, {
			executions: 5,
			durationMs: 30_000,
			label: "30s",
		}),
		await perExecutionCosts(service, secrets, simUrl, metrics, runId, {
			executions: 5,
			durationMs: 30_000,
			label: "30s-stream",
			gateways,
		}),
	];
}

/**
 * Streaming: several executions stream long answers at once as fast as the gateway sends them.
 * Chunks delivered per second (each gateway delta is one chunk), the answer checked whole on every
 * phone, and beside it the floor forwarding as many posted messages.
 */
async function streaming(
	service: RunningWorker,
	gateways: Gateways,
	floor: RunningWorker,
	secrets: Secrets,
	runId: string,
	options: { executions: number; pieces: number; paceMs: number; label: string },
) {
	const ids = Array.from({ length: options.executions }, (_, i) => `stream-${runId}-${options.label}-${i}`);
	const phones = await pool(ids, 25, (sid) => connectPhone(service, secrets, sid));
	await Promise.all([0, 1, 2, 3].map((n) => gateways.forTenant(`tenant_stream_${options.label}_${n}`)));
	const executions = await pool(ids, 25, async (sid, i) => {
		const mandateId = `mio-${sid}`;
		const { execution_id } = await executeMandate(service, secrets, {
			session_id: sid,
			mandate_id: mandateId,
			tenant_id: `tenant_stream_${options.label}_${i % 4}`,
			intent: "Write a long answer",
			dimensions: { sim_scenario: "manual" },
		});
		return { mandateId, executionId: execution_id };
	});
	const sims = await Promise.all(
		ids.map((_, i) => gateways.connected(`tenant_stream_${options.label}_${i % 4}`)),
	);
	await sleep(100);
	const answer = streamedAnswer(options.pieces);
	const chunkTexts = (phone: Phone) => phone.frames.filter((f) => f.frame.type === "response_chunk");
	const started = performance.now();
	const finished = await Promise.all(
		executions.map(async ({ executionId, mandateId }, i) => {
			const emitted = sims[i]
				?.run({ runId: executionId, answer, tools: [], paceMs: options.paceMs })
				.then(() => performance.now());
			const phone = phones[i] as Phone;
			await phone.waitFor(isStage(mandateId, 9, "completed"), 120_000);
			const text = () =>
				chunkTexts(phone)
					.map((f) => f.frame.chunk)
					.join("");
			// The last piece may arrive after lifecycle end (a late chat delta): wait for the whole answer.
			const deadline = Date.now() + 10_000;
			while (text().length < answer.length && Date.now() < deadline) await sleep(20);
			return {
				emittedAt: (await emitted) ?? performance.now(),
				whole: text() === answer,
				frames: chunkTexts(phone).length,
				last: chunkTexts(phone).at(-1)?.at ?? performance.now(),
			};
		}),
	);
	const elapsed = (Math.max(...finished.map((f) => f.last)) - started) / 1000;
	const perExecution = splitAnswer(answer).length;
	const chunks = options.executions * perExecution;
	const frames = finished.reduce((total, f) => total + f.frames, 0);
	for (const phone of phones) phone.close();

	// The floor: a source socket per room streams as many messages at the gateway simulator's
	// pace (one turn per piece) and the bare DO forwards each one to the phone.
	const floorRate = await floorStream(floor, ids, perExecution, options.paceMs);
	// The upstream floor: each room reads the gateway's own events (the agent's event per piece and
	// the throttled chat deltas, each repeating the answer so far, as the simulator sends them) on an
	// outbound socket of its own, as a Gateway DO does, parses each, and sends the phone the pieces
	// so far on the service's cadence.
	const upstreamRate = await floorUpstream(floor, ids, perExecution, options.paceMs, () => {
		const gateway = answerEvents(
			{ runId: "floor-run", sessionKey: "agent:main:floor" },
			"floor-item:2",
			answer,
		);
		let seq = 1;
		return (n) => {
			const frames = gateway.events(n, seq);
			seq += frames.length;
			return frames;
		};
	});
	const rate = Math.round(chunks / elapsed);
	const offered = Math.round(chunks / ((Math.max(...finished.map((f) => f.emittedAt)) - started) / 1000));
	return {
		label: options.label,
		executions: options.executions,
		chunks_per_execution: perExecution,
		offered_chunks_per_s: offered,
		chunks_per_s_aggregate: rate,
		chunks_per_s_per_execution: Math.round(rate / options.executions),
		floor_messages_per_s_aggregate: floorRate,
		ratio_to_floor: Math.round((rate / floorRate) * 100) / 100,
		upstream_floor_pieces_per_s_aggregate: upstreamRate,
		ratio_to_upstream_floor: Math.round((rate / upstreamRate) * 100) / 100,
		answers_whole: finished.filter((f) => f.whole).length,
		answers_lost_or_corrupted: finished.filter((f) => !f.whole).length,
		frames_per_execution: Math.round(frames / options.executions),
		chunks_per_frame: Math.round((chunks / Math.max(1, frames)) * 10) / 10,
	};
}

/** The streaming runs: three bursts of 20 executions as fast as the gateway sends, then 100 chunks/s. */
async function streamingRuns(
	service: RunningWorker,
	gateways: Gateways,
	floor: RunningWorker,
	secrets: Secrets,
	runId: string,
) {
	log("streaming: 20 executions at once, as fast as the gateway sends; then one answer at 100 chunks/s");
	const stream = [];
	// Three runs in a row: the target (2× the floor) must hold in each.
	for (const run of [1, 2, 3]) {
		stream.push(
			await streaming(service, gateways, floor, secrets, runId, {
				executions: 20,
				pieces: 600,
				paceMs: 0,
				label: `burst-${run}`,
			}),
		);
	}
	stream.push(
		await streaming(service, gateways, floor, secrets, runId, {
			executions: 1,
			pieces: 300,
			paceMs: 9,
			label: "100-per-s",
		}),
	);
	log(
		`  ${stream
			.slice(0, 3)
			.map((row) => `${row.chunks_per_s_aggregate} chunks/s (${row.ratio_to_floor}× the floor)`)
			.join(", ")}; ${stream[3]?.chunks_per_frame} chunks per frame at 100/s`,
	);
	return stream;
}

/** One phone per floor room, connected. */
function floorPhones(floor: RunningWorker, rooms: string[]): Promise<Phone[]> {
	const base = floor.url.replace("http", "ws");
	return Promise.all(
		rooms.map(async (room) => {
			const phone = new Phone(`${base}/rooms/${room}/ws?x=1`);
			await phone.connect();
			return phone;
		}),
	);
}

/**
 * Sends a stream's pieces at the gateway simulator's pace: a piece's messages together, then one
 * pause, as the simulator sends an agent event with the chat delta it brings.
 */
async function sendPieces(
	send: (message: string) => void,
	pieces: number,
	paceMs: number,
	messages: (n: number) => string[],
) {
	for (let n = 1; n <= pieces; n++) {
		for (const message of messages(n)) send(message);
		await pace(paceMs);
	}
}

/**
 * The bare floor's stream, one per execution: a source socket per room sends one message per piece
 * (at the simulator's pace) and the room forwards each to its phone, which waits for the last.
 * Returns pieces/s.
 */
async function floorStream(
	floor: RunningWorker,
	ids: string[],
	perExecution: number,
	paceMs: number,
): Promise<number> {
	const rooms = ids.map((id) => `floor-${id}`);
	const phones = await floorPhones(floor, rooms);
	const base = floor.url.replace("http", "ws");
	const sources = await Promise.all(
		rooms.map(async (room) => {
			const source = new WebSocket(`${base}/rooms/${room}/source`);
			await new Promise((resolve) => source.addEventListener("open", resolve, { once: true }));
			return source;
		}),
	);
	const started = performance.now();
	await Promise.all(
		sources.map(async (source, i) => {
			await sendPieces(
				(m) => source.send(m),
				perExecution,
				paceMs,
				(n) => [`{"seq":${n}}`],
			);
			await phones[i]?.waitFor((f) => f.frame.seq === perExecution, 60_000);
			source.close();
		}),
	);
	const elapsed = (performance.now() - started) / 1000;
	for (const phone of phones) phone.close();
	return Math.round((perExecution * ids.length) / elapsed);
}

/**
 * The upstream floor's stream, one per execution: each room opens an outbound socket to a gateway
 * played here (as a Gateway DO connects to its gateway), which sends the gateway's events (each
 * room's own `stream()`: a piece's events, at the simulator's pace); the room parses each and sends
 * its phone the pieces so far on the service's cadence (bench/floor/worker.ts). Returns pieces/s.
 */
async function floorUpstream(
	floor: RunningWorker,
	ids: string[],
	perExecution: number,
	paceMs: number,
	stream: () => (n: number) => string[],
): Promise<number> {
	const rooms = ids.map((id) => `upstream-${id}`);
	const phones = await floorPhones(floor, rooms);
	const server = new WebSocketServer({ host: HOST, port: 0 });
	await new Promise((resolve) => server.once("listening", resolve));
	const port = (server.address() as AddressInfo).port;
	const gateways = new Map<string, NodeWebSocket>();
	server.on("connection", (socket, request) => gateways.set(request.url?.slice(1) ?? "", socket));
	try {
		await Promise.all(
			rooms.map(async (room) => {
				const target = encodeURIComponent(`http://${HOST}:${port}/${room}`);
				const response = await fetch(`${floor.url}/rooms/${room}/upstream?url=${target}&n=${perExecution}`, {
					method: "POST",
				});
				if (response.status !== 204)
					throw new Error(`upstream floor: ${response.status} ${await response.text()}`);
			}),
		);
		const started = performance.now();
		await Promise.all(
			rooms.map(async (room, i) => {
				const socket = gateways.get(room);
				if (!socket) throw new Error(`upstream floor: room ${room} did not connect`);
				await sendPieces((m) => socket.send(m), perExecution, paceMs, stream());
				await phones[i]?.waitFor((f) => f.frame.seq === perExecution, 60_000);
				socket.close();
			}),
		);
		const elapsed = (performance.now() - started) / 1000;
		return Math.round((perExecution * ids.length) / elapsed);
	} finally {
		for (const phone of phones) phone.close();
		server.close();
	}
}

/** The signed webhook's work in the last full run's results, for `--only latency` (which measures none). */
function lastWebhookWork(): WebhookWork {
	const path = join(ROOT, "bench/results/latest.json");
	const last = JSON.parse(readFileSync(path, "utf8")) as { by_kind?: Parameters<typeof webhookWork>[0] };
	const work = webhookWork(last.by_kind ?? []);
	if (!work) throw new Error(`${path} has no rpc:deliverWebhook row: run the whole bench once first`);
	return work;
}

/** The commit the figures belong to (with "+changes" when the tree differs from it). */
function commitOf(): string {
	const git = (...args: string[]) => execFileSync("git", args, { cwd: ROOT, encoding: "utf8" }).trim();
	try {
		const head = git("rev-parse", "--short", "HEAD");
		return git("status", "--porcelain", "--untracked-files=no") === "" ? head : `${head}+changes`;
	} catch {
		return "unknown";
	}
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

/**
 * `only: "costs"` runs the per-execution costs alone and prints them (`npm run bench -- --only costs`);
 * `only: "latency"` the latency sizes alone (`-- --only latency`, BENCH_METERED=1 with the meter on);
 * `only: "streaming"` the streaming runs alone (`-- --only streaming`).
 */
async function main(only: "costs" | "latency" | "streaming" | null = null) {
	const started = performance.now();
	// Before anything is written to bench/results/ (those files are tracked).
	const commit = commitOf();
	const secrets = randomSecrets();
	const runId = Date.now().toString(36);
	const servicePort = await freePort();
	const sim = await startObeGeeSim({
		port: 0,
		apiToken: secrets.OBEGEE_API_TOKEN,
		webhookSecret: secrets.WEBHOOK_SECRET,
		webhookUrl: `http://${HOST}:${servicePort}/api/dispatch/delivery-webhook`,
	});
	log("bundling the Worker as it deploys, then starting it and the floor in workerd (wrangler dev)");
	const isolated = isolatedWorkerConfig(ROOT);
	/**
	 * The Worker, on the port the ObeGee simulator calls back. The costs are measured on it first, with
	 * the work meter on; latency and streaming on a second start of it with the meter off, as it runs
	 * in production (the meter logs a line per request and counts every statement).
	 */
	const startService = (metered: boolean) =>
		startLocalWorker({
			root: ROOT,
			config: isolated.config,
			port: servicePort,
			migrations: true,
			readyPath: "/health",
			vars: {
				...secrets,
				OBEGEE_BASE_URL: sim.url,
				POLL_INTERVAL_MS: "2000",
				// "trace" also lists the rows each SQLite statement wrote (BENCH_TRACE=1).
				METRICS_LOG: metered ? (process.env.BENCH_TRACE ? "trace" : "true") : "false",
			},
		});
	let [service, floor] = await Promise.all([
		startService(only === null || only === "costs" || process.env.BENCH_METERED === "1"),
		startLocalWorker({
			root: ROOT,
			config: "bench/floor/wrangler.toml",
			readyPath: "/rooms/warmup",
			vars: { WEBHOOK_SECRET: secrets.WEBHOOK_SECRET },
		}),
	]);
	let gateways = new Gateways(service.url, secrets.ADMIN_TOKEN, secrets.OPENCLAW_GATEWAY_TOKEN);
	const verbose = () => {
		if (process.env.BENCH_VERBOSE) service.onLine((line) => console.log(`[worker] ${line}`));
	};
	verbose();
	const metrics = collectWork((listener) => service.onLine(listener));
	try {
		if (only === "costs") {
			const from = metrics.length;
			const costs = await costScenarios(service, secrets, sim.url, metrics, runId, gateways);
			const written: Record<string, number> = {};
			for (const line of metrics.slice(from)) {
				for (const [query, rows] of Object.entries((line.rows_written_by ?? {}) as Record<string, number>))
					written[`${line.object} ${line.kind}: ${query}`] =
						(written[`${line.object} ${line.kind}: ${query}`] ?? 0) + rows;
			}
			console.log(
				JSON.stringify(
					{ costs, by_kind: workByKind(metrics.slice(from)), rows_written_by: written },
					null,
					2,
				),
			);
			return;
		}
		let costs: Awaited<ReturnType<typeof costScenarios>> | null = null;
		let byKind: ReturnType<typeof workByKind> = [];
		if (only === null) {
			// First, so the work-matched floors below do what the service was measured to do in this run.
			log(
				"per-execution costs (6 s and 30 s executions, ObeGee polling every 2 s, with and without the gateway)",
			);
			const costsFrom = metrics.length;
			costs = await costScenarios(service, secrets, sim.url, metrics, runId, gateways);
			byKind = workByKind(metrics.slice(costsFrom));
			// A re-asked execute is one more request in the counts: the report says how many there were.
			if (dispatchPendingRetries > 0)
				log(`costs: ${dispatchPendingRetries} execute(s) asked again after 503 dispatch_pending`);
			// The same Worker again, with the work meter off.
			await Promise.all([service.stop(), gateways.closeAll()]);
			service = await startService(false);
			gateways = new Gateways(service.url, secrets.ADMIN_TOKEN, secrets.OPENCLAW_GATEWAY_TOKEN);
			verbose();
		}
		if (only === "streaming") {
			console.log(JSON.stringify(await streamingRuns(service, gateways, floor, secrets, runId), null, 2));
			return;
		}
		const work = webhookWork(byKind) ?? lastWebhookWork();
		log(
			`the work-matched floors run ${work.sql} SQLite statements writing ${work.rows} rows and ${work.d1} D1 statements per signal`,
		);
		// Warm both up so the first size does not measure compilation.
		await serviceLatency(service, gateways, secrets, 2, `${runId}w`);
		await floorLatency(floor, 2, `${runId}w`);

		const latency: LatencyResult[] = [];
		let correctness = { lost: 0, duplicated: 0, out_of_order: 0, reconnects: 0, events: 0 };
		for (const sessions of SIZES) {
			log(`latency at ${sessions} session(s) × ${PHONES_PER_SESSION} phones, ${ROUNDS} rounds`);
			const { samples, gatewaySamples, settledSamples, settledGatewaySamples, audit } = await serviceLatency(
				service,
				gateways,
				secrets,
				sessions,
				runId,
			);
			const floorSamples = await floorLatency(floor, sessions, runId);
			const durableSamples = await floorLatency(floor, sessions, runId, "durable");
			const alarmSamples = await floorLatency(floor, sessions, runId, "alarm");
			const matchedSamples = await floorLatency(floor, sessions, runId, "matched", work);
			const workerSamples = await floorLatency(
				floor,
				sessions,
				runId,
				"worker",
				work,
				new Webhook(secrets.WEBHOOK_SECRET),
			);
			const relaySamples = await floorLatency(floor, sessions, runId, "relay");
			const minimumSamples = await floorLatency(floor, sessions, runId, "minimum", MINIMUM_WEBHOOK_WORK);
			// The reference once more, last, on rooms of its own: how far it moves within one run.
			const againSamples = await floorLatency(floor, sessions, `${runId}again`, "durable");
			const ratio = (a: Distribution, b: Distribution) =>
				Math.round((a.p99 / Math.max(b.p99, 0.01)) * 100) / 100;
			const webhook = distribution(samples);
			const agent = distribution(gatewaySamples);
			const settledWebhook = distribution(settledSamples);
			const settledAgent = distribution(settledGatewaySamples);
			const bare = distribution(floorSamples);
			const durable = distribution(durableSamples);
			const alarmed = distribution(alarmSamples);
			const matched = distribution(matchedSamples);
			const workerMatched = distribution(workerSamples);
			const relayed = distribution(relaySamples);
			const minimum = distribution(minimumSamples);
			const again = distribution(againSamples);
			latency.push({
				sessions,
				service: webhook,
				gateway: agent,
				floor: bare,
				durable_floor: durable,
				ratio_p99: ratio(webhook, bare),
				gateway_ratio_p99: ratio(agent, bare),
				durable_ratio_p99: ratio(webhook, durable),
				gateway_durable_ratio_p99: ratio(agent, durable),
				alarm_floor: alarmed,
				alarm_ratio_p99: ratio(webhook, alarmed),
				matched_floor: matched,
				matched_ratio_p99: ratio(webhook, matched),
				worker_floor: workerMatched,
				worker_ratio_p99: ratio(webhook, workerMatched),
				relay_floor: relayed,
				gateway_relay_ratio_p99: ratio(agent, relayed),
				minimum_floor: minimum,
				minimum_ratio_p99: ratio(minimum, durable),
				durable_again: again,
				durable_spread_p99: ratio(
					again.p99 > durable.p99 ? again : durable,
					again.p99 > durable.p99 ? durable : again,
				),
				settled: settledWebhook,
				settled_durable_ratio_p99: ratio(settledWebhook, durable),
				settled_worker_ratio_p99: ratio(settledWebhook, workerMatched),
				settled_gateway: settledAgent,
				settled_gateway_durable_ratio_p99: ratio(settledAgent, durable),
				settled_gateway_relay_ratio_p99: ratio(settledAgent, relayed),
			});
			log(
				`  webhook p50 ${webhook.p50} p99 ${webhook.p99} (settled ${settledWebhook.p50} / ${settledWebhook.p99}) · gateway p50 ${agent.p50} p99 ${agent.p99} (settled ${settledAgent.p50} / ${settledAgent.p99}) · floor p50 ${bare.p50} p99 ${bare.p99} · durable floor p99 ${durable.p99} · with alarm p99 ${alarmed.p99} · work-matched p99 ${matched.p99} · worker-matched p99 ${workerMatched.p99} · relay p99 ${relayed.p99} · minimum-work p99 ${minimum.p99} · durable again p99 ${again.p99} ms`,
			);
			if (sessions === Math.max(...SIZES)) correctness = audit;
		}
		if (dispatchPendingRetries > 0)
			log(`${dispatchPendingRetries} execute(s) in all asked again after 503 dispatch_pending`);
		if (only === "latency") {
			console.log(JSON.stringify({ latency, correctness }, null, 2));
			return;
		}
		const stream = await streamingRuns(service, gateways, floor, secrets, runId);
		const bundle = bundleSize();
		// The push scenario runs on a Worker of its own (own D1, the push simulators), beside the same floor.
		await service.stop();
		log("completion pushes: 1,000 devices, outcomes by webhook with no phone connected");
		const push = await pushBench(ROOT, isolated.config, floor);
		log("growth: answers of 1, 10 and 100 KB; sessions with 1, 10 and 100 finished mandates");
		// A scenario that fails is reported as failed, not dropped, and the rest of the run still lands.
		const growth = await growthBench(ROOT, isolated.config).catch((error: unknown) => {
			log(`growth failed: ${String(error)}`);
			return { failed: String(error) };
		});
		log("soak: 1,000 mandates through every fault, the Worker restarted mid-run");
		const soaked = await soak(ROOT).catch((error: unknown) => {
			log(`soak failed: ${String(error)}`);
			return { failed: String(error) };
		});
		if (!("failed" in soaked)) writeSoakReport(ROOT, soaked);
		const report = {
			generated_at: new Date().toISOString(),
			commit,
			machine: "2-core shared sandbox, workerd via wrangler dev, phones in Node on loopback",
			duration_s: Math.round((performance.now() - started) / 1000),
			latency,
			streaming: stream,
			correctness,
			costs: costs ?? [],
			by_kind: byKind,
			webhook_work: work,
			dispatch_pending_retries: dispatchPendingRetries,
			bundle,
			push,
			growth,
			soak: soaked,
		};
		writeReport(ROOT, report);
		log(`done in ${report.duration_s} s; results in bench/results/`);
	} finally {
		await Promise.all([service.stop(), floor.stop(), sim.close(), gateways.closeAll()]);
		isolated.cleanup();
	}
}

async function runSoak() {
	const result = await soak(ROOT);
	writeSoakReport(ROOT, result);
	log(
		`soak: ${result.mandates} mandates, ${result.wrong_state} in a wrong state, ${result.not_exactly_one_outcome} without exactly one outcome, ${result.lost_audit_rows} lost audit rows, ${result.restarts} restart(s), ${result.duration_s} s`,
	);
	if (result.wrong_state + result.not_exactly_one_outcome + result.lost_audit_rows > 0) process.exitCode = 1;
}

/**
 * `npm run bench -- --only push`: one scenario alone, on the Worker bundled as it deploys; its
 * figures are printed (as JSON and as the README's markdown), bench/results/ is left as it is.
 */
async function runOnly(name: string) {
	if (name === "costs" || name === "latency" || name === "streaming") return main(name);
	if (name === "growth") {
		const isolated = isolatedWorkerConfig(ROOT);
		try {
			const result = await growthBench(ROOT, isolated.config);
			console.log(JSON.stringify(result, null, 2));
			console.log(growthMarkdown(result).join("\n"));
		} finally {
			isolated.cleanup();
		}
		return;
	}
	if (name !== "push")
		throw new Error(
			`--only ${name}: the scenarios that run alone are: push, costs, latency, streaming, growth`,
		);
	const isolated = isolatedWorkerConfig(ROOT);
	try {
		const result = await pushBench(ROOT, isolated.config);
		console.log(JSON.stringify(result, null, 2));
		console.log(pushMarkdown(result).join("\n"));
	} finally {
		isolated.cleanup();
	}
}

// Ctrl-C or a kill: exit through process.exit, so the wrangler process groups are stopped too
// (tools/local-worker.ts kills them on "exit", which a signal alone never emits).
process.once("SIGINT", () => process.exit(130));
process.once("SIGTERM", () => process.exit(143));

const only = process.argv.indexOf("--only");
(process.argv.includes("--soak")
	? runSoak()
	: only >= 0
		? runOnly(process.argv[only + 1] ?? "")
		: main()
).catch((error: unknown) => {
	console.error(error);
	process.exit(1);
});
