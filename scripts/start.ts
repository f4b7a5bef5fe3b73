// `npm start`: the whole stack on this machine, then a live demo of one mandate.
//   1. `.dev.vars` with fresh random dev secrets (kept when it exists),
//   2. the OpenClaw gateway simulator on 127.0.0.1:8789 (GATEWAY_PORT) and the ObeGee simulator on
//      127.0.0.1:8788 (SIM_PORT), which starts a scripted agent run on the gateway for each execution
//      (as the MyndLens service does in production),
//   3. the push provider simulators (Expo, APNs, FCM, Web Push; sim/push/) on free loopback ports, with
//      test-only keys generated for this run (an APNs .p8-style key, a Google service account, VAPID
//      keys, an Expo access token) and handed to the Worker as vars, so every provider is on; each push
//      they accept is printed as one [push] line,
//   4. local D1 migrations, then `wrangler dev` on 127.0.0.1:8787 (PORT), pointed at every simulator
//      (tools/local-worker.ts, with everything wrangler prints shown as [d1] and [worker] lines),
//   5. a demo: the phone registers its push devices (an Expo token, a native APNs token, an FCM token)
//      for the demo user, opens the session's WebSocket, the pipeline reports stages 1–3 (the phone
//      registers the mandate's iOS Live Activity push token after stage 1), one execute, every frame
//      printed — the agent's sub-statuses, rising progress and its answer streaming in, then stage 10 —
//      and the completion push on every device, and the Live Activity's updates and end, at the simulators.
// It keeps running until Ctrl-C, then stops wrangler and every simulator.
// Runs under Node 24 (npm puts the project's node first on PATH), which strips this file's types and
// imports the simulators' TypeScript directly.

import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { agentAnswer, gatewayAgent, startObeGeeSim } from "../sim/obegee.ts";
import { startGatewaySim } from "../sim/openclaw.ts";
import { type PushSims, type ReceivedPush, startPushSims, TEST_APNS_BUNDLE_ID } from "../sim/push/index.ts";
import { SCENARIOS } from "../sim/scenarios.ts";
import { mintMobileToken } from "../src/auth/mobile-token.ts";
import { HOST, LocalWorkerError, type RunningWorker, startLocalWorker } from "../tools/local-worker.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DEV_VARS = join(ROOT, ".dev.vars");
const PERSIST_DIR = ".wrangler/state";
const WORKER_PORT = portFromEnv("PORT", 8787);
const SIM_PORT = portFromEnv("SIM_PORT", 8788);
const GATEWAY_PORT = portFromEnv("GATEWAY_PORT", 8789);
const WORKER_URL = `http://${HOST}:${WORKER_PORT}`;
const SIM_URL = `http://${HOST}:${SIM_PORT}`;
const GATEWAY_URL = `ws://${HOST}:${GATEWAY_PORT}`;
const GATEWAY_CONTROL_URL = `http://${HOST}:${GATEWAY_PORT}`;
const DEMO_INTENT = "Send weekly report to team";
const DEMO_TIMEOUT_MS = 90_000;
const DEMO_TOKEN_TTL_SECONDS = 2 * 60 * 60;
const DEMO_USER = "demo-user";
/** How long the demo waits, after stage 10, for the completion push (the 3 s grace, then the send). */
const PUSH_WAIT_MS = 15_000;

/** Dev secrets and how to make each one when `.dev.vars` lacks it. */
const SECRET_FACTORIES: Record<string, () => string> = {
	OBEGEE_API_TOKEN: () => `dev_obegee_${randomBytes(24).toString("hex")}`,
	WEBHOOK_SECRET: () => `whsec_${randomBytes(32).toString("base64")}`,
	SESSION_TOKEN_SECRET: () => randomBytes(32).toString("base64url"),
	SERVICE_TOKEN: () => `dev_service_${randomBytes(24).toString("hex")}`,
	ADMIN_TOKEN: () => `dev_admin_${randomBytes(24).toString("hex")}`,
	OPENCLAW_GATEWAY_TOKEN: () => `dev_gateway_${randomBytes(24).toString("hex")}`,
	GATEWAY_TOKEN_KEY: () => randomBytes(32).toString("base64"),
};

/** A failure the user can act on: printed without a stack trace. */
class StartError extends Error {}

type DevVars = Record<string, string>;

