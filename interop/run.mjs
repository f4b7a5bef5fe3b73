// `npm run test:interop`: the Worker against the REAL OpenClaw Gateway (issue 3, "Interop").
//   1. installs interop/node_modules (openclaw@2026.9.6) if missing, with the project's Node 24 on PATH,
//   2. a loopback OpenAI-compatible mock model: one `read` tool call, then a streamed text answer,
//   3. `openclaw gateway run` on loopback with token auth and a temp HOME/state/config (OPENCLAW-NOTES.md),
//   4. the ObeGee simulator and `wrangler dev` pointed at both,
//   5. a phone socket, one executed mandate, and the agent run started on the gateway the way the MyndLens
//      service does it (a separate gateway client, `agent` with idempotencyKey = execution id),
//   6. checks on what the phone received; prints "N passed, M failed", exits non-zero on failure and
//      stops everything it started.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { startObeGeeSim } from "../sim/obegee.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
const HOST = "127.0.0.1";
const ANSWER = "The weekly report was sent to the team. Revenue is up 4%.";
const REPORT = "# Weekly report\nRevenue up 4%.\n";
// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences are what it strips.
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;
const children = [];
const cleanups = [];
const results = [];

function say(line) {
	console.log(`[interop] ${line}`);
}

function check(name, ok, detail = "") {
	results.push({ name, ok });
	console.log(`${ok ? "PASS" : "FAIL"} ${name}${ok || !detail ? "" : ` — ${detail}`}`);
}

async function freePort() {
	const server = createServer();
	await new Promise((resolve) => server.listen(0, HOST, resolve));
	const { port } = server.address();
	await new Promise((resolve) => server.close(resolve));
	return port;
}

function ensureInstalled() {
	if (existsSync(join(HERE, "node_modules", "openclaw", "openclaw.mjs"))) return;
	say("installing openclaw@2026.9.6 into interop/node_modules (~90 s)");
	const bin = join(ROOT, "node_modules", ".bin");
	// Exactly what interop/package-lock.json says. Its install scripts are reviewed and denied in
	// package.json "allowScripts" (npm 11 skips unlisted ones anyway): none is needed here — koffi and
	// fs-safe ship prebuilds, openclaw's postinstall only prunes stale dist files after an upgrade.
	const result = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], {
		cwd: HERE,
		stdio: "inherit",
		env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
	});
	if (result.status !== 0) throw new Error(`npm install in interop/ failed (exit ${result.status})`);
}

/** An OpenAI-compatible model on loopback: first a `read` tool call, then (given the tool result) the answer. */
async function startMockModel() {
	const server = createServer(async (req, res) => {
		if (req.method === "GET" && req.url?.startsWith("/v1/models")) {
			res.writeHead(200, { "content-type": "application/json" });
			res.end(
				JSON.stringify({ object: "list", data: [{ id: "mock-1", object: "model", owned_by: "mock" }] }),
			);
			return;
		}
		const chunks = [];
		for await (const chunk of req) chunks.push(chunk);
		const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
		const toolDone = (body.messages ?? []).some((m) => m.role === "tool");
		res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
		const send = (delta, finish = null) =>
			res.write(
				`data: ${JSON.stringify({
					id: "chatcmpl-mock",
					object: "chat.completion.chunk",
					created: Math.floor(Date.now() / 1000),
					model: "mock-1",
					choices: [{ index: 0, delta, finish_reason: finish }],
				})}\n\n`,
			);
		if (!toolDone) {
			send({
				role: "assistant",
				tool_calls: [
					{
						index: 0,
						id: "call_1",
						type: "function",
						function: { name: "read", arguments: '{"path":"REPORT.md"}' },
					},
				],
			});
			send({}, "tool_calls");
		} else {
			send({ role: "assistant", content: "" });
			for (let i = 0; i < ANSWER.length; i += 7) {
				send({ content: ANSWER.slice(i, i + 7) });
				await sleep(40);
			}
			send({}, "stop");
		}
		res.write("data: [DONE]\n\n");
		res.end();
	});
	await new Promise((resolve) => server.listen(0, HOST, resolve));
	cleanups.push(() => new Promise((resolve) => server.close(resolve)));
	return server.address().port;
}

