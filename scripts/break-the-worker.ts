// `npm run test:break`: the suite must notice a broken Worker (issue 19, "break the Worker").
//
// Applies each deliberate fault below, one at a time, to a throw-away git worktree of HEAD under
// /tmp (never to this checkout: others edit it), runs only the test files that matter for that fault
// and requires them to FAIL. First the same files run unbroken and must pass, so a fault is never
// "caught" by a suite that was red anyway. Exits non-zero when the baseline fails or any enabled
// fault is not caught. Runs under Node 24 (npm puts the project's node first on PATH).
//
// Adding a fault is one entry: the file, the exact text to replace (it must occur exactly once), its
// replacement, and the test files that should catch it.

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

interface Fault {
	name: string;
	file: string;
	find: string;
	replace: string;
	/** Test files (relative to the repository) run against the fault. */
	tests: string[];
	/** false: listed but not run yet (see the comment on the entry). */
	enabled: boolean;
}

const GATEWAY_TESTS = [
	"test/gateway-connection.test.ts",
	"test/gateway-events.test.ts",
	"test/gateway-sim-strictness.test.ts",
];
const DISPATCH_TESTS = [
	"test/dispatch-errors.test.ts",
	"test/basic-flow.test.ts",
	"test/obegee-answers.test.ts",
	"test/obegee-sim.test.ts",
];

const FAULTS: Fault[] = [
	{
		name: "sign another payload (nonce and token swapped)",
		file: "src/openclaw/device-identity.ts",
		find: "\t\tfields.token,\n\t\tfields.nonce,\n",
		replace: "\t\tfields.nonce,\n\t\tfields.token,\n",
		// Every connect is refused, so the events file would only add minutes of timeouts.
		tests: ["test/gateway-connection.test.ts", "test/gateway-sim-strictness.test.ts"],
		enabled: true,
	},
	{
		name: "ask for no scopes",
		file: "src/openclaw/protocol-client.ts",
		find: 'export const SCOPES = ["operator.read", "operator.write"] as const;',
		replace: "export const SCOPES = [] as const;",
		tests: GATEWAY_TESTS,
		enabled: true,
	},
	{
		// The real gateway treats operator.write as implying operator.read (operatorScopeSatisfied), so
		// this Worker would still see its runs in production; the suite catches it only because
		// gateway-connection pins the scopes the Worker asks for in the recorded connect.
		name: "ask for operator.write only",
		file: "src/openclaw/protocol-client.ts",
		find: 'export const SCOPES = ["operator.read", "operator.write"] as const;',
		replace: 'export const SCOPES = ["operator.write"] as const;',
		tests: GATEWAY_TESTS,
		enabled: true,
	},
	{
		name: "drop the tool-events cap",
		file: "src/openclaw/protocol-client.ts",
		find: 'export const CAPS = ["tool-events"] as const;',
		replace: "export const CAPS = [] as const;",
		tests: ["test/gateway-events.test.ts"],
		enabled: true,
	},
	{
		// ObeGee accepts a keyless dispatch as a new execution, so this is caught by what the simulator
		// recorded and by a lost answer whose retry would start a second execution (obegee-sim).
		name: "drop the Idempotency-Key",
		file: "src/obegee/client.ts",
		find: '"Idempotency-Key": mandate.mandate_id',
		replace: '"X-Not-Idempotency-Key": mandate.mandate_id',
		tests: DISPATCH_TESTS,
		enabled: true,
	},
	{
		// fetch then labels the body text/plain, and the simulator answers 415 to every dispatch.
		name: "drop the Content-Type",
		file: "src/obegee/client.ts",
		find: '"Content-Type": "application/json", ',
		replace: "",
		// Every dispatch is refused, so the other files would only add minutes of timeouts.
		tests: ["test/obegee-sim.test.ts"],
		enabled: true,
	},
];

const repo = resolve(import.meta.dirname, "..");
const say = (line: string) => console.log(`[break] ${line}`);

function git(args: string[], cwd = repo) {
	const result = spawnSync("git", args, { cwd, encoding: "utf8" });
	if (result.status !== 0) throw new Error(`git ${args.join(" ")}: ${result.stderr}`);
	return result.stdout;
}

/** Runs the files; the names of the tests that failed (empty when the run passed). */
function runTests(worktree: string, files: string[]): { ok: boolean; failed: string[]; ms: number } {
	const started = Date.now();
	const report = join(worktree, ".break-report.json");
	const result = spawnSync("npx", ["vitest", "run", "--reporter=json", `--outputFile=${report}`, ...files], {
		cwd: worktree,
		encoding: "utf8",
		env: process.env,
		maxBuffer: 64 * 1024 * 1024,
	});
	let failed: string[] = [];
	try {
		const json = JSON.parse(readFileSync(report, "utf8")) as {
			testResults: { name: string; assertionResults: { status: string; fullName: string }[] }[];
		};
		failed = json.testResults.flatMap((file) =>
			file.assertionResults
				.filter((test) => test.status === "failed")
				.map((test) => `${file.name.slice(worktree.length + 1)} > ${test.fullName}`),
		);
	} catch {
		failed = [`(no report; vitest exited ${result.status}) ${result.stderr.slice(-300)}`];
	}
	return { ok: result.status === 0, failed, ms: Date.now() - started };
}

function main(): number {
	const only = process.argv.slice(2);
	const faults = FAULTS.filter(
		(fault) => fault.enabled && (only.length === 0 || only.some((o) => fault.name.includes(o))),
	);
	for (const fault of FAULTS.filter((f) => !f.enabled)) say(`skipped (not enabled yet): ${fault.name}`);
	const worktree = mkdtempSync(join(tmpdir(), "break-the-worker-"));
	rmSync(worktree, { recursive: true });
	git(["worktree", "add", "--detach", worktree, "HEAD"]);
	symlinkSync(join(repo, "node_modules"), join(worktree, "node_modules"), "dir");
	say(`worktree of ${git(["rev-parse", "--short", "HEAD"]).trim()} at ${worktree}`);
	let problems = 0;
	try {
		const files = [...new Set(faults.flatMap((fault) => fault.tests))];
		const baseline = runTests(worktree, files);
		if (!baseline.ok) {
			say(`BASELINE FAILS (${baseline.ms} ms): the faults below would prove nothing`);
			for (const name of baseline.failed) say(`  ${name}`);
			return 1;
		}
		say(`baseline passes (${files.length} files, ${baseline.ms} ms)`);
		for (const fault of faults) {
			const path = join(worktree, fault.file);
			const original = readFileSync(path, "utf8");
			const count = original.split(fault.find).length - 1;
			if (count !== 1) {
				say(`FAULT NOT APPLIED: ${fault.name}: its text occurs ${count} times in ${fault.file}`);
				problems++;
				continue;
			}
			writeFileSync(path, original.replace(fault.find, fault.replace));
			try {
				const run = runTests(worktree, fault.tests);
				if (run.ok) {
					say(`NOT CAUGHT: ${fault.name} (${run.ms} ms) — the suite passed with the Worker broken`);
					problems++;
				} else {
					say(`caught: ${fault.name} (${run.ms} ms), by ${run.failed.length} test(s):`);
					for (const name of run.failed) say(`  ${name}`);
				}
			} finally {
				writeFileSync(path, original);
			}
		}
	} finally {
		git(["worktree", "remove", "--force", worktree]);
	}
	say(problems === 0 ? "every fault was caught" : `${problems} fault(s) not caught`);
	return problems === 0 ? 0 : 1;
}

process.exitCode = main();