function portFromEnv(name: string, fallback: number): number {
	const raw = process.env[name];
	if (raw === undefined || raw === "") return fallback;
	const port = Number(raw);
	if (!Number.isInteger(port) || port < 1 || port > 65535) {
		console.error(`start: ${name}=${raw} is not a valid port`);
		process.exit(1);
	}
	return port;
}

function say(line: string): void {
	console.log(`[start] ${line}`);
}

// ---- .dev.vars ----

/** Reads `KEY=value` and `KEY="value"` lines; comments and blank lines are skipped. */
function parseDevVars(text: string): DevVars {
	const vars: DevVars = {};
	for (const line of text.split(/\r?\n/)) {
		const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
		if (!match || line.trimStart().startsWith("#")) continue;
		const [, key = "", raw = ""] = match;
		const quoted = /^"(.*)"$/.exec(raw) ?? /^'(.*)'$/.exec(raw);
		vars[key] = quoted?.[1] ?? raw;
	}
	return vars;
}

/** Loads `.dev.vars`, adding any missing secret (so an older file keeps working). */
function ensureDevVars(): DevVars {
	const exists = existsSync(DEV_VARS);
	const text = exists ? readFileSync(DEV_VARS, "utf8") : "";
	const vars = parseDevVars(text);
	const missing = Object.keys(SECRET_FACTORIES).filter((key) => !vars[key]);
	if (missing.length > 0) {
		const header = exists
			? ""
			: "# Local dev secrets for wrangler dev and the simulators (made by npm start).\n";
		const lines = missing.map((key) => {
			const value = SECRET_FACTORIES[key]?.() ?? "";
			vars[key] = value;
			return `${key}=${value}\n`;
		});
		const separator = text === "" || text.endsWith("\n") ? "" : "\n";
		writeFileSync(DEV_VARS, text + separator + header + lines.join(""), { mode: 0o600 });
	}
	if (!exists) say("created .dev.vars with fresh random dev secrets");
	else if (missing.length > 0) say(`added ${missing.join(", ")} to .dev.vars`);
	else say("using the secrets in .dev.vars");
	if (!vars.WEBHOOK_SECRET?.startsWith("whsec_")) {
		throw new StartError("WEBHOOK_SECRET in .dev.vars must be a Standard Webhooks secret (whsec_<base64>)");
	}
	return vars;
}

// ---- processes ----

function assertPortFree(port: number, what: string, envName: string): Promise<void> {
	return new Promise((resolve, reject) => {
		const probe = createServer();
		probe.once("error", (error: NodeJS.ErrnoException) => {
			const taken = error.code === "EADDRINUSE" || error.code === "EACCES";
			const hint = `stop whatever uses it, or set ${envName}=<another port>`;
			reject(taken ? new StartError(`port ${port} (${what}) on ${HOST} is already in use: ${hint}`) : error);
		});
		probe.listen(port, HOST, () => probe.close(() => resolve()));
	});
}

/**
 * Applies the local D1 migrations, then runs `wrangler dev` on WORKER_PORT, pointed at every
 * simulator, with every line it prints shown as `[d1] …` or `[worker] …`; resolves once healthy.
 */
async function startWorker(pushEnv: Record<string, string>): Promise<RunningWorker> {
	say(`applying local D1 migrations, then starting wrangler dev on ${WORKER_URL}`);
	try {
		return await startLocalWorker({
			root: ROOT,
			config: "wrangler.toml",
			port: WORKER_PORT,
			persist: PERSIST_DIR,
			migrations: true,
			readyPath: "/health",
			onLine: (line, step) => console.log(`${step === "migrations" ? "[d1]" : "[worker]"} ${line}`),
			// The secrets come from .dev.vars, which wrangler dev reads itself.
			vars: {
				OBEGEE_BASE_URL: SIM_URL,
				// Every tenant's default gateway; its token (OPENCLAW_GATEWAY_TOKEN) comes from .dev.vars.
				OPENCLAW_GATEWAY_URL: GATEWAY_URL,
				POLL_INTERVAL_MS: "2000",
				DEMO_ROUTES: "true",
				// EXPO_PUSH_URL, EXPO_ACCESS_TOKEN, APNS_*, FCM_*, VAPID_*: the push simulators and this
				// run's test-only keys (they override wrangler.toml's production URLs).
				...pushEnv,
			},
		});
	} catch (error) {
		if (!(error instanceof LocalWorkerError)) throw error;
		const where = error.step === "migrations" ? "[d1]" : "[worker]";
		throw new StartError(`${error.message}; see the ${where} lines above`);
	}
}

