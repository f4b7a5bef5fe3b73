import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * The one way the tools outside vitest run the Worker locally — `npm start`, the benchmark and its
 * soak, the browser test and the interop suite: `wrangler dev` (workerd) on a loopback port, with
 * the given vars, optionally applied D1 migrations, and a throwaway state directory unless one is
 * given; started in its own process group and stopped as one (workerd included).
 */

export const HOST = "127.0.0.1";
const WRANGLER = ["node_modules/wrangler/bin/wrangler.js"];
const TOOL_ENV = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" };
const READY_TIMEOUT_MS = 60_000;

export function randomSecrets() {
	return {
		OBEGEE_API_TOKEN: `local_obegee_${randomBytes(16).toString("hex")}`,
		WEBHOOK_SECRET: `whsec_${randomBytes(32).toString("base64")}`,
		SESSION_TOKEN_SECRET: randomBytes(32).toString("base64url"),
		SERVICE_TOKEN: `local_service_${randomBytes(16).toString("hex")}`,
		ADMIN_TOKEN: `local_admin_${randomBytes(16).toString("hex")}`,
		OPENCLAW_GATEWAY_TOKEN: `local_gateway_${randomBytes(16).toString("hex")}`,
		GATEWAY_TOKEN_KEY: randomBytes(32).toString("base64"),
	};
}

export async function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.unref();
		server.on("error", reject);
		server.listen(0, HOST, () => {
			const address = server.address();
			const port = typeof address === "object" && address ? address.port : 0;
			server.close(() => resolve(port));
		});
	});
}

/** Which wrangler run printed a line: the D1 migrations, or `wrangler dev` (and the Worker's own logs). */
export type WranglerStep = "migrations" | "dev";

export interface LocalWorkerOptions {
	/** The project root: wrangler runs there. */
	root: string;
	/** The wrangler config, relative to `root` or absolute. */
	config: string;
	/** Passed as `--var NAME:value`; they override wrangler.toml and `.dev.vars`. */
	vars: Record<string, string>;
	/** Apply the D1 migrations to the state directory first. */
	migrations?: boolean;
	/** Ready once a GET of this path answers below 500. */
	readyPath: string;
	/** A free port when absent. */
	port?: number;
	/** Keep state here (and keep it on stop), so a restarted Worker finds its Durable Objects again. */
	persist?: string;
	/**
	 * Every line wrangler and the Worker print, from the very start, migrations included (`npm start`
	 * prints them all; the browser test logs them). Without it, a failed step's output goes into the
	 * error instead.
	 */
	onLine?: (line: string, step: WranglerStep) => void;
}

export interface RunningWorker {
	url: string;
	/** Every line the Worker prints from now on (its console.log lines included). */
	onLine(listener: (line: string) => void): void;
	/** Called if wrangler exits by itself, not through `stop()`. */
	onExit(listener: (why: string) => void): void;
	stop(): Promise<void>;
}

/** Starting the Worker failed; `step` says where, `output` is what wrangler printed there. */
export class LocalWorkerError extends Error {
	readonly step: WranglerStep;
	readonly output: string;
	constructor(step: WranglerStep, message: string, output: string) {
		super(message);
		this.step = step;
		this.output = output;
	}
}

function eachLine(streams: Array<Readable | null>, listener: (line: string) => void): void {
	for (const stream of streams) if (stream) createInterface({ input: stream }).on("line", listener);
}

function applyMigrations(options: LocalWorkerOptions, persist: string): Promise<void> {
	const args = [
		"d1",
		"migrations",
		"apply",
		"DB",
		"--local",
		"--config",
		options.config,
		"--persist-to",
		persist,
	];
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, [...WRANGLER, ...args], {
			cwd: options.root,
			env: TOOL_ENV,
			stdio: ["ignore", "pipe", "pipe"],
		});
		let output = "";
		eachLine([child.stdout, child.stderr], (line) => {
			output += `${line}\n`;
			options.onLine?.(line, "migrations");
		});
		child.on("error", reject);
		child.on("exit", (code, signal) => {
			if (code === 0) return resolve();
			const message = `wrangler d1 migrations apply failed (${code ?? signal})`;
			reject(new LocalWorkerError("migrations", options.onLine ? message : `${message}:\n${output}`, output));
		});
	});
}

