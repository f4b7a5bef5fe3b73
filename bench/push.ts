import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Webhook } from "standardwebhooks";
import { startObeGeeSim } from "../sim/obegee.ts";
import { type ReceivedPush, startPushSims, TEST_APNS_BUNDLE_ID } from "../sim/push/index.ts";
import { mintMobileToken } from "../src/auth/mobile-token.ts";
import {
	freePort,
	HOST,
	type RunningWorker,
	randomSecrets,
	startLocalWorker,
} from "../tools/local-worker.ts";
import { type Distribution, distribution, pool } from "./stats.ts";

/**
 * The push scenario of `npm run bench` (issue 10): 1,000 registered devices, mandates reaching their
 * outcome by signed webhook while no phone is connected, and for each device the time from the
 * webhook leaving the "ObeGee" side to the completion push arriving at its provider's simulator —
 * with every push accounted for (exactly one per device per outcome) and what a push costs.
 *
 * 100 users × 10 devices: every user at the cap (MAX_DEVICES_PER_USER), the widest fan-out one
 * outcome can have. Real users mostly have one or two devices, but each outcome needs its own
 * session, execution and webhook, and setting up the ~530 sessions a realistic 1,000 devices need
 * takes 80–90 s on the 2-core machine (a new Durable Object and a dispatch each), over this scenario's
 * one-minute budget. So the scenario measures the widest fan-out, and the cost per push is given for
 * any width from two measured parts: the work of an outcome whose user has no device, and the work
 * each device adds. Each user owns one session: the app opened it once (GET …/progress with its
 * mobile token, which binds the session to the user, src/session/owner.ts) and is in the pocket at
 * the outcome: no socket, so nobody can acknowledge it and the push goes out at once. Providers take
 * turns (each user: 3 APNs, 3 Expo, 2 FCM, 2 Web Push or so), 250 devices each.
 *
 * Costs are measured as differences between groups in the same run, from the Session DOs' own
 * counters (METRICS_LOG: SQLite rows written, D1 statements and rows written, alarm wake-ups) and the
 * simulators' records (provider requests), counted from the webhooks on:
 *   - "push": the users above;
 *   - "no devices": sessions opened by a user with no device (the outcome still looks for devices);
 *   - "no owner": sessions no phone ever opened (no push work at all) — the baseline.
 * Per device = (push − no devices) ÷ 10; per outcome = no devices − no owner; a push to a user with
 * w devices costs per device + per outcome ÷ w.
 * ObeGee polling is set to 2 minutes so the scenario's webhook path is not mixed with polls, and the
 * execution timeout to an hour so no mandate times out before its webhook on a slow machine.
 */

/**
 * BENCH_PUSH_SCALE (e.g. 0.1) shrinks the user count, for a quick look; the figures are at 1.
 * BENCH_PUSH_DEBUG=<file> writes every webhook and every push received, with their times, there.
 */
const SCALE = Number(process.env.BENCH_PUSH_SCALE ?? 1) || 1;
const LAYOUT = [{ users: 100, devices: 10 }].map(({ users, devices }) => ({
	users: Math.max(1, Math.round(users * SCALE)),
	devices,
}));
const SETUP_CONCURRENCY = 12;
/** Sessions in each control group: their work per outcome is the same every time, 10 is plenty. */
const CONTROL_SESSIONS = 10;
/** Outcomes per second: webhooks arrive at a steady peak rate, not all in one burst. */
const WEBHOOKS_PER_S = 100;
const KINDS = ["apns", "expo", "fcm", "webpush"] as const;
type Kind = (typeof KINDS)[number];
/**
 * After the last expected push, a moment for a stray one to show. A resend after a provider timeout
 * would come much later (10 s timeout, then backoff): the service's own audit trail tells those.
 */
const QUIET_MS = 2_000;
const ARRIVAL_TIMEOUT_MS = 60_000;

type Group = "push" | "nodev" | "noowner";

/** A device as D1 stores it: `DeviceTarget` of src/d1/devices.ts (not importable here: it needs the Workers types). */
type DeviceTarget =
	| { kind: "expo"; token: string }
	| { kind: "apns"; token: string; bundle_id: string; environment: "production" | "sandbox" }
	| { kind: "fcm"; token: string }
	| { kind: "webpush"; subscription: { endpoint: string; keys: { p256dh: string; auth: string } } };