// ---- demo ----

/** What the phone reads of a frame (src/protocol/frames.ts has the full schemas). */
interface StageData {
	mandate_id?: string;
	stage?: number;
	stage_name?: string;
	status?: string;
	message?: string;
	summary?: string;
	delivered_to?: string[];
}

interface Frame {
	seq?: number;
	event?: string;
	type?: string;
	data?: StageData;
	mandate_id?: string;
	progress?: number;
	status?: string;
	chunk?: string;
	code?: string;
	message?: string;
	mandates?: Array<{ mandate_id: string; state: string; progress?: number }>;
}

interface DemoContext {
	sessionId: string;
	mandateId: string;
	mobileToken: string;
	wsUrl: string;
	executionId: string | null;
}

/** One push device of the demo phone, as registered with PUT /api/devices/:deviceId. */
interface DemoDevice {
	deviceId: string;
	kind: "expo" | "apns" | "fcm";
	token: string;
	body: Record<string, unknown>;
}

/** Every push the simulators accepted in this run, and a way to wait for one. */
class PushesSeen {
	readonly #seen: Array<ReceivedPush & { at: number }> = [];
	#waiters: Array<{ match: (push: ReceivedPush) => boolean; resolve: (at: number) => void }> = [];

	add(push: ReceivedPush): void {
		const at = Date.now();
		this.#seen.push({ ...push, at });
		this.#waiters = this.#waiters.filter((waiter) => {
			if (!waiter.match(push)) return true;
			waiter.resolve(at);
			return false;
		});
	}

	count(match: (push: ReceivedPush) => boolean): number {
		return this.#seen.filter(match).length;
	}

	/** When the first push matching arrived (now or later), or null after `timeoutMs`. */
	waitFor(match: (push: ReceivedPush) => boolean, timeoutMs: number): Promise<number | null> {
		const found = this.#seen.find(match);
		if (found) return Promise.resolve(found.at);
		return new Promise((resolve) => {
			const timer = setTimeout(() => {
				this.#waiters = this.#waiters.filter((waiter) => waiter.resolve !== done);
				resolve(null);
			}, timeoutMs);
			const done = (at: number) => {
				clearTimeout(timer);
				resolve(at);
			};
			this.#waiters.push({ match, resolve: done });
		});
	}
}

function hex(bytes: number): string {
	return randomBytes(bytes).toString("hex");
}

interface WorkerAnswer {
	status: number;
	json: Record<string, unknown> | undefined;
	/** `code: message` of an error answer, or the start of its body. */
	detail: string;
}

async function requestWorker(
	method: string,
	path: string,
	{ token, body }: { token: string; body?: unknown },
): Promise<WorkerAnswer> {
	const response = await fetch(WORKER_URL + path, {
		method,
		headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
		body: body ? JSON.stringify(body) : undefined,
		signal: AbortSignal.timeout(15_000),
	});
	const text = await response.text();
	let json: Record<string, unknown> | undefined;
	try {
		json = JSON.parse(text) as Record<string, unknown>;
	} catch {
		json = undefined;
	}
	const error = json?.error as { code?: string; message?: string } | undefined;
	const detail = error?.message ? `${error.code ?? "error"}: ${error.message}` : text.slice(0, 300);
	return { status: response.status, json, detail };
}

async function callWorker(
	method: string,
	path: string,
	options: { token: string; body?: unknown },
): Promise<Record<string, unknown> | undefined> {
	const answer = await requestWorker(method, path, options);
	if (answer.status >= 300)
		throw new StartError(`${method} ${path} answered ${answer.status} (${answer.detail})`);
	return answer.json;
}

/** The demo phone's push targets: fixed ids (a restart replaces them), fresh tokens each run. */
function demoDevices(): DemoDevice[] {
	const expo = `ExponentPushToken[${randomBytes(16).toString("base64url")}]`;
	const apns = hex(32);
	const fcm = `${randomBytes(16).toString("base64url")}:APA91b${randomBytes(96).toString("base64url")}`;
	return [
		{ deviceId: "demo-phone-expo", kind: "expo", token: expo, body: { kind: "expo", token: expo } },
		{
			deviceId: "demo-phone-apns",
			kind: "apns",
			token: apns,
			body: { kind: "apns", token: apns, bundle_id: TEST_APNS_BUNDLE_ID, environment: "sandbox" },
		},
		{ deviceId: "demo-phone-fcm", kind: "fcm", token: fcm, body: { kind: "fcm", token: fcm } },
	];
}

