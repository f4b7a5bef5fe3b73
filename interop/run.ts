// `npm run test:interop`: the Worker against the REAL OpenClaw Gateway (issue 3, "Interop").
//   1. installs interop/node_modules (openclaw@2026.9.6) if missing, with the project's Node 24 on PATH,
//   2. a loopback OpenAI-compatible mock model: one `read` tool call, then a streamed text answer,
//   3. `openclaw gateway run` on loopback with token auth and a temp HOME/state/config (OPENCLAW-NOTES.md),
//   4. the ObeGee simulator and `wrangler dev` (tools/local-worker.ts) pointed at both,
//   5. a phone socket, one executed mandate, and the agent run started on the gateway the way the MyndLens
//      service does it (a separate gateway client, `agent` with idempotencyKey = execution id),
//   6. checks on what the phone received; prints "N passed, M failed", exits non-zero on failure and
//      stops everything it started.
// Runs under Node 24 (npm puts the project's node first on PATH), which strips this file's types.
import { type ChildProcess, type SpawnOptions, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { startObeGeeSim } from "../sim/obegee.ts";
import { mintMobileToken } from "../src/auth/mobile-token.ts";
import { freePort, HOST, randomSecrets, startLocalWorker } from "../tools/local-worker.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
const ANSWER = "The weekly report was sent to the team. Revenue is up 4%.";
const REPORT = "# Weekly report\nRevenue up 4%.\n";
// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences are what it strips.
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;
const children: ChildProcess[] = [];
const cleanups: Array<() => unknown> = [];
const results: Array<{ name: string; ok: boolean }> = [];

/** What the phone reads of a frame (src/protocol/frames.ts has the full schemas). */
interface Frame {
	seq?: number;
	event?: string;
	type?: string;
	execution_id?: string;
	data?: { mandate_id?: string; stage?: number; status?: string };
	progress?: number;
	status?: string;
	chunk?: string;
}

/** A gateway protocol frame (docs/openclaw.md). */
interface GatewayFrame {
	type?: string;
	event?: string;
	id?: string;
	ok?: boolean;
	payload?: { status?: string; runId?: string; auth?: { scopes?: string[] } } & Record<string, unknown>;
	error?: unknown;
}

type AgentRunOutcome = { hello: GatewayFrame["payload"] | null; result: GatewayFrame };

function say(line: string): void {
	console.log(`[interop] ${line}`);
}

function check(name: string, ok: boolean, detail = ""): void {
	results.push({ name, ok });
	console.log(`${ok ? "PASS" : "FAIL"} ${name}${ok || !detail ? "" : ` — ${detail}`}`);
}

function ensureInstalled(): void {
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
async function startMockModel(): Promise<number> {
	const server = createServer(async (req, res) => {
		if (req.method === "GET" && req.url?.startsWith("/v1/models")) {
			res.writeHead(200, { "content-type": "application/json" });
			res.end(
				JSON.stringify({ object: "list", data: [{ id: "mock-1", object: "model", owned_by: "mock" }] }),
			);
			return;
		}
		const chunks: Buffer[] = [];
		for await (const chunk of req) chunks.push(chunk as Buffer);
		const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as {
			messages?: Array<{ role?: string }>;
		};
		const toolDone = (body.messages ?? []).some((m) => m.role === "tool");
		res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
		const send = (delta: Record<string, unknown>, finish: string | null = null) =>
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
	await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
	cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
	return (server.address() as AddressInfo).port;
}

/**
 * The lines a process printed, ANSI colours stripped, and `waitFor(pattern, timeoutMs)`, which
 * resolves on the first matching line, past or future, and rejects once the process has exited.
 */
class LineLog {
	readonly #prefix: string;
	readonly #lines: string[] = [];
	readonly #waiters = new Set<{ onLine(line: string): void; onExit(): void }>();
	#exited: Error | null = null;

	constructor(prefix: string) {
		this.#prefix = prefix;
	}

	add(raw: string): void {
		// The gateway colours its log lines even into a pipe ("\x1b[36m[gateway]\x1b[39m \x1b[36mready").
		const line = raw.replace(ANSI, "");
		if (process.env.INTEROP_VERBOSE) console.log(`${this.#prefix} ${line}`);
		this.#lines.push(line);
		for (const waiter of this.#waiters) waiter.onLine(line);
	}

	exited(why: string): void {
		this.#exited = new Error(`${this.#prefix} exited early (${why}); rerun with INTEROP_VERBOSE=1`);
		for (const waiter of this.#waiters) waiter.onExit();
	}

	waitFor(pattern: RegExp, timeoutMs: number, what = String(pattern)): Promise<void> {
		return new Promise((resolve, reject) => {
			if (this.#lines.some((line) => pattern.test(line))) return resolve();
			const exited = this.#exited;
			if (exited) return reject(exited);
			const done = (settle: () => void) => {
				clearTimeout(timer);
				this.#waiters.delete(waiter);
				settle();
			};
			const waiter = {
				onLine: (line: string) => pattern.test(line) && done(resolve),
				onExit: () => done(() => reject(this.#exited)),
			};
			const timer = setTimeout(
				() => done(() => reject(new Error(`${this.#prefix} ${what}: not within ${timeoutMs / 1000} s`))),
				timeoutMs,
			);
			this.#waiters.add(waiter);
		});
	}
}

/** Starts a process in its own process group (stopAll kills the group), its output in a LineLog. */
function spawnLogged(command: string, args: string[], options: SpawnOptions, prefix: string): LineLog {
	const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"], detached: true });
	children.push(child);
	const log = new LineLog(prefix);
	for (const stream of [child.stdout, child.stderr]) {
		if (stream) createInterface({ input: stream }).on("line", (line) => log.add(line));
	}
	child.once("exit", (code, signal) => log.exited(String(code ?? signal)));
	return log;
}

async function startGateway(temp: string, modelPort: number, token: string): Promise<string> {
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

async function startWorker(vars: Record<string, string>): Promise<{ url: string; log: LineLog }> {
	const log = new LineLog("[worker]");
	const worker = await startLocalWorker({
		root: ROOT,
		config: "wrangler.toml",
		migrations: true,
		readyPath: "/health",
		vars,
		onLine: (line) => log.add(line),
	});
	worker.onExit((why) => log.exited(why));
	cleanups.push(() => worker.stop());
	return { url: worker.url, log };
}

/**
 * The MyndLens service's part: its own gateway client starts the agent run for the execution. A plain
 * token client, no device identity: on loopback the real gateway keeps its requested scopes.
 */
async function startAgentRun(
	gatewayUrl: string,
	token: string,
	executionId: string,
): Promise<AgentRunOutcome> {
	const ws = new WebSocket(gatewayUrl);
	const outcome = new Promise<AgentRunOutcome>((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error("agent run did not finish within 120 s")), 120_000);
		const fail = (error: Error) => {
			clearTimeout(timer);
			reject(error);
		};
		let hello: AgentRunOutcome["hello"] = null;
		ws.on("message", (data) => {
			const frame = JSON.parse(String(data)) as GatewayFrame;
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
				hello = frame.payload ?? null;
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

async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
	for (const deadline = Date.now() + timeoutMs; !condition() && Date.now() < deadline; ) await sleep(100);
	return condition();
}

function describe(frame: Frame): string {
	if (frame.event === "pipeline_stage") return `stage ${frame.data?.stage} ${frame.data?.status}`;
	if (frame.type === "progress") return `progress ${frame.progress}% ${frame.status}`;
	if (frame.type === "response_chunk") return `chunk ${JSON.stringify(frame.chunk)}`;
	return frame.type ?? frame.event ?? "?";
}

async function main(): Promise<void> {
	const started = Date.now();
	ensureInstalled();
	const temp = mkdtempSync(join(tmpdir(), "myndlens-interop-"));
	cleanups.push(() => rmSync(temp, { recursive: true, force: true }));
	const { OPENCLAW_GATEWAY_TOKEN: gatewayToken, ...secrets } = randomSecrets();

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
	const worker = await startWorker({
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
	const mobile = await mintMobileToken(secrets.SESSION_TOKEN_SECRET, { sid: sessionId, sub: "interop" });
	const frames: Frame[] = [];
	const phone = new WebSocket(
		`${worker.url.replace("http", "ws")}/api/sessions/${sessionId}/ws?token=${mobile}`,
	);
	phone.on("message", (data) => frames.push(JSON.parse(String(data)) as Frame));
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
	const executeBody = (await execute.json()) as { execution_id?: unknown };
	const executionId = executeBody.execution_id;
	if (typeof executionId !== "string") {
		throw new Error(`execute answered ${execute.status} ${JSON.stringify(executeBody)}`);
	}
	const stage9 = (status: string) =>
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
		await worker.log.waitFor(/"openclaw: gateway connected".*"protocol":4/, 30_000, "Gateway DO handshake");
	} catch (error) {
		connected = false;
		say((error as Error).message);
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
	const statuses = progressFrames.map((f) => f.status ?? "");
	const progress = progressFrames.map((f) => f.progress ?? 0);
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
		progress.every((p, i) => i === 0 || p >= (progress[i - 1] ?? 0)) &&
			progress.includes(10) &&
			(progress[toolStep] ?? 0) > 10 &&
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

function signalGroups(signal: NodeJS.Signals): void {
	for (const child of children) {
		if (child.pid === undefined) continue;
		try {
			process.kill(-child.pid, signal);
		} catch {
			// already gone
		}
	}
}

async function stopAll(): Promise<void> {
	signalGroups("SIGTERM");
	await sleep(500);
	signalGroups("SIGKILL");
	for (const cleanup of cleanups.reverse()) {
		try {
			await cleanup();
		} catch {
			// best effort
		}
	}
}

// Ctrl-C or a cancelled CI job: the gateway and wrangler run in their own process groups and would outlive us.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
	process.once(signal, () => {
		say(`${signal}: stopping everything`);
		stopAll().finally(() => process.exit(130));
	});
}

let crashed: unknown = null;
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