interface Device {
	deviceId: string;
	kind: Kind;
	/** What the simulator sees as the target: the token, or the Web Push subscription id. */
	target: string;
	/** The registration as the route stores it (src/d1/devices.ts). */
	stored: DeviceTarget;
}

interface BenchSession {
	group: Group;
	sessionId: string;
	sub: string;
	mandateId: string;
	devices: Device[];
	executionId?: string;
	sentAt?: number;
}

interface MetricLine {
	metric: string;
	object?: string;
	kind?: string;
	session_id: string;
	rows_written?: number;
	d1_statements?: number;
	d1_rows_written?: number;
}

export interface PerPush extends WorkPerOutcome {
	/** Devices of the user: the outcome's own work is shared by this many pushes. */
	width: number;
	/**
	 * Counted, not measured: the owner's device rows are read twice per mandate — by the dispatch's
	 * Android-progress lookup and by the outcome's fan-out — so 2 rows per push.
	 */
	d1_rows_read: number;
	/**
	 * Counted: an Expo ticket's receipt is read ~15 min later, one alarm and one request per outcome
	 * with an Expo device (a quarter of the devices here), shared by the outcome's pushes.
	 */
	expo_receipt_alarms: number;
	expo_receipt_requests: number;
}

/** Work per outcome in one group, from the webhook on. */
export interface WorkPerOutcome {
	sqlite_rows_written: number;
	d1_statements: number;
	d1_rows_written: number;
	alarm_wakeups: number;
	provider_requests: number;
}

export interface PushBenchResult {
	users: number;
	devices: number;
	/** Sessions in each control group ("no devices", "no owner"). */
	control_sessions: number;
	layout: string;
	providers: string;
	webhooks_per_s: number;
	/** Signed webhook sent → completion push request at the provider simulator, every device. */
	latency: Distribution;
	/** The same pace through the floor: post → SQLite write → one request per device (bench/floor/). */
	floor?: Distribution;
	ratio_p50?: number;
	ratio_p99?: number;
	by_provider: Record<string, Distribution>;
	by_devices_per_user: Record<string, Distribution>;
	correctness: {
		expected: number;
		received: number;
		lost: number;
		duplicated: number;
		/** Completion pushes to a device of a control group or to nobody we know. */
		unexpected: number;
		/** Pushes for another outcome than "completed" (a mandate that timed out before its webhook). */
		other_outcomes: number;
		/** Requests a simulator refused (4xx/5xx) from the webhooks on. */
		refused_requests: number;
		webhooks_not_applied: number;
		/** The service's audit trail: pushes recorded sent at their first attempt, retries, devices never sent to. */
		audit: {
			sent_first_attempt: number;
			retries: number;
			not_sent: number;
			/** Why the service retried (the provider's answer or the timeout), and how often. */
			retry_reasons: Record<string, number>;
		};
		/** Android progress data messages ending a mandate (one per FCM device, after the outcome). */
		android_progress_ends: number;
	};
	/** Measured per outcome in each group. */
	work: { push: WorkPerOutcome; nodev: WorkPerOutcome; noowner: WorkPerOutcome };
	/** What each device adds to an outcome: (push − no devices) ÷ devices per user. */
	per_device: WorkPerOutcome;
	/** What an outcome of a user with no device costs: no devices − no owner. */
	per_outcome_without_devices: WorkPerOutcome;
	/** A push to a user with 1, 2 or 10 devices: per device + per outcome ÷ width, and the counted items. */
	per_push: Record<string, PerPush>;
	duration_s: number;
}

function log(line: string) {
	console.log(`[bench:push] ${line}`);
}

const hex = (bytes: number) => randomBytes(bytes).toString("hex");
const b64 = (bytes: number) => randomBytes(bytes).toString("base64url");

function plan(runId: string): BenchSession[] {
	const sessions: BenchSession[] = [];
	let deviceIndex = 0;
	let user = 0;
	for (const { users, devices } of LAYOUT) {
		for (let u = 0; u < users; u++, user++) {
			const list: Device[] = [];
			for (let d = 0; d < devices; d++, deviceIndex++) {
				const kind = KINDS[deviceIndex % KINDS.length] as Kind;
				list.push({ deviceId: `dev-${d}`, kind, target: "", stored: { kind: "expo", token: "" } });
			}
			sessions.push({
				group: "push",
				sessionId: `pushb-${runId}-${user}`,
				sub: `push-user-${runId}-${user}`,
				mandateId: `mio-pushb-${runId}-${user}`,
				devices: list,
			});
		}
	}
	for (const group of ["nodev", "noowner"] as const) {
		for (let i = 0; i < CONTROL_SESSIONS; i++) {
			sessions.push({
				group,
				sessionId: `pushb-${runId}-${group}-${i}`,
				sub: `push-${group}-${runId}-${i}`,
				mandateId: `mio-pushb-${runId}-${group}-${i}`,
				devices: [],
			});
		}
	}
	return sessions;
}