/** PUT /api/devices/:deviceId for each device, as the app does once it may notify; the ones stored. */
async function registerDevices(mobileToken: string, devices: DemoDevice[]): Promise<DemoDevice[]> {
	const stored: DemoDevice[] = [];
	for (const device of devices) {
		const answer = await requestWorker("PUT", `/api/devices/${device.deviceId}`, {
			token: mobileToken,
			body: device.body,
		});
		if (answer.status === 200 || answer.status === 201) {
			stored.push(device);
			console.log(
				`[phone] registered push device ${device.deviceId} (${device.kind} ${String(answer.json?.token_hint ?? "")})`,
			);
		} else {
			console.log(
				`[phone] push device ${device.deviceId} (${device.kind}) refused: ${answer.status} ${answer.detail}`,
			);
		}
	}
	return stored;
}

/**
 * PUT /api/sessions/:sessionId/mandates/:mandateId/live-activity: the push token of the iOS Live
 * Activity the app started for the mandate. The token it registered, or null when refused (a Worker
 * without the route answers 404 "No such route.").
 */
async function registerLiveActivity(context: DemoContext): Promise<string | null> {
	const token = hex(40);
	const path = `/api/sessions/${context.sessionId}/mandates/${context.mandateId}/live-activity`;
	const answer = await requestWorker("PUT", path, {
		token: context.mobileToken,
		body: { token, bundle_id: TEST_APNS_BUNDLE_ID, environment: "sandbox" },
	});
	if (answer.status >= 200 && answer.status < 300) {
		console.log(`[phone] registered the mandate's Live Activity push token …${token.slice(-6)}`);
		return token;
	}
	const missing = answer.status === 404 && answer.detail === "not_found: No such route.";
	console.log(
		missing
			? "[phone] this Worker has no Live Activity route yet (PUT …/live-activity answered 404); no lock-screen updates"
			: `[phone] Live Activity token refused: ${answer.status} ${answer.detail}`,
	);
	return null;
}

/**
 * After stage 10: waits for the completion push on every registered device and for the Live
 * Activity's end, then says what arrived (the [push] lines themselves are printed as they come).
 */
async function reportPushes(
	pushes: PushesSeen,
	context: DemoContext,
	devices: DemoDevice[],
	liveActivityToken: string | null,
	finishedAt: number,
): Promise<void> {
	if (devices.length === 0 && liveActivityToken === null) return;
	say(
		`demo: waiting for the completion push (the phone did not acknowledge stage 10, as a pocketed phone would not)`,
	);
	const forMandate = (push: ReceivedPush) =>
		push.data?.mandate_id === context.mandateId && !push.liveActivity;
	const [arrivals, ended] = await Promise.all([
		Promise.all(
			devices.map((device) =>
				pushes.waitFor((push) => push.target === device.token && forMandate(push), PUSH_WAIT_MS),
			),
		),
		liveActivityToken === null
			? Promise.resolve(null)
			: pushes.waitFor(
					(push) => push.target === liveActivityToken && push.liveActivity?.event === "end",
					PUSH_WAIT_MS,
				),
	]);
	if (devices.length > 0) {
		const reached = devices.filter((_, i) => arrivals[i] !== null);
		const times = arrivals.filter((at): at is number => at !== null);
		const after =
			times.length > 0 ? ` ${((Math.max(...times) - finishedAt) / 1000).toFixed(1)} s after stage 10` : "";
		say(
			`demo: the completion push reached ${reached.length} of ${devices.length} device(s) (${reached.map((d) => d.kind).join(", ") || "none"})${after}`,
		);
	}
	if (liveActivityToken !== null) {
		const updates = pushes.count(
			(push) => push.target === liveActivityToken && push.liveActivity?.event === "update",
		);
		say(
			`demo: Live Activity: ${updates} update(s)${ended === null ? " and NO end within 15 s" : " and its end"} at the APNs simulator`,
		);
	}
}

function describeStage(data: StageData): string {
	let line = `stage ${data.stage} ${data.stage_name}: ${data.status}`;
	if (data.message) line += ` (${data.message})`;
	if (data.summary) line += ` "${data.summary}"`;
	if (data.delivered_to) line += ` delivered to ${data.delivered_to.join(", ")}`;
	return line;
}