/** `wrangler dev` for a config, with vars; resolves once `readyPath` answers. */
export async function startLocalWorker(options: LocalWorkerOptions): Promise<RunningWorker> {
	const port = options.port ?? (await freePort());
	const persist = options.persist ?? mkdtempSync(join(tmpdir(), "myndlens-worker-"));
	const removeState = () => {
		if (!options.persist) rmSync(persist, { recursive: true, force: true });
	};
	if (options.migrations) {
		try {
			await applyMigrations(options, persist);
		} catch (error) {
			removeState();
			throw error;
		}
	}
	const args = [
		"dev",
		"--config",
		options.config,
		"--ip",
		HOST,
		"--port",
		String(port),
		"--persist-to",
		persist,
		// Not the default 9229: another wrangler dev on this machine must not collide with this one.
		"--inspector-port",
		String(await freePort()),
		"--log-level",
		"log",
		...Object.entries(options.vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
	];
	const child = spawn(process.execPath, [...WRANGLER, ...args], {
		cwd: options.root,
		env: TOOL_ENV,
		stdio: ["ignore", "pipe", "pipe"],
		detached: true,
	});
	// A crash of the tool must not leave wrangler (in its own process group) running without its parent.
	const killOnExit = () => signalGroup(child, "SIGKILL");
	process.on("exit", killOnExit);

	const lineListeners: Array<(line: string) => void> = [];
	let output = "";
	eachLine([child.stdout, child.stderr], (line) => {
		if (output.length < 100_000) output += `${line}\n`;
		options.onLine?.(line, "dev");
		for (const listener of lineListeners) listener(line);
	});
	let stopping = false;
	const exitListeners: Array<(why: string) => void> = [];
	child.once("exit", (code, signal) => {
		process.off("exit", killOnExit);
		if (stopping) return;
		for (const listener of exitListeners) listener(String(code ?? signal));
	});

	const url = `http://${HOST}:${port}`;
	const stop = async () => {
		stopping = true;
		await stopProcessGroup(child);
		process.off("exit", killOnExit);
		removeState();
	};
	try {
		await waitUntilReady(child, `${url}${options.readyPath}`);
	} catch (error) {
		await stop();
		const message = `wrangler dev for ${options.config} ${(error as Error).message}`;
		throw new LocalWorkerError("dev", options.onLine ? message : `${message}:\n${output}`, output);
	}
	return {
		url,
		onLine: (listener) => lineListeners.push(listener),
		onExit: (listener) => exitListeners.push(listener),
		stop,
	};
}

async function waitUntilReady(child: ChildProcess, url: string): Promise<void> {
	const deadline = Date.now() + READY_TIMEOUT_MS;
	for (;;) {
		if (child.exitCode !== null || child.signalCode !== null) throw new Error("exited before it was ready");
		try {
			const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
			await response.body?.cancel();
			if (response.status < 500) return;
		} catch {
			// not listening yet
		}
		if (Date.now() > deadline) throw new Error(`was not ready within ${READY_TIMEOUT_MS / 1000} s`);
		await sleep(250);
	}
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
	if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
	try {
		process.kill(-child.pid, signal);
	} catch {
		// already gone
	}
}

/** wrangler runs in its own process group, so stopping the group also stops the workerd it started. */
async function stopProcessGroup(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
	const exited = new Promise((resolve) => child.once("exit", resolve));
	signalGroup(child, "SIGINT");
	const done = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
	if (!done) signalGroup(child, "SIGKILL");
}

/**
 * The Worker exactly as `wrangler deploy` would upload it (the dry-run bundle), with a config of its
 * own in a temp dir: what the benchmark measures cannot change under it when someone edits src/
 * (wrangler dev reloads on every change of the files it watches), and the page's assets stay out.
 */
export function isolatedWorkerConfig(root: string): { config: string; cleanup(): void } {
	const dir = mkdtempSync(join(tmpdir(), "myndlens-worker-bundle-"));
	execFileSync(process.execPath, [...WRANGLER, "deploy", "--dry-run", "--outdir", join(dir, "dist")], {
		cwd: root,
		env: TOOL_ENV,
		stdio: "pipe",
	});
	const config = readFileSync(join(root, "wrangler.toml"), "utf8")
		.replace(/^main = .*$/m, `main = "${join(dir, "dist", "index.js")}"\nno_bundle = true`)
		.replace(/^\[assets\][\s\S]*?(?=^\[)/m, "")
		.replace(/^migrations_dir = .*$/m, `migrations_dir = "${join(root, "migrations")}"`);
	writeFileSync(join(dir, "wrangler.toml"), config);
	return { config: join(dir, "wrangler.toml"), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