async function call(
	url: string,
	method: string,
	bearer: string,
	body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
	const response = await fetch(url, {
		method,
		headers: {
			Authorization: `Bearer ${bearer}`,
			...(body !== undefined && { "Content-Type": "application/json" }),
		},
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const text = await response.text();
	let json: Record<string, unknown> = {};
	try {
		json = JSON.parse(text) as Record<string, unknown>;
	} catch {
		json = { text };
	}
	return { status: response.status, json };
}

function zero(): WorkPerOutcome {
	return {
		sqlite_rows_written: 0,
		d1_statements: 0,
		d1_rows_written: 0,
		alarm_wakeups: 0,
		provider_requests: 0,
	};
}

const elapsed = (since: number) => `${Math.round((performance.now() - since) / 1000)} s`;
const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/**
 * Runs the scenario against its own Worker (the given config: the bundle the rest of the bench
 * measures), its own ObeGee simulator and the four push simulators.
 */
export async function pushBench(
	root: string,
	config: string,
	/** The bench's floor Worker when it is running already; else one is started for the scenario. */
	runningFloor?: RunningWorker,
): Promise<PushBenchResult> {
	const started = performance.now();
	const runId = Date.now().toString(36);
	const secrets = randomSecrets();
	const port = await freePort();
	const workerUrl = `http://${HOST}:${port}`;
	const arrivals: Array<{ at: number; push: ReceivedPush }> = [];
	const push = await startPushSims({
		tokenUpdateMinIntervalMs: 0,
		onPush: (received) => arrivals.push({ at: performance.now(), push: received }),
	});
	const sim = await startObeGeeSim({
		port: 0,
		apiToken: secrets.OBEGEE_API_TOKEN,
		webhookSecret: secrets.WEBHOOK_SECRET,
		webhookUrl: `${workerUrl}/api/dispatch/delivery-webhook`,
		log: () => {},
	});
	const persist = mkdtempSync(join(tmpdir(), "myndlens-push-bench-"));
	let service: RunningWorker | null = null;
	let ownFloor: RunningWorker | null = null;
	try {
		const floorStarting = runningFloor
			? Promise.resolve(runningFloor)
			: startLocalWorker({
					root,
					config: "bench/floor/wrangler.toml",
					readyPath: "/rooms/warmup",
					vars: {},
				}).then((floor) => {
					ownFloor = floor;
					return floor;
				});
		floorStarting.catch(() => {});
		const sessions = plan(runId);
		const devices = await makeDevices(sessions, push);
		log(
			`${sessions.filter((s) => s.group === "push").length} users with ${devices.length} devices (${LAYOUT.map((l) => `${l.users} × ${l.devices}`).join(" + ")}), ${CONTROL_SESSIONS} + ${CONTROL_SESSIONS} control sessions; devices stored in D1 as the registration route stores them`,
		);
		await seedDevices(root, config, persist, devices);
		service = await startLocalWorker({
			root,
			config,
			port,
			persist,
			readyPath: "/health",
			vars: {
				...secrets,
				...push.env,
				OBEGEE_BASE_URL: sim.url,
				POLL_INTERVAL_MS: "120000",
				// However slow the setup on a loaded machine, no mandate may time out before its webhook.
				EXECUTION_TIMEOUT_MS: "3600000",
				METRICS_LOG: "true",
			},
		});
		const metrics: MetricLine[] = [];
		if (process.env.BENCH_VERBOSE) service.onLine((line) => console.log(`[worker] ${line}`));
		service.onLine((line) => {
			const start = line.indexOf('{"metric"');
			if (start < 0) return;
			try {
				metrics.push(JSON.parse(line.slice(start)) as MetricLine);
			} catch {
				// a line cut short; not ours to count
			}
		});
		const floor = await floorStarting;
		log(`worker up (${elapsed(started)})`);
		const result = await run(service, push, secrets, metrics, arrivals, sessions, devices, started);
		// The same signals through the floor, with the service stopped: the least the runtime needs to
		// store a signal and send one request per device.
		await service.stop();
		const widths = sessions
			.filter((s) => s.group === "push")
			.map((s) => s.devices.length)
			.sort(() => Math.random() - 0.5);
		result.floor = distribution(await floorPushes(floor, widths, runId));
		result.ratio_p50 = round(result.latency.p50 / Math.max(result.floor.p50, 0.01));
		result.ratio_p99 = round(result.latency.p99 / Math.max(result.floor.p99, 0.01));
		result.duration_s = Math.round((performance.now() - started) / 1000);
		log(
			`floor (store, then one request per device): p50 ${result.floor.p50} p99 ${result.floor.p99} ms (n=${result.floor.n}); service ÷ floor p99 ${result.ratio_p99}×; ${result.duration_s} s`,
		);
		return result;
	} finally {
		await Promise.all([
			service?.stop(),
			sim.close(),
			push.close(),
			(ownFloor as RunningWorker | null)?.stop(),
		]);
		rmSync(persist, { recursive: true, force: true });
	}
}

/**
 * The floor of a completion push: each signal posted to a bare Durable Object (bench/floor/) that
 * writes it to SQLite and then posts it once per device to a plain HTTP receiver here — at the same
 * pace, to as many rooms with as many devices each as the scenario's users. Each object is created
 * first (the users' sessions exist before their outcome too). The time from the post to each request.
 */
async function floorPushes(floor: RunningWorker, widths: number[], runId: string): Promise<number[]> {
	const arrived = new Map<string, number>();
	const receiver = createServer((req, res) => {
		arrived.set(req.url ?? "", performance.now());
		req.resume();
		res.writeHead(204).end();
	});
	await new Promise<void>((resolve) => receiver.listen(0, HOST, resolve));
	const receiverUrl = `http://${HOST}:${(receiver.address() as AddressInfo).port}`;
	try {
		const rooms = widths.map((devices, i) => ({ room: `pushfloor-${runId}-${i}`, devices, sentAt: 0 }));
		await pool(rooms, SETUP_CONCURRENCY, async ({ room }) => {
			const response = await fetch(`${floor.url}/rooms/${room}?durable`, { method: "POST", body: "{}" });
			await response.body?.cancel();
		});
		const body = JSON.stringify({
			execution_id: "exec_floor",
			status: "COMPLETED",
			delivered_to: ["email"],
			summary: "Sent",
		});
		const start = performance.now();
		await Promise.all(
			rooms.map(async (room, i) => {
				const wait = start + (i * 1000) / WEBHOOKS_PER_S - performance.now();
				if (wait > 0) await sleep(wait);
				room.sentAt = performance.now();
				const push = encodeURIComponent(`${receiverUrl}/${room.room}`);
				const response = await fetch(
					`${floor.url}/rooms/${room.room}?durable&push=${push}&n=${room.devices}`,
					{
						method: "POST",
						body,
					},
				);
				await response.body?.cancel();
			}),
		);
		const expected = rooms.reduce((total, room) => total + room.devices, 0);
		const deadline = Date.now() + ARRIVAL_TIMEOUT_MS;
		while (arrived.size < expected && Date.now() < deadline) await sleep(50);
		return rooms.flatMap((room) =>
			Array.from({ length: room.devices }, (_, i) => arrived.get(`/${room.room}/${i}`))
				.filter((at): at is number => at !== undefined)
				.map((at) => at - room.sentAt),
		);
	} finally {
		receiver.closeAllConnections();
		await new Promise((resolve) => receiver.close(resolve));
	}
}

/** Each device's token (a Web Push subscription made at the simulator, as a browser would) and stored target. */
async function makeDevices(
	sessions: BenchSession[],
	push: Awaited<ReturnType<typeof startPushSims>>,
): Promise<Array<{ s: BenchSession; device: Device }>> {
	const devices = sessions.flatMap((s) => s.devices.map((device) => ({ s, device })));
	await pool(devices, 25, async ({ device }) => {
		switch (device.kind) {
			case "apns":
				device.target = hex(32);
				device.stored = {
					kind: "apns",
					token: device.target,
					bundle_id: TEST_APNS_BUNDLE_ID,
					environment: "production",
				};
				break;
			case "expo":
				device.target = `ExponentPushToken[${b64(16)}]`;
				device.stored = { kind: "expo", token: device.target };
				break;
			case "fcm":
				device.target = `${b64(16)}:APA91b${b64(96)}`;
				device.stored = { kind: "fcm", token: device.target };
				break;
			case "webpush": {
				const response = await fetch(`${push.webpush.url}/__sim/subscriptions`, {
					method: "POST",
					headers: { "Content-Type": "application/json" },
					body: JSON.stringify({ applicationServerKey: push.keys.vapid.publicKey }),
				});
				const subscription = (await response.json()) as {
					endpoint: string;
					keys: { p256dh: string; auth: string };
				};
				device.target = subscription.endpoint.split("/").at(-1) ?? "";
				device.stored = { kind: "webpush", subscription };
				break;
			}
		}
	});
	return devices;
}

/**
 * The devices written straight into D1 (migrations first), in the form PUT /api/devices stores
 * (src/d1/devices.ts): registering 1,000 devices one request at a time would take longer than the
 * whole scenario, and the route is not what is measured here (test/devices.test.ts covers it).
 */
async function seedDevices(
	root: string,
	config: string,
	persist: string,
	devices: Array<{ s: BenchSession; device: Device }>,
): Promise<void> {
	const quote = (value: string) => `'${value.replaceAll("'", "''")}'`;
	const now = new Date().toISOString();
	const rows = devices.map(
		({ s, device }) =>
			`(${[s.sub, device.deviceId, device.kind, JSON.stringify(device.stored), now, now].map(quote).join(", ")})`,
	);
	const file = join(persist, "seed-devices.sql");
	// D1 refuses a statement over 100 KB: 50 rows each.
	const statements: string[] = [];
	for (let i = 0; i < rows.length; i += 50) {
		statements.push(
			`INSERT INTO push_devices (sub, device_id, kind, target, created_at, updated_at) VALUES\n${rows.slice(i, i + 50).join(",\n")};\n`,
		);
	}
	writeFileSync(file, statements.join(""));
	const local = ["--local", "--config", config, "--persist-to", persist];
	await wrangler(root, ["d1", "migrations", "apply", "DB", ...local]);
	await wrangler(root, ["d1", "execute", "DB", ...local, "--file", file]);
}

function wrangler(root: string, args: string[]): Promise<void> {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, ["node_modules/wrangler/bin/wrangler.js", ...args], {
			cwd: root,
			env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" },
			stdio: ["ignore", "pipe", "pipe"],
		});
		let output = "";
		child.stdout.on("data", (chunk) => {
			output += chunk;
		});
		child.stderr.on("data", (chunk) => {
			output += chunk;
		});
		child.on("error", reject);
		child.on("exit", (code) =>
			code === 0 ? resolve() : reject(new Error(`wrangler ${args.slice(0, 2).join(" ")} failed:\n${output}`)),
		);
	});
}