function describeSnapshot(frame: Frame): string {
	const mandates = frame.mandates ?? [];
	const states = mandates.map((m) => `${m.mandate_id} ${m.state} ${m.progress ?? 0}%`);
	return `snapshot: ${mandates.length} mandate(s)${states.length ? ` [${states.join("; ")}]` : ""}`;
}

function progressBar(percent: number): string {
	const filled = Math.round((Math.min(100, Math.max(0, percent)) / 100) * 20);
	return `${"█".repeat(filled)}${"░".repeat(20 - filled)}`;
}

/** One readable line per frame the phone receives. */
function describeFrame(frame: Frame): string {
	if (frame.event === "pipeline_stage") return describeStage(frame.data ?? {});
	switch (frame.type) {
		case "progress":
			return `progress ${progressBar(frame.progress ?? 0)} ${String(frame.progress).padStart(3)}% ${frame.status}`;
		case "response_chunk":
			return `chunk ${JSON.stringify(frame.chunk)}`;
		case "snapshot":
			return describeSnapshot(frame);
		case "error":
			return `error frame ${frame.code}: ${frame.message}`;
		default:
			return JSON.stringify(frame).slice(0, 300);
	}
}

function isFinalFrame(frame: Frame, mandateId: string): boolean {
	if (frame.event !== "pipeline_stage" || frame.data?.mandate_id !== mandateId) return false;
	return frame.data.status === "failed" || (frame.data.stage === 10 && frame.data.status === "completed");
}

/**
 * Opens the phone's socket; resolves once open, with a promise that settles on the mandate's last
 * stage and `answer()`, the agent's answer as streamed so far (its chunks joined, in order).
 */
interface WatchedSession {
	ws: WebSocket;
	/** The mandate's last stage frame, or null when the socket closed first. */
	final: Promise<Frame | null>;
	answer(): { text: string; chunks: number };
}

function watchSession(url: string, mandateId: string): Promise<WatchedSession> {
	return new Promise((resolveOpen, rejectOpen) => {
		const ws = new WebSocket(url);
		const chunks: string[] = [];
		const answer = () => ({ text: chunks.join(""), chunks: chunks.length });
		const { promise: final, resolve: settleFinal } = Promise.withResolvers<Frame | null>();
		const fail = (why: string) => {
			rejectOpen(new StartError(`the demo WebSocket ${why} (is SESSION_TOKEN_SECRET the Worker's?)`));
			ws.close();
		};
		const openTimer = setTimeout(() => fail("did not open within 10 s"), 10_000);
		ws.addEventListener("open", () => {
			clearTimeout(openTimer);
			resolveOpen({ ws, final, answer });
		});
		ws.addEventListener("error", () => {
			clearTimeout(openTimer);
			fail("could not connect");
		});
		ws.addEventListener("close", (event) => {
			if (event.code !== 1000) console.log(`[phone] socket closed (${event.code} ${event.reason})`);
			settleFinal(null);
		});
		ws.addEventListener("message", (event) => {
			let frame: Frame;
			try {
				frame = JSON.parse(String(event.data)) as Frame;
			} catch {
				console.log(`[phone] (not JSON) ${String(event.data).slice(0, 200)}`);
				return;
			}
			console.log(`[phone] #${frame.seq ?? "-"} ${describeFrame(frame)}`);
			if (frame.type === "response_chunk" && frame.mandate_id === mandateId) chunks.push(frame.chunk ?? "");
			if (isFinalFrame(frame, mandateId)) settleFinal(frame);
		});
	});
}

