// `npm run test:client` (issue 15): the SDK as an app developer gets it.
//   1. installs the client's own devDependencies (npm ci --prefix client) when they are missing or stale,
//   2. packs client/ (`npm pack` builds it) and installs the tarball into a fresh temp app folder,
//   3. type-checks an app file against it (module nodenext, strict, no DOM library),
//   4. starts the local stack (tools/local-worker.ts: wrangler dev + the simulators, browser/stack.ts),
//   5. runs the app under Node 20 (the machine's /usr/bin/node when it is ≥ 20, else this Node) with
//      Event, EventTarget, MessageEvent and CloseEvent deleted and a socket that hands out plain
//      objects: a mandate followed to stage 10, a refused token ending in `unauthorized`, a hanging
//      token provider that does not wedge it,
//   6. runs useSessionProgress under React Testing Library (happy-dom) from the package's ./react entry,
//   7. validates /openapi.json and /asyncapi.json, as the Worker serves them, with their parsers.
// Prints each step's time and "N passed, M failed"; exits non-zero on a failure.
import { type SpawnSyncOptions, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import {
	copyFileSync,
	existsSync,
	mkdtempSync,
	readdirSync,
	readFileSync,
	rmSync,
	statSync,
	writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startStack } from "../../browser/stack.ts";

const CLIENT = join(dirname(fileURLToPath(import.meta.url)), "..");
const APP_TEMPLATE = join(CLIENT, "test", "app");
const VERBOSE = process.env.TEST_CLIENT_VERBOSE === "1";
/** An app that has not exited by then is killed (a leaked timer or socket keeps it alive). */
const APP_TIMEOUT_MS = 180_000;

const checks: Array<{ name: string; ok: boolean; detail?: string }> = [];
const timings: Array<{ step: string; ms: number }> = [];

function say(line: string): void {
	console.log(`[test:client] ${line}`);
}

function record(name: string, ok: boolean, detail?: string): void {
	checks.push({ name, ok, ...(detail ? { detail } : {}) });
	console.log(`${ok ? "PASS" : "FAIL"} ${name}${ok || !detail ? "" : ` — ${detail}`}`);
}

async function step<T>(name: string, run: () => T | Promise<T>): Promise<T> {
	const started = performance.now();
	say(`${name}…`);
	try {
		return await run();
	} finally {
		const ms = Math.round(performance.now() - started);
		timings.push({ step: name, ms });
		say(`${name}: ${(ms / 1000).toFixed(1)} s`);
	}
}

function run(command: string, args: string[], options: SpawnSyncOptions = {}): string {
	const result = spawnSync(command, args, { encoding: "utf8", ...options });
	if (result.status !== 0) {
		const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
		throw new Error(`${command} ${args.join(" ")} exited ${result.status ?? result.signal}:\n${output}`);
	}
	return String(result.stdout ?? "");
}

/** The node to run the app with: the machine's Node 20 when there is one (the issue's floor). */
function appNode(): { path: string; version: string } {
	for (const candidate of ["/usr/bin/node", "/usr/local/bin/node"]) {
		if (!existsSync(candidate)) continue;
		const version = spawnSync(candidate, ["--version"], { encoding: "utf8" }).stdout.trim();
		const major = Number(/^v(\d+)/.exec(version)?.[1] ?? 0);
		if (major >= 20) return { path: candidate, version };
	}
	return { path: process.execPath, version: process.version };
}

/** Installed as the client's lockfile pins them, so the app's tools are the ones CI reviewed. */
function lockedVersion(name: string): string {
	const lock = JSON.parse(readFileSync(join(CLIENT, "package-lock.json"), "utf8")) as {
		packages: Record<string, { version?: string }>;
	};
	const version = lock.packages[`node_modules/${name}`]?.version;
	if (!version) throw new Error(`${name} is not in client/package-lock.json`);
	return version;
}

function clientDepsFresh(): boolean {
	const installed = join(CLIENT, "node_modules", ".package-lock.json");
	if (!existsSync(installed)) return false;
	return statSync(installed).mtimeMs >= statSync(join(CLIENT, "package-lock.json")).mtimeMs;
}

/**
 * Runs a compiled app file; its checks come back on a `RESULTS [...]` line. Asynchronously: the
 * simulators run in this process and must keep answering while the app runs.
 */
async function runApp(
	node: string,
	file: string,
	cwd: string,
	env: Record<string, string>,
	label: string,
): Promise<void> {
	const child = spawn(node, [file], {
		cwd,
		env: { ...process.env, ...env },
		stdio: ["ignore", "pipe", "pipe"],
	});
	let output = "";
	child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
		output += chunk;
		if (VERBOSE) process.stdout.write(chunk);
	});
	child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
		output += chunk;
		if (VERBOSE) process.stderr.write(chunk);
	});
	const killer = setTimeout(() => child.kill("SIGKILL"), APP_TIMEOUT_MS);
	const [code, signal] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
	clearTimeout(killer);
	const line = output.split("\n").find((l) => l.startsWith("RESULTS "));
	if (!line) {
		record(`${label}: ran to the end`, false, `exit ${code ?? signal}\n${output.slice(-4000)}`);
		return;
	}
	for (const r of JSON.parse(line.slice("RESULTS ".length)) as Array<{
		name: string;
		ok: boolean;
		detail?: string;
	}>) {
		record(`${label}: ${r.name}`, r.ok, r.detail);
	}
	// Every client was closed: nothing may keep the process alive (a leaked timer or socket would).
	record(`${label}: exits by itself once every client is closed`, signal === null, `killed by ${signal}`);
}

