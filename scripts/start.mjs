// `npm start`: the whole stack on this machine, then a live demo of one mandate.
//   1. `.dev.vars` with fresh random dev secrets (kept when it exists),
//   2. local D1 migrations,
//   3. the OpenClaw gateway simulator on 127.0.0.1:8789 (GATEWAY_PORT) and the ObeGee simulator on
//      127.0.0.1:8788 (SIM_PORT), which starts a scripted agent run on the gateway for each execution
//      (as the MyndLens service does in production),
//   4. `wrangler dev` on 127.0.0.1:8787 (PORT), pointed at both simulators,
//   5. a demo: a phone's WebSocket, stages 1–3 from the pipeline, one execute, every frame printed —
//      the agent's sub-statuses, rising progress and its answer streaming in, then stage 10.
// It keeps running until Ctrl-C, then stops wrangler and both simulators.
// Runs under Node 24 (npm puts the project's node first on PATH), which imports the simulator's
// TypeScript directly.

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import { agentAnswer, gatewayAgent, SCENARIOS, startObeGeeSim } from "../sim/obegee.ts";
import { startGatewaySim } from "../sim/openclaw.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DEV_VARS = join(ROOT, ".dev.vars");
const PERSIST_DIR = ".wrangler/state";
const HOST = "127.0.0.1";
const WORKER_PORT = portFromEnv("PORT", 8787);
const SIM_PORT = portFromEnv("SIM_PORT", 8788);
const GATEWAY_PORT = portFromEnv("GATEWAY_PORT", 8789);
const WORKER_URL = `http://${HOST}:${WORKER_PORT}`;
const SIM_URL = `http://${HOST}:${SIM_PORT}`;
const GATEWAY_URL = `ws://${HOST}:${GATEWAY_PORT}`;
const GATEWAY_CONTROL_URL = `http://${HOST}:${GATEWAY_PORT}`;
const DEMO_INTENT = "Send weekly report to team";
const HEALTH_TIMEOUT_MS = 60_000;
const DEMO_TIMEOUT_MS = 90_000;
const TOOL_ENV = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" };

/** Dev secrets and how to make each one when `.dev.vars` lacks it. */
const SECRET_FACTORIES = {
	OBEGEE_API_TOKEN: () => `dev_obegee_${randomBytes(24).toString("hex")}`,
	WEBHOOK_SECRET: () => `whsec_${randomBytes(32).toString("base64")}`,
	SESSION_TOKEN_SECRET: () => randomBytes(32).toString("base64url"),
	SERVICE_TOKEN: () => `dev_service_${randomBytes(24).toString("hex")}`,
	ADMIN_TOKEN: () => `dev_admin_${randomBytes(24).toString("hex")}`,
	OPENCLAW_GATEWAY_TOKEN: () => `dev_gateway_${randomBytes(24).toString("hex")}`,
};

/** A failure the user can act on: printed without a stack trace. */
class StartError extends Error {}

function portFromEnv(name, fallback) {
	const raw = process.env[name];
	if (raw === undefined || raw === "") return fallback;
	const port = Number(raw);
	if (!Number.isInteger(port) || port < 1 || port > 65535) {
		console.error(`start: ${name}=${raw} is not a valid port`);
		process.exit(1);
	}
	return port;
}

function say(line) {
	console.log(`[start] ${line}`);
}

// ---- .dev.vars ----

/** Reads `KEY=value` and `KEY="value"` lines; comments and blank lines are skipped. */
function parseDevVars(text) {
	const vars = {};
	for (const line of text.split(/\r?\n/)) {
		const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
		if (!match || line.trimStart().startsWith("#")) continue;
		const [, key, raw] = match;
		const quoted = /^"(.*)"$/.exec(raw) ?? /^'(.*)'$/.exec(raw);
		vars[key] = quoted ? quoted[1] : raw;
	}
	return vars;
}