/**
 * Starts a process in its own process group (stopAll kills the group) and returns a `waitFor(pattern,
 * timeoutMs)` that resolves on the first matching output line, past or future.
 */
function spawnLogged(command, args, options, prefix) {
	const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"], detached: true });
	children.push(child);
	const lines = [];
	const waiters = new Set();
	let exited = null;
	const onLine = (raw) => {
		// The gateway colours its log lines even into a pipe ("\x1b[36m[gateway]\x1b[39m \x1b[36mready").
		const line = raw.replace(ANSI, "");
		if (process.env.INTEROP_VERBOSE) console.log(`${prefix} ${line}`);
		lines.push(line);
		for (const waiter of waiters) waiter.onLine(line);
	};
	createInterface({ input: child.stdout }).on("line", onLine);
	createInterface({ input: child.stderr }).on("line", onLine);
	child.once("exit", (code, signal) => {
		exited = new Error(`${prefix} exited early (${code ?? signal}); rerun with INTEROP_VERBOSE=1`);
		for (const waiter of waiters) waiter.onExit();
	});
	const waitFor = (pattern, timeoutMs, what = String(pattern)) =>
		new Promise((resolve, reject) => {
			if (lines.some((line) => pattern.test(line))) return resolve();
			if (exited) return reject(exited);
			const waiter = {
				onLine: (line) => pattern.test(line) && done(resolve),
				onExit: () => done(() => reject(exited)),
			};
			const timer = setTimeout(
				() => done(() => reject(new Error(`${prefix} ${what}: not within ${timeoutMs / 1000} s`))),
				timeoutMs,
			);
			function done(settle) {
				clearTimeout(timer);
				waiters.delete(waiter);
				settle();
			}
			waiters.add(waiter);
		});
	return { child, waitFor };
}

async function startGateway(temp, modelPort, token) {
	const port = await freePort();
	const workspace = join(temp, "workspace");
	mkdirSync(workspace, { recursive: true });
	writeFileSync(join(workspace, "REPORT.md"), REPORT);
	const config = {
		models: {
			mode: "replace",
			providers: {
				mock: {
					baseUrl: `http://${HOST}:${modelPort}/v1`,
					apiKey: "test",
					api: "openai-completions",
					request: { allowPrivateNetwork: true },
					models: [
						{
							id: "mock-1",
							name: "mock-1",
							api: "openai-completions",
							reasoning: false,
							input: ["text"],
							cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
							contextWindow: 128000,
							maxTokens: 4096,
						},
					],
				},
			},
		},
		agents: { defaults: { model: { primary: "mock/mock-1" }, workspace } },
		gateway: { mode: "local", bind: "loopback", port, auth: { mode: "token", token } },
		// Its file log defaults to /tmp/openclaw/; keep it in the temp dir that is removed afterwards.
		logging: { file: join(temp, "openclaw.log") },
	};
	const configPath = join(temp, "openclaw.json");
	writeFileSync(configPath, JSON.stringify(config));
	const env = {
		...process.env,
		HOME: temp,
		OPENCLAW_HOME: join(temp, "home"),
		OPENCLAW_STATE_DIR: join(temp, "state"),
		OPENCLAW_CONFIG_PATH: configPath,
		OPENCLAW_SKIP_CHANNELS: "1",
		OPENCLAW_SKIP_GMAIL_WATCHER: "1",
		OPENCLAW_SKIP_CRON: "1",
		OPENCLAW_SKIP_CANVAS_HOST: "1",
		OPENCLAW_SKIP_BROWSER_CONTROL_SERVER: "1",
		NO_COLOR: "1",
	};
	const args = [
		join(HERE, "node_modules", "openclaw", "openclaw.mjs"),
		"gateway",
		"run",
		"--port",
		String(port),
		"--bind",
		"loopback",
		"--auth",
		"token",
		"--token",
		token,
		"--allow-unconfigured",
	];
	const gateway = spawnLogged(process.execPath, args, { cwd: temp, env }, "[gateway]");
	// Not the earlier "spawn broker ready" line (OPENCLAW-NOTES.md).
	await gateway.waitFor(/\[gateway\] ready\b/, 90_000, "never logged `[gateway] ready`");
	return `ws://${HOST}:${port}`;
}