async function main(): Promise<void> {
	const node = appNode();
	say(`the app runs under ${node.path} ${node.version}`);
	await step("npm ci --prefix client", () => {
		if (clientDepsFresh() && !process.env.CI) return say("client/node_modules is up to date");
		run("npm", ["ci", "--prefix", CLIENT, "--no-audit", "--no-fund"], {
			stdio: VERBOSE ? "inherit" : "pipe",
		});
	});

	const app = mkdtempSync(join(tmpdir(), "myndlens-client-app-"));
	let stopStack: (() => Promise<void>) | null = null;
	try {
		const tarball = await step("npm pack (builds the package)", () => {
			const out = run("npm", ["pack", "--pack-destination", app, "--json"], { cwd: CLIENT });
			const [packed] = JSON.parse(out.slice(out.search(/^\[/m))) as Array<{
				filename: string;
				files: { path: string }[];
			}>;
			if (!packed) throw new Error("npm pack printed nothing");
			const paths = packed.files.map((f) => f.path);
			for (const wanted of [
				"dist/index.js",
				"dist/index.d.ts",
				"dist/react.js",
				"dist/react.d.ts",
				"package.json",
			]) {
				record(`the tarball holds ${wanted}`, paths.includes(wanted));
			}
			record(
				"the tarball holds no TypeScript sources, tests or Worker code",
				paths.every((p) => p === "package.json" || p === "README.md" || p.startsWith("dist/")),
				paths.join(", "),
			);
			return join(app, packed.filename);
		});

		await step("install the tarball into a fresh app", () => {
			writeFileSync(
				join(app, "package.json"),
				JSON.stringify({ name: "an-app", private: true, type: "module" }, null, 2),
			);
			const tools = [
				"ws",
				"@types/ws",
				"@types/node",
				"typescript",
				"react",
				"react-dom",
				"@types/react",
				"@testing-library/react",
				"@testing-library/dom",
				"happy-dom",
				"@happy-dom/global-registrator",
			].map((name) => `${name}@${lockedVersion(name)}`);
			run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", tarball, ...tools], { cwd: app });
			for (const file of readdirSync(APP_TEMPLATE)) copyFileSync(join(APP_TEMPLATE, file), join(app, file));
			const installed = JSON.parse(
				readFileSync(join(app, "node_modules", "@myndlens", "progress-client", "package.json"), "utf8"),
			) as { dependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
			record(
				"the package needs only zod (a peer, installed with it) and optionally React",
				Object.keys(installed.dependencies ?? {}).length === 0 &&
					JSON.stringify(Object.keys(installed.peerDependencies ?? {}).sort()) === '["react","zod"]' &&
					existsSync(join(app, "node_modules", "zod", "package.json")),
				JSON.stringify({
					dependencies: installed.dependencies,
					peerDependencies: installed.peerDependencies,
				}),
			);
			record(
				"nothing of the Worker is installed with it",
				!["hono", "jose", "partysocket", "wrangler", "@openclaw/gateway-protocol"].some((name) =>
					existsSync(join(app, "node_modules", name)),
				),
			);
		});

		await step("type-check the app against the package (nodenext, strict)", () => {
			const tsc = join(app, "node_modules", "typescript", "bin", "tsc");
			for (const config of ["tsconfig.json", "tsconfig.hook.json"]) {
				const result = spawnSync(process.execPath, [tsc, "-p", config], { cwd: app, encoding: "utf8" });
				record(
					`the app type-checks and compiles (${config})`,
					result.status === 0,
					`${result.stdout}${result.stderr}`,
				);
			}
		});

		const stack = await step("start the local Worker and simulators", () =>
			startStack((line) => {
				if (VERBOSE) console.log(line);
			}),
		);
		stopStack = stack.stop;

		await step("the app under Node, React Native's way, against the Worker", async () => {
			await runApp(
				node.path,
				join(app, "dist", "main.js"),
				app,
				{ WORKER_URL: stack.url, SERVICE_TOKEN: stack.secrets.SERVICE_TOKEN },
				"app",
			);
		});

		await step("useSessionProgress under React Testing Library", async () => {
			await runApp(node.path, join(app, "dist", "hook.js"), app, {}, "react");
		});

		await step("validate /openapi.json and /asyncapi.json", async () => {
			const documents = {
				openapi: (await (await fetch(`${stack.url}/openapi.json`)).json()) as Record<string, unknown>,
				asyncapi: (await (await fetch(`${stack.url}/asyncapi.json`)).json()) as Record<string, unknown>,
			};
			// Imported only now: its parsers come with `npm ci --prefix client` above, not with the root install.
			for (const result of await (await import("./protocol-docs.ts")).validateProtocolDocuments(documents))
				record(result.name, result.ok, result.detail);
		});
	} finally {
		if (stopStack) await stopStack();
		rmSync(app, { recursive: true, force: true });
	}
}

const started = performance.now();
try {
	await main();
} catch (error) {
	record("test:client ran to the end", false, error instanceof Error ? error.message : String(error));
}
say(`timings: ${timings.map((t) => `${t.step} ${(t.ms / 1000).toFixed(1)} s`).join("; ")}`);
say(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
const failed = checks.filter((c) => !c.ok).length;
console.log(`${checks.length - failed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
