/**
 * `npm run deploy -- --env staging|production`: applies the D1 migrations of that environment, then
 * deploys its Worker — the two steps with the same `--env`, in that order, so a Worker never runs
 * against a schema it does not know. `npm run deploy:check` dry-runs every environment instead.
 */
import { spawnSync } from "node:child_process";

const args = process.argv.slice(2);
const check = args.includes("--check");
const envIndex = args.indexOf("--env");
const named = envIndex >= 0 ? args[envIndex + 1] : undefined;

function run(command: string[]): void {
	console.log(`$ wrangler ${command.join(" ")}`);
	const result = spawnSync("wrangler", command, { stdio: "inherit", shell: false });
	if (result.status !== 0) process.exit(result.status ?? 1);
}

if (check) {
	// The local config and both deployed environments must build and bind.
	for (const env of [null, "staging", "production"]) {
		run([
			"deploy",
			"--dry-run",
			"--outdir",
			`.wrangler/dry-run/${env ?? "local"}`,
			...(env ? ["--env", env] : []),
		]);
	}
} else {
	if (named !== "staging" && named !== "production") {
		console.error("Usage: npm run deploy -- --env staging|production");
		process.exit(2);
	}
	run(["d1", "migrations", "apply", "DB", "--remote", "--env", named]);
	run(["deploy", "--env", named]);
}
