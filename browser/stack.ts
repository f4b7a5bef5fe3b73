import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { gatewayAgent, type ObeGeeSim, startObeGeeSim } from "../sim/obegee.ts";
import { type GatewaySim, startGatewaySim } from "../sim/openclaw.ts";

/**
 * The whole local stack for the browser test, wired as `npm start` wires it: the OpenClaw gateway
 * simulator, the ObeGee simulator (which starts each execution's agent run on that gateway) and
 * `wrangler dev` (demo routes on, fast polling, the gateway as every tenant's default) on free
 * ports, with fresh secrets and a throwaway D1/DO state directory, so it never collides with an
 * `npm start` running beside it.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const HOST = "127.0.0.1";
const HEALTH_TIMEOUT_MS = 60_000;

export interface Stack {
	url: string;
	sim: ObeGeeSim;
	gateway: GatewaySim;
	stop(): Promise<void>;
}

export async function startStack(log: (line: string) => void): Promise<Stack> {
	const persistDir = mkdtempSync(join(tmpdir(), "myndlens-browser-"));
	const secrets = {
		OBEGEE_API_TOKEN: `browser_${randomBytes(12).toString("hex")}`,
		WEBHOOK_SECRET: `whsec_${randomBytes(32).toString("base64")}`,
		SESSION_TOKEN_SECRET: randomBytes(32).toString("base64url"),
		SERVICE_TOKEN: `browser_${randomBytes(12).toString("hex")}`,
		ADMIN_TOKEN: `browser_${randomBytes(12).toString("hex")}`,
		OPENCLAW_GATEWAY_TOKEN: `browser_${randomBytes(12).toString("hex")}`,
	};
	const [port, inspectorPort] = [await freePort(), await freePort()];
	const url = `http://${HOST}:${port}`;
	const gateway = await startGatewaySim({
		host: HOST,
		port: 0,
		token: secrets.OPENCLAW_GATEWAY_TOKEN,
		log: (line) => log(`[gateway] ${line}`),
	});
	const sim = await startObeGeeSim({
		host: HOST,
		port: 0,
		apiToken: secrets.OBEGEE_API_TOKEN,
		webhookSecret: secrets.WEBHOOK_SECRET,
		webhookUrl: `${url}/api/dispatch/delivery-webhook`,
		log: (line) => log(`[sim] ${line}`),
		agent: gatewayAgent(gateway),
	});
	const children: ChildProcess[] = [];
	const stop = async () => {
		for (const child of children) await stopGroup(child);
		await sim.close();
		await gateway.close();
		rmSync(persistDir, { recursive: true, force: true });
	};
	try {
		const migrate = wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir], log);
		children.push(migrate);
		const code = await exited(migrate);
		if (code !== 0) throw new Error(`wrangler d1 migrations apply failed (exit ${code})`);
		const vars = {
			...secrets,
			OBEGEE_BASE_URL: sim.url,
			OPENCLAW_GATEWAY_URL: gateway.url,
			POLL_INTERVAL_MS: "500",
			DEMO_ROUTES: "true",
		};
		const worker = wrangler(
			[
				"dev",
				"--ip",
				HOST,
				"--port",
				String(port),
				"--inspector-port",
				String(inspectorPort),
				"--persist-to",
				persistDir,
				...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
			],
			log,
		);
		children.push(worker);
		await waitForHealth(url, worker);
		return { url, sim, gateway, stop };
	} catch (error) {
		await stop();
		throw error;
	}
}

function wrangler(args: string[], log: (line: string) => void): ChildProcess {
	const child = spawn(
		process.execPath,
		[join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), ...args],
		{
			cwd: ROOT,
			env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
			stdio: ["ignore", "pipe", "pipe"],
			// Its own process group, so stopping it also stops the workerd it starts.
			detached: true,
		},
	);
	for (const stream of [child.stdout, child.stderr]) {
		stream?.setEncoding("utf8");
		stream?.on("data", (text: string) => {
			for (const line of text.split("\n")) if (line.trim()) log(`[wrangler] ${line}`);
		});
	}
	return child;
}

function exited(child: ChildProcess): Promise<number | string | null> {
	if (child.exitCode !== null) return Promise.resolve(child.exitCode);
	return new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));
}

async function stopGroup(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
	const pid = child.pid;
	const signal = (name: NodeJS.Signals) => {
		try {
			process.kill(-pid, name);
		} catch {
			// already gone
		}
	};
	signal("SIGINT");
	const done = await Promise.race([exited(child).then(() => true), sleep(5_000).then(() => false)]);
	if (!done) signal("SIGKILL");
}

async function waitForHealth(url: string, worker: ChildProcess): Promise<void> {
	const deadline = Date.now() + HEALTH_TIMEOUT_MS;
	while (Date.now() < deadline) {
		if (worker.exitCode !== null) throw new Error("wrangler dev exited before the Worker became healthy");
		try {
			const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
			await response.body?.cancel();
			if (response.ok) return;
		} catch {
			// not listening yet
		}
		await sleep(300);
	}
	throw new Error(`the Worker did not become healthy within ${HEALTH_TIMEOUT_MS / 1000} s`);
}

function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, HOST, () => {
			const address = server.address();
			const port = typeof address === "object" && address ? address.port : 0;
			server.close(() => resolve(port));
		});
	});
}
