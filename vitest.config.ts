import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { TEST_SECRETS, TEST_TIMING } from "./test/secrets.ts";
import { simulators } from "./test/simulators.ts";

/**
 * Tests run inside workerd with the real Durable Objects, alarms, D1 and WebSockets. Only what lies
 * outside the project is simulated: ObeGee and a tenant's OpenClaw Gateway run in Node for the whole
 * run (test/simulators.ts), and the Worker reaches them at the addresses that plugin provides.
 */
export default defineConfig({
	plugins: [
		simulators(),
		cloudflareTest(async ({ inject }) => {
			const sims = inject("simulators");
			return {
				wrangler: { configPath: "./wrangler.toml" },
				miniflare: {
					bindings: {
						...TEST_SECRETS,
						...TEST_TIMING,
						OBEGEE_BASE_URL: sims.obegee,
						SIM_URL: sims.obegee,
						OPENCLAW_GATEWAY_URL: sims.gateway,
						GATEWAY_SIM_URL: sims.gatewayControl,
						// EXPO_PUSH_URL, APNS_*, FCM_*, VAPID_*: the push provider simulators (sim/push/).
						...sims.push,
						TEST_MIGRATIONS: await readD1Migrations("./migrations"),
					},
					// A second, empty database: test/d1-migrations.test.ts migrates it step by step with rows in it.
					d1Databases: ["MIGRATION_DB"],
				},
			};
		}),
	],
	test: {
		include: ["test/**/*.test.ts"],
		setupFiles: ["./test/apply-migrations.ts"],
		testTimeout: 20_000,
	},
});