/** Loads `.dev.vars`, adding any missing secret (so an older file keeps working). */
function ensureDevVars() {
	const exists = existsSync(DEV_VARS);
	const text = exists ? readFileSync(DEV_VARS, "utf8") : "";
	const vars = parseDevVars(text);
	const missing = Object.keys(SECRET_FACTORIES).filter((key) => !vars[key]);
	if (missing.length > 0) {
		const header = exists
			? ""
			: "# Local dev secrets for wrangler dev and the simulators (made by npm start).\n";
		const lines = missing.map((key) => {
			vars[key] = SECRET_FACTORIES[key]();
			return `${key}=${vars[key]}\n`;
		});
		const separator = text === "" || text.endsWith("\n") ? "" : "\n";
		writeFileSync(DEV_VARS, text + separator + header + lines.join(""), { mode: 0o600 });
	}
	if (!exists) say("created .dev.vars with fresh random dev secrets");
	else if (missing.length > 0) say(`added ${missing.join(", ")} to .dev.vars`);
	else say("using the secrets in .dev.vars");
	if (!vars.WEBHOOK_SECRET.startsWith("whsec_")) {
		throw new StartError("WEBHOOK_SECRET in .dev.vars must be a Standard Webhooks secret (whsec_<base64>)");
	}
	return vars;
}

// ---- processes ----

function assertPortFree(port, what, envName) {
	return new Promise((resolve, reject) => {
		const probe = createServer();
		probe.once("error", (error) => {
			const taken = error.code === "EADDRINUSE" || error.code === "EACCES";
			const hint = `stop whatever uses it, or set ${envName}=<another port>`;
			reject(taken ? new StartError(`port ${port} (${what}) on ${HOST} is already in use: ${hint}`) : error);
		});
		probe.listen(port, HOST, () => probe.close(() => resolve()));
	});
}

/** The project's wrangler, run by this same Node (the one npm chose), or npx as a fallback. */
function wranglerCommand(args) {
	const local = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
	if (existsSync(local)) return [process.execPath, [local, ...args]];
	return ["npx", ["--no-install", "wrangler", ...args]];
}

function prefixLines(stream, prefix) {
	createInterface({ input: stream }).on("line", (line) => console.log(`${prefix} ${line}`));
}

function spawnWrangler(args, prefix) {
	const [command, commandArgs] = wranglerCommand(args);
	// Its own process group, so stopping it also stops the workerd processes it starts.
	const child = spawn(command, commandArgs, {
		cwd: ROOT,
		env: TOOL_ENV,
		stdio: ["ignore", "pipe", "pipe"],
		detached: true,
	});
	prefixLines(child.stdout, prefix);
	prefixLines(child.stderr, prefix);
	return child;
}

function exitCodeOf(child) {
	return new Promise((resolve) => {
		if (child.exitCode !== null) resolve(child.exitCode);
		else child.once("exit", (code, signal) => resolve(code ?? signal));
	});
}

async function applyMigrations() {
	say("applying local D1 migrations");
	const child = spawnWrangler(
		["d1", "migrations", "apply", "DB", "--local", "--persist-to", PERSIST_DIR],
		"[d1]",
	);
	const code = await exitCodeOf(child);
	if (code !== 0)
		throw new StartError(`wrangler d1 migrations apply failed (exit ${code}); see the [d1] lines above`);
}

function startWorker() {
	say(`starting wrangler dev on ${WORKER_URL}`);
	return spawnWrangler(
		[
			"dev",
			"--ip",
			HOST,
			"--port",
			String(WORKER_PORT),
			"--persist-to",
			PERSIST_DIR,
			"--var",
			`OBEGEE_BASE_URL:${SIM_URL}`,
			// Every tenant's default gateway; its token (OPENCLAW_GATEWAY_TOKEN) comes from .dev.vars.
			"--var",
			`OPENCLAW_GATEWAY_URL:${GATEWAY_URL}`,
			"--var",
			"POLL_INTERVAL_MS:2000",
			"--var",
			"DEMO_ROUTES:true",
		],
		"[worker]",
	);
}

async function waitForHealth(worker) {
	const deadline = Date.now() + HEALTH_TIMEOUT_MS;
	while (Date.now() < deadline) {
		if (worker.exitCode !== null || worker.signalCode !== null) {
			throw new StartError(
				"wrangler dev exited before the Worker became healthy; see the [worker] lines above",
			);
		}
		try {
			const response = await fetch(`${WORKER_URL}/health`, { signal: AbortSignal.timeout(2000) });
			await response.body?.cancel();
			if (response.status === 200) return;
		} catch {
			// not listening yet
		}
		await sleep(500);
	}
	throw new StartError(`the Worker did not answer GET /health with 200 within ${HEALTH_TIMEOUT_MS / 1000} s`);
}