async function runDemo(vars: DevVars, pushes: PushesSeen): Promise<DemoContext> {
	const sessionId = `demo-${hex(4)}`;
	const mandateId = `mio_demo_${hex(4)}`;
	const mobileToken = await mintMobileToken(vars.SESSION_TOKEN_SECRET ?? "", {
		sid: sessionId,
		sub: DEMO_USER,
		ttlSeconds: DEMO_TOKEN_TTL_SECONDS,
	});
	const wsUrl = `ws://${HOST}:${WORKER_PORT}/api/sessions/${sessionId}/ws?token=${mobileToken}`;
	const context: DemoContext = { sessionId, mandateId, mobileToken, wsUrl, executionId: null };
	say(`demo: session ${sessionId}, mandate ${mandateId}`);
	let socket: WebSocket | null = null;
	const serviceToken = vars.SERVICE_TOKEN ?? "";
	let devices: DemoDevice[] = [];
	let liveActivityToken: string | null = null;
	try {
		devices = await registerDevices(mobileToken, demoDevices());
		const { ws, final, answer } = await watchSession(wsUrl, mandateId);
		socket = ws;
		for (const stage of [1, 2, 3]) {
			await callWorker("POST", `/api/sessions/${sessionId}/stages`, {
				token: serviceToken,
				body: { mandate_id: mandateId, stage, status: "completed" },
			});
			// The app starts the mandate's Live Activity as soon as it hears of the mandate.
			if (stage === 1) liveActivityToken = await registerLiveActivity(context);
		}
		const executed = await callWorker("POST", "/api/mandate/execute", {
			token: serviceToken,
			body: {
				session_id: sessionId,
				mandate_id: mandateId,
				tenant_id: "tenant_demo",
				intent: DEMO_INTENT,
				dimensions: {},
				generated_skills: [],
				delivery_channels: ["email"],
			},
		});
		context.executionId = typeof executed?.execution_id === "string" ? executed.execution_id : null;
		say(`demo: execute answered ${JSON.stringify(executed)}`);
		const last = await Promise.race([final, sleep(DEMO_TIMEOUT_MS).then(() => "timeout" as const)]);
		if (last === "timeout") throw new StartError(`no final stage within ${DEMO_TIMEOUT_MS / 1000} s`);
		if (last === null) throw new StartError("the WebSocket closed before the mandate finished");
		const finishedAt = Date.now();
		say(`demo: mandate ${last.data?.status === "failed" ? "failed" : "completed"}`);
		// The phone goes back into the pocket: the outcome's push is what tells the user now.
		socket.close(1000, "demo done");
		const streamed = answer();
		if (streamed.chunks > 0) {
			const whole = streamed.text === agentAnswer(DEMO_INTENT) ? "the whole answer" : "an INCOMPLETE answer";
			say(
				`demo: the agent streamed ${whole} in ${streamed.chunks} chunk(s): ${JSON.stringify(streamed.text)}`,
			);
		} else {
			say("demo: no answer was streamed (is the OpenClaw gateway simulator reachable?)");
		}
		await reportPushes(pushes, context, devices, liveActivityToken, finishedAt);
	} catch (error) {
		console.error(`[start] DEMO FAILED: ${error instanceof Error ? error.message : String(error)}`);
		console.error("[start] the stack keeps running; the lines below let you try by hand");
	} finally {
		socket?.close(1000, "demo done");
	}
	return context;
}

function printTryIt({ sessionId, mobileToken, wsUrl, executionId }: DemoContext, push: PushSims): void {
	const sample = JSON.stringify({
		session_id: sessionId,
		mandate_id: `mio_try_${hex(3)}`,
		tenant_id: "tenant_demo",
		intent: "Summarise my inbox",
		dimensions: { sim_scenario: "happy" },
		delivery_channels: ["app"],
	});
	const lines = [
		"",
		`Worker ${WORKER_URL}   ObeGee simulator ${SIM_URL}   OpenClaw gateway simulator ${GATEWAY_URL}`,
		`Push simulators: Expo ${push.expo.url}   APNs ${push.apns.url}   FCM ${push.fcm.url}   Web Push ${push.webpush.url}`,
		"(Ctrl-C stops the Worker and every simulator)",
		"",
		`# The pipeline card page (start mandates in any simulator scenario): ${WORKER_URL}/`,
		"# Or drive one from this terminal: npm run demo -- --scenario slow",
		"",
		"# Watch the demo session live like a phone does (the token is valid for 2 h):",
		`npx node -e 'const ws = new WebSocket(process.argv[1]); ws.onmessage = (e) => console.log(e.data)' '${wsUrl}'`,
		"",
		"# The session's current state:",
		`curl -s ${WORKER_URL}/api/sessions/${sessionId}/progress -H 'Authorization: Bearer ${mobileToken}'`,
		"",
		"# Load the dev secrets into this shell, then run another mandate in the same session:",
		"set -a; . ./.dev.vars; set +a",
		`curl -s -X POST ${WORKER_URL}/api/mandate/execute -H "Authorization: Bearer $SERVICE_TOKEN" -H 'content-type: application/json' -d '${sample}'`,
		"",
		"# An execution's record and timeline:",
		`curl -s ${WORKER_URL}/api/executions/${executionId ?? "<execution_id>"} -H "Authorization: Bearer $SERVICE_TOKEN"`,
		"",
		`# Simulator scenarios (dimensions.sim_scenario, or the default for every mandate): ${SCENARIOS.join(" ")}`,
		`curl -s -X POST ${SIM_URL}/__sim/default-scenario -d '{"scenario":"slow"}'`,
		`curl -s ${SIM_URL}/__sim/calls`,
		"",
		"# The OpenClaw gateway simulator: who is connected, and a scripted run for an execution by hand:",
		`curl -s ${GATEWAY_CONTROL_URL}/__sim/state`,
		`curl -s -X POST ${GATEWAY_CONTROL_URL}/__sim/runs -d '{"runId":"<execution_id>","paceMs":200}'`,
		"",
		`# The demo user's push devices, and every request a push simulator received (each one's /__sim/requests):`,
		`curl -s ${WORKER_URL}/api/devices -H 'Authorization: Bearer ${mobileToken}'`,
		`curl -s ${push.apns.url}/__sim/requests`,
		"# Make the APNs simulator call the next push's device unregistered (the Worker then removes it):",
		`curl -s -X POST ${push.apns.url}/__sim/faults -d '{"kind":"unregistered","count":1}'`,
		"",
	];
	console.log(lines.join("\n"));
}