async function startWorker(temp, vars) {
	const port = await freePort();
	const wrangler = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
	const persist = join(temp, "wrangler");
	const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" };
	const migrate = spawnSync(
		process.execPath,
		[wrangler, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persist],
		{
			cwd: ROOT,
			env,
			encoding: "utf8",
		},
	);
	if (migrate.status !== 0) throw new Error(`d1 migrations failed: ${migrate.stderr}`);
	const varArgs = Object.entries(vars).flatMap(([key, value]) => ["--var", `${key}:${value}`]);
	const args = [
		wrangler,
		"dev",
		"--ip",
		HOST,
		"--port",
		String(port),
		// Not the default 9229: another wrangler dev on this machine must not collide with this one.
		"--inspector-port",
		String(await freePort()),
		"--persist-to",
		persist,
		...varArgs,
	];
	const worker = spawnLogged(process.execPath, args, { cwd: ROOT, env }, "[worker]");
	await worker.waitFor(/Ready on http/, 90_000, "never logged `Ready on`");
	return { url: `http://${HOST}:${port}`, waitFor: worker.waitFor };
}

/**
 * The MyndLens service's part: its own gateway client starts the agent run for the execution. A plain
 * token client, no device identity: on loopback the real gateway keeps its requested scopes.
 */
async function startAgentRun(gatewayUrl, token, executionId) {
	const ws = new WebSocket(gatewayUrl);
	const outcome = new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error("agent run did not finish within 120 s")), 120_000);
		const fail = (error) => {
			clearTimeout(timer);
			reject(error);
		};
		let hello = null;
		ws.on("message", (data) => {
			const frame = JSON.parse(String(data));
			if (frame.type === "event" && frame.event === "connect.challenge") {
				ws.send(
					JSON.stringify({
						type: "req",
						id: "c1",
						method: "connect",
						params: {
							minProtocol: 4,
							maxProtocol: 4,
							client: { id: "gateway-client", version: "1.0.0", platform: "linux", mode: "backend" },
							role: "operator",
							scopes: ["operator.read", "operator.write"],
							caps: ["tool-events"],
							auth: { token },
						},
					}),
				);
			} else if (frame.type === "res" && frame.id === "c1") {
				if (!frame.ok) return fail(new Error(`service connect refused: ${JSON.stringify(frame.error)}`));
				hello = frame.payload;
				ws.send(
					JSON.stringify({
						type: "req",
						id: "r1",
						method: "agent",
						params: {
							message: "Read REPORT.md and tell me what it says.",
							idempotencyKey: executionId,
							sessionKey: `agent:main:myndlens-${executionId}`,
							deliver: false,
						},
					}),
				);
			} else if (frame.type === "res" && frame.id === "r1" && frame.payload?.status !== "accepted") {
				clearTimeout(timer);
				resolve({ hello, result: frame });
			}
		});
		ws.on("error", fail);
		ws.on("close", (code) => fail(new Error(`gateway closed the service connection (${code})`)));
	});
	try {
		return await outcome;
	} finally {
		ws.close();
	}
}

async function until(condition, timeoutMs) {
	for (const deadline = Date.now() + timeoutMs; !condition() && Date.now() < deadline; ) await sleep(100);
	return condition();
}

function describe(frame) {
	if (frame.event === "pipeline_stage") return `stage ${frame.data.stage} ${frame.data.status}`;
	if (frame.type === "progress") return `progress ${frame.progress}% ${frame.status}`;
	if (frame.type === "response_chunk") return `chunk ${JSON.stringify(frame.chunk)}`;
	return frame.type ?? frame.event ?? "?";
}

