import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * A local Worker for the harnesses that need one outside vitest — the benchmark, its soak and the
 * browser test: `wrangler dev` (workerd) on a free loopback port, with fresh secrets, applied D1
 * migrations and a throwaway state directory, started and stopped as a process group.
 */

export const HOST = "127.0.0.1";
const WRANGLER = ["node_modules/wrangler/bin/wrangler.js"];
const TOOL_ENV = { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true", NO_COLOR: "1" };

export function randomSecrets() {
	return {
		OBEGEE_API_TOKEN: `local_obegee_${randomBytes(16).toString("hex")}`,
		WEBHOOK_SECRET: `whsec_${randomBytes(32).toString("base64")}`,
		SESSION_TOKEN_SECRET: randomBytes(32).toString("base64url"),
		SERVICE_TOKEN: `local_service_${randomBytes(16).toString("hex")}`,
		ADMIN_TOKEN: `local_admin_${randomBytes(16).toString("hex")}`,
		OPENCLAW_GATEWAY_TOKEN: `local_gateway_${randomBytes(16).toString("hex")}`,
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

export interface RunningWorker {
	url: string;
	/** Every line the Worker printed (its console.log lines included), as they come. */
	onLine(listener: (line: string) => void): void;
	stop(): Promise<void>;
}

function run(args: string[], cwd: string): Promise<void> {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, [...WRANGLER, ...args], { cwd, env: TOOL_ENV, stdio: "pipe" });
		let output = "";
		child.stdout?.on("data", (chunk) => {
			output += chunk;
		});
		child.stderr?.on("data", (chunk) => {
			output += chunk;
		});
		child.on("exit", (code) =>
			code === 0 ? resolve() : reject(new Error(`wrangler ${args[0]} failed:\n${output}`)),
		);
	});
}

/** `wrangler dev` for a config, with vars, on a free port; resolves once `/health` (or `path`) answers. */
export async function startWrangler(options: {
	root: string;
	config: string;
	vars: Record<string, string>;
	migrations?: boolean;
	readyPath: string;
	port?: number;
	/** Keep state here (and keep it on stop), so a restarted Worker finds its Durable Objects again. */
	persist?: string;
	/** Every line wrangler and the Worker print, from the very start. */
	onLine?: (line: string) => void;
}): Promise<RunningWorker> {
	const port = options.port ?? (await freePort());
	const persist = options.persist ?? mkdtempSync(join(tmpdir(), "myndlens-worker-"));
	if (options.migrations) {
		try {
			await run(
				["d1", "migrations", "apply", "DB", "--local", "--config", options.config, "--persist-to", persist],
				options.root,
			);
		} catch (error) {
			if (!options.persist) rmSync(persist, { recursive: true, force: true });
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
		"--inspector-port",
		String(await freePort()),
		"--log-level",
		"log",
		...Object.entries(options.vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
	];
	const child: ChildProcess = spawn(process.execPath, [...WRANGLER, ...args], {
		cwd: options.root,
		env: TOOL_ENV,
		stdio: ["ignore", "pipe", "pipe"],
		detached: true,
	});
	const listeners: Array<(line: string) => void> = options.onLine ? [options.onLine] : [];
	for (const stream of [child.stdout, child.stderr]) {
		if (!stream) continue;
		createInterface({ input: stream }).on("line", (line) => {
			for (const listener of listeners) listener(line);
		});
	}
	const url = `http://${HOST}:${port}`;
	const stop = async () => {
		await stopProcessGroup(child);
		if (!options.persist) rmSync(persist, { recursive: true, force: true });
	};
	try {
		await waitUntilReady(child, `${url}${options.readyPath}`, options.config);
	} catch (error) {
		await stop();
		throw error;
	}
	return { url, onLine: (listener) => listeners.push(listener), stop };
}

async function waitUntilReady(child: ChildProcess, url: string, config: string): Promise<void> {
	const deadline = Date.now() + 60_000;
	for (;;) {
		if (child.exitCode !== null) throw new Error(`wrangler dev for ${config} exited early`);
		try {
			const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
			await response.body?.cancel();
			if (response.status < 500) return;
		} catch {
			// not listening yet
		}
		if (Date.now() > deadline) throw new Error(`wrangler dev for ${config} did not start in 60 s`);
		await sleep(250);
	}
}

/** wrangler runs in its own process group, so stopping the group also stops the workerd it started. */
async function stopProcessGroup(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
	const pid = child.pid;
	const signal = (name: NodeJS.Signals) => {
		try {
			process.kill(-pid, name);
		} catch {
			// already gone
		}
	};
	const exited = new Promise((resolve) => child.once("exit", resolve));
	signal("SIGINT");
	const done = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
	if (!done) signal("SIGKILL");
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
