// The package's build, run by `npm pack` (prepack) and `npm run build`: a clean dist/ from tsc.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
// The client's own TypeScript (its devDependency), else the repository's.
const tsc = createRequire(join(root, "package.json")).resolve("typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], {
	cwd: root,
	stdio: "inherit",
});

// tsc rewrites the sources' relative `.ts` imports to `.js` in the JavaScript but keeps them in the
// .d.ts files; an app's TypeScript resolves `./fold.js` to fold.d.ts under every module setting.
const relativeTs = /((?:from|import)\s*\(?\s*["']\.\.?\/[^"']*?)\.ts(["'])/g;
for (const entry of readdirSync(dist, { recursive: true })) {
	const file = join(dist, String(entry));
	if (!file.endsWith(".d.ts")) continue;
	const text = readFileSync(file, "utf8");
	const fixed = text.replace(relativeTs, "$1.js$2");
	if (fixed !== text) writeFileSync(file, fixed);
}
const left = readdirSync(dist, { recursive: true })
	.map(String)
	.filter((entry) => entry.endsWith(".ts") || entry.endsWith(".js"))
	.filter((entry) => /from\s*["']\.\.?\/[^"']*\.ts["']/.test(readFileSync(join(dist, entry), "utf8")));
if (left.length > 0) throw new Error(`dist still imports .ts paths: ${left.join(", ")}`);
