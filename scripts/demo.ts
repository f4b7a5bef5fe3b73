// `npm run demo`: drives one mandate through the stack that `npm start` is running, and shows it
// the way the phone does — every stage, the sub-status, a progress bar and the answer — using the
// client SDK (client/). Redraws in place on a terminal; prints plain lines when piped.
//   npm run demo -- --scenario slow --intent "Plan a weekend trip"
// Secrets come from .dev.vars (written by npm start); PORT picks the Worker's port (default 8787).

import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
	type ConnectionStatus,
	currentStage,
	type MandateView,
	ProgressClient,
	type StageView,
} from "../client/index.ts";
import { mintMobileToken } from "../src/auth/mobile-token.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const WORKER_URL = `http://127.0.0.1:${process.env.PORT || 8787}`;
const TIMEOUT_MS = 120_000;
const BAR_WIDTH = 30;
const ICONS: Record<StageView["status"], string> = { pending: "○", active: "◉", completed: "✓", failed: "✕" };
const COLORS: Record<StageView["status"], string> = {
	pending: "\x1b[2m",
	active: "\x1b[1;34m",
	completed: "\x1b[32m",
	failed: "\x1b[1;31m",
};
const RESET = "\x1b[0m";

type DevVars = Record<string, string>;
type Display = (mandate: MandateView, intent: string, connection: ConnectionStatus) => void;

function fail(message: string): never {
	console.error(`demo: ${message}`);
	process.exit(1);
}

function readDevVars(): DevVars {
	const path = join(ROOT, ".dev.vars");
	if (!existsSync(path)) fail("no .dev.vars: run `npm start` first (it creates it and starts the stack)");
	const vars: DevVars = {};
	for (const line of readFileSync(path, "utf8").split(/\r?\n/)) {
		const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"?(.*?)"?\s*$/.exec(line);
		if (match?.[1] && !line.trimStart().startsWith("#")) vars[match[1]] = match[2] ?? "";
	}
	for (const name of ["SERVICE_TOKEN", "SESSION_TOKEN_SECRET"])
		if (!vars[name]) fail(`.dev.vars has no ${name}`);
	return vars;
}

async function call(path: string, token: string, body: unknown): Promise<{ status: number; json: unknown }> {
	const response = await fetch(WORKER_URL + path, {
		method: "POST",
		headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
		body: JSON.stringify(body),
		signal: AbortSignal.timeout(15_000),
	}).catch(() => fail(`cannot reach the Worker at ${WORKER_URL}: is \`npm start\` running?`));
	const json: unknown = await response.json().catch(() => null);
	return { status: response.status, json };
}

function bar(percent: number): string {
	const filled = Math.round((percent / 100) * BAR_WIDTH);
	return `[${"█".repeat(filled)}${"░".repeat(BAR_WIDTH - filled)}] ${String(percent).padStart(3)}%`;
}

/** The card as lines of text: what the phone shows. */
function card(mandate: MandateView, intent: string, connection: ConnectionStatus): string[] {
	const percent = mandate.phase === "completed" ? 100 : Math.max(mandate.progress, currentStage(mandate) * 5);
	const lines = [`${intent}   (${mandate.mandate_id}, ${connection})`, bar(percent)];
	for (const stage of mandate.stages) {
		const note = stage.message ? ` — ${stage.message}` : "";
		const sub =
			stage.stage === 9 && stage.status === "active" && mandate.sub_status ? ` — ${mandate.sub_status}` : "";
		lines.push(
			`${COLORS[stage.status]}${ICONS[stage.status]} ${String(stage.stage).padStart(2)} ${stage.stage_name}${note}${sub}${RESET}`,
		);
	}
	const answer = mandate.answer || mandate.result?.summary;
	if (answer) lines.push("", `Answer: ${answer}`);
	if (mandate.result?.delivered_to.length)
		lines.push(`Delivered to ${mandate.result.delivered_to.join(", ")}`);
	return lines;
}

