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
	const result = spawnSync("npm", ["install", "--no-audit", "--no-fund"], {
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

function spawnLogged(command, args, options, prefix, readyPattern, timeoutMs) {
	const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"], detached: true });
	children.push(child);
	return new Promise((resolve, reject) => {
		const timer = setTimeout(
			() => reject(new Error(`${prefix} not ready within ${timeoutMs / 1000} s`)),
			timeoutMs,
		);
		const onLine = (line) => {
			if (process.env.INTEROP_VERBOSE) console.log(`${prefix} ${line}`);
			if (readyPattern.test(line)) {
				clearTimeout(timer);
				resolve(child);
			}
		};
		createInterface({ input: child.stdout }).on("line", onLine);
		createInterface({ input: child.stderr }).on("line", onLine);
		child.once("exit", (code) => {
			clearTimeout(timer);
			reject(new Error(`${prefix} exited early (${code}); rerun with INTEROP_VERBOSE=1`));
		});
	});
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
	await spawnLogged(process.execPath, args, { cwd: temp, env }, "[gateway]", /\[gateway\] ready/, 90_000);
	return `ws://${HOST}:${port}`;
}

async function startWorker(temp, vars) {
	const port = await freePort();
	const wrangler = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
	const persist = join(temp, "wrangler");
	const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" };
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
	const args = [wrangler, "dev", "--ip", HOST, "--port", String(port), "--persist-to", persist, ...varArgs];
	await spawnLogged(process.execPath, args, { cwd: ROOT, env }, "[worker]", /Ready on/, 90_000);
	return `http://${HOST}:${port}`;
}

/** The MyndLens service's part: its own gateway client starts the agent run for the execution. */
async function startAgentRun(gatewayUrl, token, executionId) {
	const ws = new WebSocket(gatewayUrl);
	const outcome = new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error("agent run did not finish within 120 s")), 120_000);
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
				if (!frame.ok) return reject(new Error(`service connect refused: ${JSON.stringify(frame.error)}`));
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
				resolve(frame);
			}
		});
		ws.on("error", reject);
	});
	try {
		return await outcome;
	} finally {
		ws.close();
	}
}

async function main() {
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
	const workerUrl = await startWorker(temp, {
		...secrets,
		OBEGEE_BASE_URL: obegee.url,
		OPENCLAW_GATEWAY_URL: gatewayUrl,
		OPENCLAW_GATEWAY_TOKEN: gatewayToken,
	});
	say(`worker ready at ${workerUrl}`);

	const sessionId = `interop-${randomBytes(4).toString("hex")}`;
	const mandateId = `mio_interop_${randomBytes(4).toString("hex")}`;
	const mobile = await new SignJWT({ sid: sessionId })
		.setProtectedHeader({ alg: "HS256" })
		.setSubject("interop")
		.setExpirationTime("1h")
		.sign(new TextEncoder().encode(secrets.SESSION_TOKEN_SECRET));
	const frames = [];
	const phone = new WebSocket(
		`${workerUrl.replace("http", "ws")}/api/sessions/${sessionId}/ws?token=${mobile}`,
	);
	phone.on("message", (data) => frames.push(JSON.parse(String(data))));
	await new Promise((resolve, reject) => {
		phone.once("open", resolve);
		phone.once("error", reject);
	});
	cleanups.push(() => phone.close());

	const execute = await fetch(`${workerUrl}/api/mandate/execute`, {
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
	const { execution_id: executionId } = await execute.json();
	check("execute answers with an execution id", typeof executionId === "string", `status ${execute.status}`);
	const stage9 = (status) =>
		frames.some((f) => f.event === "pipeline_stage" && f.data?.stage === 9 && f.data?.status === status);
	for (let i = 0; i < 100 && !stage9("active"); i++) await sleep(100);
	// Give the Gateway DO a moment to open its socket before the run starts (it would still get the answer).
	await sleep(1000);

	const result = await startAgentRun(gatewayUrl, gatewayToken, executionId);
	check(
		"the real gateway ran the agent",
		result.ok === true && result.payload?.status === "ok",
		JSON.stringify(result.error ?? result.payload?.status),
	);
	for (let i = 0; i < 100 && !stage9("completed"); i++) await sleep(100);
	await sleep(1000);

	const mine = frames.filter((f) => f.execution_id === executionId);
	const statuses = mine.filter((f) => f.type === "progress").map((f) => f.status);
	const progress = mine.filter((f) => f.type === "progress").map((f) => f.progress);
	const answer = mine
		.filter((f) => f.type === "response_chunk")
		.map((f) => f.chunk)
		.join("");
	check(
		"the phone sees the agent start and its tool",
		statuses.includes("Agent started") && statuses.some((s) => /REPORT\.md|read tool/.test(s)),
		JSON.stringify(statuses),
	);
	check(
		"progress only rises and reaches 100",
		progress.every((p, i) => i === 0 || p >= progress[i - 1]) && progress.at(-1) === 100,
		JSON.stringify(progress),
	);
	check("the response chunks join to exactly the model's answer", answer === ANSWER, JSON.stringify(answer));
	check("lifecycle end completes stage 9", stage9("completed"));
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
