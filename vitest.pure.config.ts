import { defineConfig } from "vitest/config";

/**
 * The pure modules (no Workers runtime, no I/O) and their behaviour tests in test/pure/, under plain
 * Node: what `npm run test:mutation` runs StrykerJS against (stryker.config.json, docs/mutation.md).
 * The same files also run inside workerd as part of `npm test` (vitest.config.ts picks up test/**).
 * Tests here compute everything inside `it` (nothing at describe time), so Stryker can tell which
 * test covers which mutant.
 */
export default defineConfig({
	test: {
		environment: "node",
		include: ["test/pure/**/*.test.ts"],
	},
});