/** On a terminal, redraw the card in place; otherwise print one plain line per change. */
function makeDisplay(): Display {
	if (process.stdout.isTTY) {
		let drawn = 0;
		return (mandate, intent, connection) => {
			const lines = card(mandate, intent, connection);
			if (drawn > 0) process.stdout.write(`\x1b[${drawn}F`);
			process.stdout.write(lines.map((line) => `\x1b[2K${line}\n`).join(""));
			process.stdout.write("\x1b[0J");
			drawn = lines.length;
		};
	}
	const seen = new Map<string, string>();
	return (mandate) => {
		const say = (key: string, line: string) => {
			if (seen.get(key) === line) return;
			seen.set(key, line);
			console.log(line);
		};
		for (const stage of mandate.stages) {
			if (stage.status === "pending") continue;
			say(
				`stage${stage.stage}`,
				`stage ${stage.stage} ${stage.stage_name}: ${stage.status}${stage.message ? ` — ${stage.message}` : ""}`,
			);
		}
		if (mandate.sub_status) say("progress", `progress ${mandate.progress}% ${mandate.sub_status}`);
		// The streamed answer as it types out: only what is new since the last line.
		const typed = seen.get("typed") ?? "";
		if (mandate.answer.length > typed.length && mandate.answer.startsWith(typed)) {
			console.log(`answer… ${JSON.stringify(mandate.answer.slice(typed.length))}`);
			seen.set("typed", mandate.answer);
		}
		const answer = mandate.answer || mandate.result?.summary;
		if (answer && mandate.phase !== "in_progress") say("answer", `answer: ${answer}`);
	};
}

async function main(): Promise<void> {
	const { values } = parseArgs({
		options: {
			scenario: { type: "string", default: "happy" },
			intent: { type: "string", default: "Send weekly report to team" },
		},
	});
	const vars = readDevVars();
	const sessionId = `cli_${randomBytes(6).toString("hex")}`;
	const mandateId = `mio_cli_${randomBytes(6).toString("hex")}`;
	const serviceToken = vars.SERVICE_TOKEN ?? "";
	const token = await mintMobileToken(vars.SESSION_TOKEN_SECRET ?? "", {
		sid: sessionId,
		sub: "demo_cli",
		ttlSeconds: 60 * 60,
	});
	const client = new ProgressClient({ baseUrl: WORKER_URL, sessionId, token });
	const display = makeDisplay();
	const done = new Promise<MandateView>((resolve) => {
		client.subscribe((session, connection) => {
			const mandate = session.mandates.find((m) => m.mandate_id === mandateId);
			if (!mandate) return;
			display(mandate, values.intent, connection);
			if (mandate.phase !== "in_progress") resolve(mandate);
		});
	});

	// Play the MyndLens pipeline: stages 1–3, then execute (the Worker dispatches to the simulator).
	for (const stage of [1, 2, 3]) {
		const reported = await call(`/api/sessions/${sessionId}/stages`, serviceToken, {
			mandate_id: mandateId,
			stage,
			status: "completed",
		});
		if (reported.status !== 200)
			fail(`reporting stage ${stage} answered ${reported.status}: ${JSON.stringify(reported.json)}`);
	}
	await call("/api/mandate/execute", serviceToken, {
		session_id: sessionId,
		mandate_id: mandateId,
		tenant_id: "tenant_demo",
		intent: values.intent,
		dimensions: { sim_scenario: values.scenario },
		generated_skills: [],
		delivery_channels: ["app"],
	});
	const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), TIMEOUT_MS).unref());
	const final = await Promise.race([done, timeout]);
	client.close();
	if (!final) fail(`the mandate did not finish within ${TIMEOUT_MS / 1000} s`);
	console.log(final.phase === "completed" ? "\nDelivered." : `\nFailed: ${final.error}`);
	process.exit(final.phase === "completed" ? 0 : 2);
}

await main();