/** Stops a process group started with `detached`: politely, then for good after a grace period. */
async function stopGroup(child) {
	if (child.exitCode !== null || child.signalCode !== null) return;
	const signalGroup = (signal) => {
		try {
			process.kill(-child.pid, signal);
		} catch {
			// already gone
		}
	};
	signalGroup("SIGINT");
	const exited = await Promise.race([exitCodeOf(child).then(() => true), sleep(5000).then(() => false)]);
	if (!exited) signalGroup("SIGKILL");
}

// ---- demo ----

function hex(bytes) {
	return randomBytes(bytes).toString("hex");
}

async function callWorker(method, path, { token, body } = {}) {
	const response = await fetch(WORKER_URL + path, {
		method,
		headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
		body: body ? JSON.stringify(body) : undefined,
		signal: AbortSignal.timeout(15_000),
	});
	const text = await response.text();
	let json;
	try {
		json = JSON.parse(text);
	} catch {
		json = undefined;
	}
	if (!response.ok) {
		const error = json?.error;
		const detail = error?.message ? `${error.code ?? "error"}: ${error.message}` : text.slice(0, 300);
		throw new StartError(`${method} ${path} answered ${response.status} (${detail})`);
	}
	return json;
}

function describeStage(data) {
	let line = `stage ${data.stage} ${data.stage_name}: ${data.status}`;
	if (data.message) line += ` (${data.message})`;
	if (data.summary) line += ` "${data.summary}"`;
	if (data.delivered_to) line += ` delivered to ${data.delivered_to.join(", ")}`;
	return line;
}

function describeSnapshot(frame) {
	const mandates = frame.mandates ?? [];
	const states = mandates.map((m) => `${m.mandate_id} ${m.state} ${m.progress ?? 0}%`);
	return `snapshot: ${mandates.length} mandate(s)${states.length ? ` [${states.join("; ")}]` : ""}`;
}

function progressBar(percent) {
	const filled = Math.round((Math.min(100, Math.max(0, percent)) / 100) * 20);
	return `${"█".repeat(filled)}${"░".repeat(20 - filled)}`;
}