async function main() {
	const started = Date.now();
	ensureInstalled();
	const temp = mkdtempSync(join(tmpdir(), "myndlens-interop-"));
	cleanups.push(() => rmSync(temp, { recursive: true, force: true }));
	const secrets = {
		OBEGEE_API_TOKEN: `it_${randomBytes(12).toString("hex")}`,
		WEBHOOK_SECRET: `whsec_${randomBytes(32).toString("base64")}`,
		SESSION_TOKEN_SECRET: randomBytes(32).toString("base64url"),
		SERVICE_TOKEN: `it_service_${randomBytes(12).toString("hex")}`,
		ADMIN_TOKEN: `it_admin_${randomBytes(12).toString("hex")}`,
	};
	const gatewayToken = `it_gw_${randomBytes(16).toString("hex")}`;

	const modelPort = await startMockModel();
	say(`mock model on ${modelPort}; starting the OpenClaw gateway`);
	const gatewayUrl = await startGateway(temp, modelPort, gatewayToken);
	say(`gateway ready at ${gatewayUrl}`);
	const obegee = await startObeGeeSim({
		host: HOST,
		port: 0,
		apiToken: secrets.OBEGEE_API_TOKEN,
		webhookSecret: secrets.WEBHOOK_SECRET,
		log: () => {},
	});
	cleanups.push(() => obegee.close());
	const worker = await startWorker(temp, {
		...secrets,
		OBEGEE_BASE_URL: obegee.url,
		OPENCLAW_GATEWAY_URL: gatewayUrl,
		OPENCLAW_GATEWAY_TOKEN: gatewayToken,
		// No ObeGee poll during the ~10 s run: its EXECUTING status would also show "Agent started" at
		// 10 %, so every sub-status the phone sees after "Mandate queued" comes from the real gateway.
		POLL_INTERVAL_MS: "60000",
	});
	say(`worker ready at ${worker.url}`);

	const sessionId = `interop-${randomBytes(4).toString("hex")}`;
	const mandateId = `mio_interop_${randomBytes(4).toString("hex")}`;
	const mobile = await new SignJWT({ sid: sessionId })
		.setProtectedHeader({ alg: "HS256" })
		.setSubject("interop")
		.setExpirationTime("1h")
		.sign(new TextEncoder().encode(secrets.SESSION_TOKEN_SECRET));
	const frames = [];
	const phone = new WebSocket(
		`${worker.url.replace("http", "ws")}/api/sessions/${sessionId}/ws?token=${mobile}`,
	);
	phone.on("message", (data) => frames.push(JSON.parse(String(data))));
	await new Promise((resolve, reject) => {
		phone.once("open", resolve);
		phone.once("error", reject);
	});
	cleanups.push(() => phone.close());

	// ObeGee's "manual" scenario keeps the execution running, so only the gateway can complete stage 9.
	const execute = await fetch(`${worker.url}/api/mandate/execute`, {
		method: "POST",
		headers: { authorization: `Bearer ${secrets.SERVICE_TOKEN}`, "content-type": "application/json" },
		body: JSON.stringify({
			session_id: sessionId,
			mandate_id: mandateId,
			tenant_id: "tenant_interop",
			intent: "Summarise the weekly report",
			dimensions: { sim_scenario: "manual" },
			generated_skills: [],
			delivery_channels: ["app"],
		}),
	});
	const executeBody = await execute.json();
	const executionId = executeBody.execution_id;
	if (typeof executionId !== "string") {
		throw new Error(`execute answered ${execute.status} ${JSON.stringify(executeBody)}`);
	}
	const stage9 = (status) =>
		frames.some(
			(f) =>
				f.event === "pipeline_stage" &&
				f.data?.mandate_id === mandateId &&
				f.data?.stage === 9 &&
				f.data?.status === status,
		);
	if (!(await until(() => stage9("active"), 10_000))) throw new Error("stage 9 never became active");

	// Stage 9 makes the Session DO ask the tenant's Gateway DO to watch the execution; it then dials
	// the real gateway. Start the run only once that socket is up, so no event can be missed.
	let connected = true;
	try {
		await worker.waitFor(/"openclaw: gateway connected".*"protocol":4/, 30_000, "Gateway DO handshake");
	} catch (error) {
		connected = false;
		say(error.message);
	}
	check("the Gateway DO completes the protocol-4 handshake with the real gateway", connected);

	const { hello, result } = await startAgentRun(gatewayUrl, gatewayToken, executionId);
	say(
		`service client on loopback without a device identity got scopes ${JSON.stringify(hello?.auth?.scopes)}`,
	);
	check(
		"the real gateway ran the agent with runId = execution id",
		result.ok === true && result.payload?.status === "ok" && result.payload?.runId === executionId,
		JSON.stringify(result.error ?? { status: result.payload?.status, runId: result.payload?.runId }),
	);

	const mine = () => frames.filter((f) => f.execution_id === executionId);
	const answerOf = () =>
		mine()
			.filter((f) => f.type === "response_chunk")
			.map((f) => f.chunk)
			.join("");
	// The last chat delta may come after the lifecycle end (OPENCLAW-NOTES.md): wait for the whole answer,
	// then a little longer so that a chunk sent twice would show.
	await until(() => stage9("completed") && answerOf().length >= ANSWER.length, 15_000);
	await sleep(750);

	const progressFrames = mine().filter((f) => f.type === "progress");
	const statuses = progressFrames.map((f) => f.status);
	const progress = progressFrames.map((f) => f.progress);
	const answer = answerOf();
	const toolStep = statuses.findIndex((s) => /REPORT\.md|read tool/i.test(s));
	check(
		"the phone sees the sub-statuses: agent started, the read tool, generating, complete",
		statuses.indexOf("Agent started") >= 0 &&
			toolStep > statuses.indexOf("Agent started") &&
			statuses.indexOf("Generating response...") > toolStep &&
			statuses.at(-1) === "Execution complete",
		JSON.stringify(statuses),
	);
	check(
		"progress only rises, from 10 through the tool step to 100",
		progress.every((p, i) => i === 0 || p >= progress[i - 1]) &&
			progress.includes(10) &&
			progress[toolStep] > 10 &&
			progress.at(-1) === 100,
		JSON.stringify(progress),
	);
	check("the response chunks join to exactly the model's answer", answer === ANSWER, JSON.stringify(answer));
	check("the lifecycle end completes stage 9 (ObeGee still running)", stage9("completed"));

	const failedNow = results.some((r) => !r.ok);
	if (failedNow || process.env.INTEROP_VERBOSE) {
		say(`what the phone received for ${executionId}:`);
		for (const frame of frames) {
			if (frame.execution_id === executionId || frame.data?.mandate_id === mandateId)
				console.log(`  #${frame.seq} ${describe(frame)}`);
		}
	}
	say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function stopAll() {
	for (const child of children) {
		try {
			process.kill(-child.pid, "SIGTERM");
		} catch {
			// already gone
		}
	}
	await sleep(500);
	for (const child of children) {
		try {
			process.kill(-child.pid, "SIGKILL");
		} catch {
			// already gone
		}
	}
	for (const cleanup of cleanups.reverse()) {
		try {
			await cleanup();
		} catch {
			// best effort
		}
	}
}

// Ctrl-C or a cancelled CI job: the gateway and wrangler run in their own process groups and would outlive us.
for (const signal of ["SIGINT", "SIGTERM"]) {
	process.once(signal, () => {
		say(`${signal}: stopping everything`);
		stopAll().finally(() => process.exit(130));
	});
}

let crashed = null;
try {
	await main();
} catch (error) {
	crashed = error;
	check("interop run completed", false, error instanceof Error ? error.message : String(error));
} finally {
	await stopAll();
}
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed > 0 || crashed ? 1 : 0);