// ---- main ----

async function main(): Promise<void> {
	const vars = ensureDevVars();
	const pushes = new PushesSeen();
	await assertPortFree(WORKER_PORT, "Worker", "PORT");
	await assertPortFree(SIM_PORT, "ObeGee simulator", "SIM_PORT");
	await assertPortFree(GATEWAY_PORT, "OpenClaw gateway simulator", "GATEWAY_PORT");

	const gateway = await startGatewaySim({
		host: HOST,
		port: GATEWAY_PORT,
		token: vars.OPENCLAW_GATEWAY_TOKEN ?? "",
		log: (line) => console.log(`[gateway] ${line}`),
	});
	// ObeGee's simulator starts each execution's agent run on the gateway (runId = execution id).
	const sim = await startObeGeeSim({
		host: HOST,
		port: SIM_PORT,
		apiToken: vars.OBEGEE_API_TOKEN ?? "",
		webhookSecret: vars.WEBHOOK_SECRET ?? "",
		webhookUrl: `${WORKER_URL}/api/dispatch/delivery-webhook`,
		log: (line) => console.log(`[sim] ${line}`),
		agent: gatewayAgent(gateway),
	});
	say(`ObeGee simulator on ${sim.url}, OpenClaw gateway simulator on ${gateway.url}`);
	// Test-only provider keys made for this run (never real ones); the Worker gets them as vars.
	const push = await startPushSims({
		host: HOST,
		tokenUpdateMinIntervalMs: 0,
		expoAccessToken: `dev_expo_${hex(24)}`,
		log: (line) => console.log(line),
		onPush: (received) => pushes.add(received),
	});
	say(
		`push simulators (test-only keys made for this run): Expo ${push.expo.url}, APNs ${push.apns.url}, FCM ${push.fcm.url}, Web Push ${push.webpush.url}`,
	);

	let worker: RunningWorker | null = null;
	let stopping = false;
	const stopAll = async (code: number) => {
		if (stopping) return;
		stopping = true;
		say("stopping wrangler and the simulators");
		await worker?.stop();
		await sim.close();
		await gateway.close();
		await push.close();
		process.exit(code);
	};
	process.once("SIGINT", () => void stopAll(0));
	process.once("SIGTERM", () => void stopAll(0));

	try {
		worker = await startWorker(push.env);
	} catch (error) {
		console.error(`[start] ${error instanceof StartError ? error.message : String(error)}`);
		await stopAll(1);
		return;
	}
	worker.onExit((why) => {
		if (stopping) return;
		console.error(`[start] wrangler dev exited unexpectedly (${why})`);
		void stopAll(1);
	});
	say(`Worker healthy on ${WORKER_URL}`);
	say(`pipeline card page: ${WORKER_URL}/  (npm run demo drives a mandate from this terminal)`);

	printTryIt(await runDemo(vars, pushes), push);
}

main().catch((error: unknown) => {
	const message = error instanceof StartError ? error.message : ((error as Error)?.stack ?? String(error));
	console.error(`[start] ${message}`);
	process.exit(1);
});
