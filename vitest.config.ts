import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { startObeGeeSim } from "./sim/obegee.ts";
import { startGatewaySim } from "./sim/openclaw.ts";
import { TEST_SECRETS, TEST_TIMING } from "./test/secrets.ts";

/**
 * Tests run inside workerd with the real Durable Objects, alarms, D1 and WebSockets. Only what lies
 * outside the project is simulated: ObeGee runs as the project's simulator on loopback, reached by
 * the Worker over real HTTP exactly as in production (OBEGEE_BASE_URL).
 */
export default defineConfig(async () => {
	const sim = await startObeGeeSim({
		port: 0,
		apiToken: TEST_SECRETS.OBEGEE_API_TOKEN,
		webhookSecret: TEST_SECRETS.WEBHOOK_SECRET,
		log: () => {},
	});
	// A tenant's OpenClaw Gateway (issue 3), reached over a real WebSocket as in production.
	const gateway = await startGatewaySim({
		port: 0,
		token: TEST_SECRETS.OPENCLAW_GATEWAY_TOKEN,
		log: () => {},
	});
	// Closed by test/global-setup.ts when the run ends, so the process exits promptly.
	(globalThis as { __simulators?: Array<{ close(): Promise<void> }> }).__simulators = [sim, gateway];
	return {
		plugins: [
			cloudflareTest({
				wrangler: { configPath: "./wrangler.toml" },
				miniflare: {
					bindings: {
						...TEST_SECRETS,
						...TEST_TIMING,
						OBEGEE_BASE_URL: sim.url,
						SIM_URL: sim.url,
						OPENCLAW_GATEWAY_URL: gateway.url,
						GATEWAY_SIM_URL: gateway.httpUrl,
						TEST_MIGRATIONS: await readD1Migrations("./migrations"),
					},
				},
			}),
		],
		test: {
			include: ["test/**/*.test.ts"],
			setupFiles: ["./test/apply-migrations.ts"],
			globalSetup: ["./test/global-setup.ts"],
			testTimeout: 20_000,
		},
	};
});
