/**
 * npm run test:mutation, second half: StrykerJS's `thresholds.break` judges the score of all files
 * together; this reads its JSON report (.stryker/report.json) and fails when any ONE mutated module
 * scores under the same threshold (docs/mutation.md). It prints each module's score and every mutant
 * that survived, so a failing CI log says what to kill, or to list as equivalent with why.
 */
import { readFileSync } from "node:fs";

interface Mutant {
	mutatorName: string;
	replacement?: string;
	status: string;
	location: { start: { line: number; column: number } };
}
interface Report {
	files: Record<string, { source: string; mutants: Mutant[] }>;
}

const config = JSON.parse(readFileSync("stryker.config.json", "utf8")) as {
	thresholds: { break: number };
	jsonReporter: { fileName: string };
};
const threshold = config.thresholds.break;
const report = JSON.parse(readFileSync(config.jsonReporter.fileName, "utf8")) as Report;

const DETECTED = new Set(["Killed", "Timeout"]);
const UNDETECTED = new Set(["Survived", "NoCoverage"]);

let failed = 0;
const rows: string[] = [];
const survivors: string[] = [];
for (const [file, { source, mutants }] of Object.entries(report.files).sort(([a], [b]) =>
	a.localeCompare(b),
)) {
	const detected = mutants.filter((m) => DETECTED.has(m.status)).length;
	const undetected = mutants.filter((m) => UNDETECTED.has(m.status));
	const valid = detected + undetected.length;
	// A module without a valid mutant (only constants, or only mutants that break loading) has nothing to miss.
	const score = valid === 0 ? 100 : (100 * detected) / valid;
	const ok = score >= threshold;
	if (!ok) failed += 1;
	rows.push(
		`${ok ? "ok  " : "FAIL"} ${score.toFixed(2).padStart(6)} %  ${String(valid).padStart(4)} mutants  ${file}`,
	);
	const lines = source.split("\n");
	for (const m of undetected) {
		const { line, column } = m.location.start;
		const code = (lines[line - 1] ?? "").trim().slice(0, 100);
		survivors.push(
			`  ${file}:${line}:${column} ${m.status} ${m.mutatorName}: ${code} → ${JSON.stringify(m.replacement ?? "")}`,
		);
	}
}

console.log(`Mutation score per module (break at ${threshold} %):`);
for (const row of rows) console.log(`  ${row}`);
if (survivors.length > 0) {
	console.log(
		"Mutants no test detected (each must be killed, or be equivalent and listed in docs/mutation.md):",
	);
	for (const survivor of survivors) console.log(survivor);
}
console.log(`mutation: ${rows.length - failed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