async function run(
	service: RunningWorker,
	push: Awaited<ReturnType<typeof startPushSims>>,
	secrets: ReturnType<typeof randomSecrets>,
	metrics: MetricLine[],
	arrivals: Array<{ at: number; push: ReceivedPush }>,
	sessions: BenchSession[],
	devices: Array<{ s: BenchSession; device: Device }>,
	started: number,
): Promise<PushBenchResult> {
	const pushUsers = sessions.filter((s) => s.group === "push");
	const deviceCount = devices.length;
	const tokens = new Map<string, string>();
	await pool(sessions, 25, async (s) => {
		tokens.set(
			s.sessionId,
			await mintMobileToken(secrets.SESSION_TOKEN_SECRET, { sid: s.sessionId, sub: s.sub, ttlSeconds: 3600 }),
		);
	});

	// Each user's app opened its session once (the snapshot, with its mobile token: that binds the
	// session to the user) and is in the pocket now: no socket. "No owner" sessions are never opened.
	// Then the pipeline executes the user's mandate. Modest concurrency: a new session object and a
	// dispatch each, and on a loaded machine more at once only makes dispatches time out.
	log(`opening ${sessions.length - CONTROL_SESSIONS} sessions and executing ${sessions.length} mandates`);
	let pending = 0;
	await pool(sessions, SETUP_CONCURRENCY, async (s) => {
		if (s.group !== "noowner") {
			const answer = await call(
				`${service.url}/api/sessions/${s.sessionId}/progress`,
				"GET",
				tokens.get(s.sessionId) ?? "",
			);
			if (answer.status !== 200) throw new Error(`progress answered ${answer.status}`);
		}
		for (let attempt = 0; ; attempt++) {
			const answer = await call(`${service.url}/api/mandate/execute`, "POST", secrets.SERVICE_TOKEN, {
				session_id: s.sessionId,
				mandate_id: s.mandateId,
				tenant_id: "tenant_push_bench",
				intent: "Send weekly report to team",
				dimensions: { sim_scenario: "manual" },
				delivery_channels: ["email"],
			});
			if (answer.status === 200) {
				s.executionId = String(answer.json.execution_id);
				return;
			}
			// ObeGee not reached in time (a loaded machine): the session's alarm retries; ask again.
			if (answer.status !== 503 || attempt >= 30) {
				throw new Error(`execute answered ${answer.status}: ${JSON.stringify(answer.json)}`);
			}
			pending++;
			await sleep(2_000);
		}
	});
	if (pending > 0) log(`${pending} execute(s) answered 503 dispatch_pending first and were asked again`);
	log(`executed (${elapsed(started)}); waiting for the Android devices' first progress message`);
	// Android devices follow a dispatched mandate (one progress data message each): let those land first.
	const fcmDevices = devices.filter(({ device }) => device.kind === "fcm").length;
	const following = () =>
		new Set(
			arrivals
				.filter((a) => a.push.provider === "fcm" && a.push.data?.event === "update")
				.map((a) => `${String(a.push.data?.mandate_id)} ${a.push.target}`),
		).size;
	const deadline = Date.now() + 30_000;
	while (following() < fcmDevices && Date.now() < deadline) await sleep(100);
	await sleep(1_500);

	// From here on every counter belongs to the outcomes.
	const metricsFrom = metrics.length;
	const arrivalsFrom = arrivals.length;
	const wallFrom = Date.now();
	const signer = new Webhook(secrets.WEBHOOK_SECRET);
	const order = [...sessions].sort(() => Math.random() - 0.5);
	log(`${order.length} outcomes by signed webhook at ${WEBHOOKS_PER_S}/s, no phone connected`);
	let notApplied = 0;
	const sendStart = performance.now();
	await Promise.all(
		order.map(async (s, i) => {
			const due = sendStart + (i * 1000) / WEBHOOKS_PER_S;
			const wait = due - performance.now();
			if (wait > 0) await sleep(wait);
			const body = JSON.stringify({
				execution_id: s.executionId,
				status: "COMPLETED",
				delivered_to: ["email"],
				summary: "Sent",
			});
			const id = `msg_${s.executionId}`;
			const now = new Date();
			s.sentAt = performance.now();
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
			const answer = (await response.json().catch(() => ({}))) as { outcome?: string };
			if (response.status !== 200 || answer.outcome !== "applied") notApplied++;
		}),
	);

	// Every device's completion push and every Android device's progress end; then a quiet spell.
	const isCompletion = (p: ReceivedPush) => !p.liveActivity && typeof p.data?.outcome === "string";
	const isAndroidEnd = (p: ReceivedPush) => p.provider === "fcm" && p.data?.event === "end";
	const counted = () => arrivals.slice(arrivalsFrom);
	const waitUntil = Date.now() + ARRIVAL_TIMEOUT_MS;
	while (Date.now() < waitUntil) {
		const now = counted();
		if (
			now.filter((a) => isCompletion(a.push)).length >= deviceCount &&
			now.filter((a) => isAndroidEnd(a.push)).length >= fcmDevices
		)
			break;
		await sleep(100);
	}
	await sleep(QUIET_MS);
	// The service's own record (the audit trail in D1): each device's push sent once, at its first
	// attempt, and nothing waiting to be tried again.
	const audit = {
		sent_first_attempt: 0,
		retries: 0,
		not_sent: 0,
		retry_reasons: {} as Record<string, number>,
	};
	await pool(pushUsers, SETUP_CONCURRENCY, async (s) => {
		const deadline = Date.now() + 15_000;
		for (;;) {
			const answer = await call(
				`${service.url}/api/executions/${s.executionId}`,
				"GET",
				secrets.SERVICE_TOKEN,
			);
			const timeline = (answer.json.timeline ?? []) as Array<{
				event: string;
				detail: Record<string, unknown>;
			}>;
			const sent = timeline.filter((e) => e.event === "push_sent");
			const sentTo = new Set(sent.map((e) => String(e.detail.device_id)));
			if (sentTo.size >= s.devices.length || Date.now() > deadline) {
				audit.sent_first_attempt += sent.filter((e) => e.detail.attempt === 1).length;
				for (const retry of timeline.filter((e) => e.event === "push_retry")) {
					audit.retries++;
					const reason = String(retry.detail.reason ?? "").slice(0, 80);
					audit.retry_reasons[reason] = (audit.retry_reasons[reason] ?? 0) + 1;
				}
				audit.not_sent += s.devices.length - sentTo.size;
				return;
			}
			await sleep(500);
		}
	});

	if (process.env.BENCH_PUSH_DEBUG) {
		const lines = counted().map(
			({ at, push: p }) =>
				`${Math.round(at - sendStart)} ${p.provider} ${p.type} ${p.target.slice(0, 10)} ${String(p.data?.mandate_id)} event=${String(p.data?.event ?? p.liveActivity?.event)} outcome=${String(p.data?.outcome)}`,
		);
		const sent = sessions.map(
			(s) => `${Math.round((s.sentAt ?? 0) - sendStart)} sent ${s.mandateId} ${s.group}`,
		);
		writeFileSync(process.env.BENCH_PUSH_DEBUG, [...sent, ...lines].join("\n"));
	}
	// Latency and accounting, per device.
	const owner = new Map<string, { s: BenchSession; device: Device }>();
	for (const { s, device } of devices) owner.set(`${s.mandateId} ${device.target}`, { s, device });
	const seen = new Map<string, number>();
	const all: number[] = [];
	const byProvider = new Map<string, number[]>();
	const byWidth = new Map<string, number[]>();
	let unexpected = 0;
	let otherOutcomes = 0;
	for (const { at, push: p } of counted()) {
		if (!isCompletion(p)) continue;
		// Every mandate here completes by its webhook; a timeout first (a machine too slow) would push twice.
		if (p.data?.outcome !== "completed") {
			otherOutcomes++;
			continue;
		}
		const key = `${String(p.data?.mandate_id)} ${p.target}`;
		const known = owner.get(key);
		if (!known) {
			unexpected++;
			continue;
		}
		const count = (seen.get(key) ?? 0) + 1;
		seen.set(key, count);
		if (count > 1) continue;
		const ms = at - (known.s.sentAt ?? at);
		all.push(ms);
		byProvider.set(p.provider, [...(byProvider.get(p.provider) ?? []), ms]);
		const width = String(known.s.devices.length);
		byWidth.set(width, [...(byWidth.get(width) ?? []), ms]);
	}
	const duplicated = [...seen.values()].reduce((total, n) => total + n - 1, 0);

	// Requests the simulators received from the webhooks on, per session group.
	const groupOfTarget = new Map<string, Group>();
	for (const { device } of devices) groupOfTarget.set(device.target, "push");
	const requests = { push: 0, nodev: 0, noowner: 0, other: 0 };
	let refused = 0;
	const otherPaths = new Map<string, number>();
	for (const [name, sim] of Object.entries({
		expo: push.expo,
		apns: push.apns,
		fcm: push.fcm,
		webpush: push.webpush,
	})) {
		const { requests: recorded } = (await (await fetch(`${sim.url}/__sim/requests`)).json()) as {
			requests: Array<{ at: number; path: string; status: number; note: Record<string, unknown> }>;
		};
		for (const request of recorded) {
			if (request.at < wallFrom) continue;
			if (request.status >= 400) refused++;
			const target =
				name === "apns"
					? String(request.note.deviceToken ?? "")
					: name === "fcm"
						? String(request.note.target ?? "")
						: name === "webpush"
							? (request.path.split("/").at(-1) ?? "")
							: String((request.note.recipients as string[] | undefined)?.[0] ?? "");
			const group = groupOfTarget.get(target);
			if (group) requests[group]++;
			else {
				requests.other++;
				otherPaths.set(`${name} ${request.path}`, (otherPaths.get(`${name} ${request.path}`) ?? 0) + 1);
			}
		}
	}

	if (otherPaths.size > 0)
		log(`provider requests for no device of ours: ${JSON.stringify(Object.fromEntries(otherPaths))}`);
	// Work per outcome in each group, from the Session DOs' own counters.
	const groupOf = new Map(sessions.map((s) => [s.sessionId, s.group]));
	const work = { push: zero(), nodev: zero(), noowner: zero() };
	for (const line of metrics.slice(metricsFrom)) {
		const group = groupOf.get(line.session_id);
		if (!group) continue;
		const w = work[group];
		if (line.metric !== "work" || line.object !== "session") continue;
		if (line.kind === "alarm") w.alarm_wakeups++;
		w.sqlite_rows_written += line.rows_written ?? 0;
		w.d1_statements += line.d1_statements ?? 0;
		w.d1_rows_written += line.d1_rows_written ?? 0;
	}
	work.push.provider_requests = requests.push;
	// "other" are requests no device of ours is the target of (an FCM token exchange): spread over the pushes.
	work.push.provider_requests += requests.other;
	const sizes = { push: pushUsers.length, nodev: CONTROL_SESSIONS, noowner: CONTROL_SESSIONS };
	for (const group of ["push", "nodev", "noowner"] as const) {
		const w = work[group];
		for (const key of Object.keys(w) as Array<keyof WorkPerOutcome>) w[key] = round(w[key] / sizes[group], 3);
	}
	const perOutcome = deviceCount / pushUsers.length;
	const combine = (
		a: WorkPerOutcome,
		b: WorkPerOutcome,
		f: (x: number, y: number) => number,
	): WorkPerOutcome => {
		const out = zero();
		for (const key of Object.keys(out) as Array<keyof WorkPerOutcome>) out[key] = round(f(a[key], b[key]), 3);
		return out;
	};
	const perDevice = combine(work.push, work.nodev, (x, y) => (x - y) / perOutcome);
	const perOutcomeFixed = combine(work.nodev, work.noowner, (x, y) => x - y);
	const expoShare = devices.filter(({ device }) => device.kind === "expo").length / deviceCount;
	const perPush = (width: number): PerPush => {
		const withExpo = 1 - (1 - expoShare) ** width;
		return {
			width,
			...combine(perDevice, perOutcomeFixed, (x, y) => x + y / width),
			d1_rows_read: 2,
			expo_receipt_alarms: round(withExpo / width, 3),
			expo_receipt_requests: round(withExpo / width, 3),
		};
	};
	const result: PushBenchResult = {
		users: pushUsers.length,
		devices: deviceCount,
		control_sessions: CONTROL_SESSIONS,
		layout: LAYOUT.map((l) => `${l.users} users × ${l.devices}`).join(" + "),
		providers: `${KINDS.join(", ")} in turn (${deviceCount / KINDS.length} each)`,
		webhooks_per_s: WEBHOOKS_PER_S,
		latency: distribution(all),
		by_provider: Object.fromEntries(KINDS.map((kind) => [kind, distribution(byProvider.get(kind) ?? [])])),
		by_devices_per_user: Object.fromEntries(
			LAYOUT.map((l) => [String(l.devices), distribution(byWidth.get(String(l.devices)) ?? [])]),
		),
		correctness: {
			expected: deviceCount,
			received: seen.size,
			lost: deviceCount - seen.size,
			duplicated,
			unexpected,
			other_outcomes: otherOutcomes,
			refused_requests: refused,
			webhooks_not_applied: notApplied,
			audit,
			android_progress_ends: counted().filter((a) => isAndroidEnd(a.push)).length,
		},
		work,
		per_device: perDevice,
		per_outcome_without_devices: perOutcomeFixed,
		per_push: Object.fromEntries([1, 2, 10].map((width) => [String(width), perPush(width)])),
		duration_s: Math.round((performance.now() - started) / 1000),
	};
	const l = result.latency;
	const c = result.correctness;
	log(
		`webhook → push request: p50 ${l.p50} p99 ${l.p99} max ${l.max} ms (n=${l.n}); ${c.received}/${c.expected} devices, ${c.lost} lost, ${c.duplicated} duplicated, ${c.unexpected} unexpected, ${c.other_outcomes} for another outcome, ${c.refused_requests} refused; audit: ${c.audit.sent_first_attempt} sent at the first attempt, ${c.audit.retries} retries, ${c.audit.not_sent} never sent; ${result.duration_s} s`,
	);
	return result;
}