/** One readable line per frame the phone receives. */
function describeFrame(frame) {
	if (frame.event === "pipeline_stage") return describeStage(frame.data ?? {});
	switch (frame.type) {
		case "progress":
			return `progress ${progressBar(frame.progress)} ${String(frame.progress).padStart(3)}% ${frame.status}`;
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

function isFinalFrame(frame, mandateId) {
	if (frame.event !== "pipeline_stage" || frame.data?.mandate_id !== mandateId) return false;
	return frame.data.status === "failed" || (frame.data.stage === 10 && frame.data.status === "completed");
}

/**
 * Opens the phone's socket; resolves once open, with a promise that settles on the mandate's last
 * stage and `answer()`, the agent's answer as streamed so far (its chunks joined, in order).
 */
function watchSession(url, mandateId) {
	return new Promise((resolveOpen, rejectOpen) => {
		const ws = new WebSocket(url);
		const chunks = [];
		const answer = () => ({ text: chunks.join(""), chunks: chunks.length });
		let settleFinal;
		const final = new Promise((resolve) => {
			settleFinal = resolve;
		});
		const fail = (why) => {
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
			let frame;
			try {
				frame = JSON.parse(String(event.data));
			} catch {
				console.log(`[phone] (not JSON) ${String(event.data).slice(0, 200)}`);
				return;
			}
			console.log(`[phone] #${frame.seq ?? "-"} ${describeFrame(frame)}`);
			if (frame.type === "response_chunk" && frame.mandate_id === mandateId) chunks.push(frame.chunk);
			if (isFinalFrame(frame, mandateId)) settleFinal(frame);
		});
	});
}

async function runDemo(vars) {
	const sessionId = `demo-${hex(4)}`;
	const mandateId = `mio_demo_${hex(4)}`;
	const mobileToken = await new SignJWT({ sid: sessionId, sub: "demo-user" })
		.setProtectedHeader({ alg: "HS256" })
		.setExpirationTime("2h")
		.sign(new TextEncoder().encode(vars.SESSION_TOKEN_SECRET));
	const wsUrl = `ws://${HOST}:${WORKER_PORT}/api/sessions/${sessionId}/ws?token=${mobileToken}`;
	const context = { sessionId, mandateId, mobileToken, wsUrl, executionId: null };
	say(`demo: session ${sessionId}, mandate ${mandateId}`);
	let socket = null;
	try {
		const { ws, final, answer } = await watchSession(wsUrl, mandateId);
		socket = ws;
		for (const stage of [1, 2, 3]) {
			await callWorker("POST", `/api/sessions/${sessionId}/stages`, {
				token: vars.SERVICE_TOKEN,
				body: { mandate_id: mandateId, stage, status: "completed" },
			});
		}
		const executed = await callWorker("POST", "/api/mandate/execute", {
			token: vars.SERVICE_TOKEN,
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
		context.executionId = executed?.execution_id ?? null;
		say(`demo: execute answered ${JSON.stringify(executed)}`);
		const last = await Promise.race([final, sleep(DEMO_TIMEOUT_MS).then(() => "timeout")]);
		if (last === "timeout") throw new StartError(`no final stage within ${DEMO_TIMEOUT_MS / 1000} s`);
		if (last === null) throw new StartError("the WebSocket closed before the mandate finished");
		say(`demo: mandate ${last.data.status === "failed" ? "failed" : "completed"}`);
		const streamed = answer();
		if (streamed.chunks > 0) {
			const whole = streamed.text === agentAnswer(DEMO_INTENT) ? "the whole answer" : "an INCOMPLETE answer";
			say(
				`demo: the agent streamed ${whole} in ${streamed.chunks} chunk(s): ${JSON.stringify(streamed.text)}`,
			);
		} else {
			say("demo: no answer was streamed (is the OpenClaw gateway simulator reachable?)");
		}
	} catch (error) {
		console.error(`[start] DEMO FAILED: ${error instanceof Error ? error.message : String(error)}`);
		console.error("[start] the stack keeps running; the lines below let you try by hand");
	} finally {
		socket?.close(1000, "demo done");
	}
	return context;
}

function printTryIt({ sessionId, mobileToken, wsUrl, executionId }) {
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
		"(Ctrl-C stops all three)",
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
	];
	console.log(lines.join("\n"));
}

// ---- main ----

async function main() {
	const vars = ensureDevVars();
	await assertPortFree(WORKER_PORT, "Worker", "PORT");
	await assertPortFree(SIM_PORT, "ObeGee simulator", "SIM_PORT");
	await assertPortFree(GATEWAY_PORT, "OpenClaw gateway simulator", "GATEWAY_PORT");
	await applyMigrations();

	const gateway = await startGatewaySim({
		host: HOST,
		port: GATEWAY_PORT,
		token: vars.OPENCLAW_GATEWAY_TOKEN,
		log: (line) => console.log(`[gateway] ${line}`),
	});
	// ObeGee's simulator starts each execution's agent run on the gateway (runId = execution id).
	const sim = await startObeGeeSim({
		host: HOST,
		port: SIM_PORT,
		apiToken: vars.OBEGEE_API_TOKEN,
		webhookSecret: vars.WEBHOOK_SECRET,
		webhookUrl: `${WORKER_URL}/api/dispatch/delivery-webhook`,
		log: (line) => console.log(`[sim] ${line}`),
		agent: gatewayAgent(gateway),
	});
	say(`ObeGee simulator on ${sim.url}, OpenClaw gateway simulator on ${gateway.url}`);

	const worker = startWorker();
	let stopping = false;
	const stopAll = async (code) => {
		if (stopping) return;
		stopping = true;
		say("stopping wrangler and the simulators");
		await stopGroup(worker);
		await sim.close();
		await gateway.close();
		process.exit(code);
	};
	// A crash of this script must not leave wrangler running without its parent.
	process.on("exit", () => {
		if (worker.exitCode === null && worker.signalCode === null) {
			try {
				process.kill(-worker.pid, "SIGKILL");
			} catch {
				// already gone
			}
		}
	});
	process.once("SIGINT", () => void stopAll(0));
	process.once("SIGTERM", () => void stopAll(0));

	try {
		await waitForHealth(worker);
	} catch (error) {
		console.error(`[start] ${error instanceof StartError ? error.message : String(error)}`);
		await stopAll(1);
	}
	worker.once("exit", (code, signal) => {
		if (stopping) return;
		console.error(`[start] wrangler dev exited unexpectedly (${code ?? signal})`);
		void stopAll(1);
	});
	say(`Worker healthy on ${WORKER_URL}`);
	say(`pipeline card page: ${WORKER_URL}/  (npm run demo drives a mandate from this terminal)`);

	printTryIt(await runDemo(vars));
}

main().catch((error) => {
	const message = error instanceof StartError ? error.message : (error?.stack ?? String(error));
	console.error(`[start] ${message}`);
	process.exit(1);
});
