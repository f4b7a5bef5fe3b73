import type { Plugin } from "vitest/config";
import { startObeGeeSim } from "../sim/obegee.ts";
import { startGatewaySim } from "../sim/openclaw.ts";
import { startPushSims } from "../sim/push/index.ts";
import { TEST_SECRETS } from "./secrets.ts";

/** Where the simulators listen; vitest.config.ts binds these into the Worker under test. */
export interface SimulatorUrls {
	/** ObeGee's API and its `/__sim` control API. */
	obegee: string;
	/** A tenant's OpenClaw Gateway (WebSocket)… */
	gateway: string;
	/** …and its `/__sim` control API on the same port. */
	gatewayControl: string;
	/**
	 * The push provider simulators (sim/push/): the Worker's EXPO_PUSH_URL, APNS_*, FCM_* and VAPID_*
	 * settings for them, with test-only keys generated for this run.
	 */
	push: Record<string, string>;
}

declare module "vitest" {
	export interface ProvidedContext {
		simulators: SimulatorUrls;
	}
}

/**
 * A Vitest plugin that runs the simulators in Node for the whole test run: ObeGee, reached by the
 * Worker over real HTTP exactly as in production (OBEGEE_BASE_URL), and a tenant's OpenClaw Gateway
 * (issue 3), reached over a real WebSocket, both on free loopback ports. It provides their addresses
 * as `simulators` (vitest.config.ts reads them with `inject` when the Worker's pool starts) and closes
 * them when Vitest closes.
 *
 * A plugin, not a `globalSetup` file: global setup modules load through Vite with the Workers
 * plugin's browser/worker resolve conditions, which pick `ws`'s browser stub; the config's own
 * imports are plain Node imports.
 */
export function simulators(): Plugin {
	return {
		name: "myndlens:simulators",
		async configureVitest({ project, vitest }) {
			const obegee = await startObeGeeSim({
				port: 0,
				apiToken: TEST_SECRETS.OBEGEE_API_TOKEN,
				webhookSecret: TEST_SECRETS.WEBHOOK_SECRET,
				log: () => {},
			});
			const gateway = await startGatewaySim({
				port: 0,
				token: TEST_SECRETS.OPENCLAW_GATEWAY_TOKEN,
				log: () => {},
			});
			// TooManyProviderTokenUpdates is armed per namespace by the tests that check it (POST
			// <apns>/ns/<id>/__sim/config), so no test trips over another file's token renewal.
			const push = await startPushSims({
				log: () => {},
				tokenUpdateMinIntervalMs: 0,
				expoAccessToken: "test-expo-access-token",
			});
			vitest.onClose(async () => {
				await Promise.all([obegee.close(), gateway.close(), push.close()]);
			});
			project.provide("simulators", {
				obegee: obegee.url,
				gateway: gateway.url,
				gatewayControl: gateway.httpUrl,
				// The Web Push simulator has no Worker setting (endpoints come from subscriptions): tests
				// create subscriptions at WEBPUSH_SIM_URL.
				push: { ...push.env, WEBPUSH_SIM_URL: push.webpush.url },
			});
		},
	};
}
