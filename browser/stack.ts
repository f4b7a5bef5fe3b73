import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gatewayAgent, type ObeGeeSim, startObeGeeSim } from "../sim/obegee.ts";
import { type GatewaySim, startGatewaySim } from "../sim/openclaw.ts";
import { type PushSims, startPushSims } from "../sim/push/index.ts";
import { freePort, HOST, randomSecrets, startLocalWorker } from "../tools/local-worker.ts";

/**
 * The whole local stack for the browser test, wired as `npm start` wires it: the OpenClaw gateway
 * simulator, the ObeGee simulator (which starts each execution's agent run on that gateway) and
 * `wrangler dev` (demo routes on, fast polling, the gateway as every tenant's default) on free
 * ports, with fresh secrets and a throwaway D1/DO state directory, so it never collides with an
 * `npm start` running beside it. The push provider simulators (sim/push/) run too, with test-only
 * keys: Web Push is on, so the page offers "Notify me when it's done".
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

export interface Stack {
	url: string;
	/** The Worker's fresh secrets (SERVICE_TOKEN, SESSION_TOKEN_SECRET, …). */
	secrets: ReturnType<typeof randomSecrets>;
	sim: ObeGeeSim;
	gateway: GatewaySim;
	push: PushSims;
	stop(): Promise<void>;
}

export async function startStack(log: (line: string) => void): Promise<Stack> {
	const secrets = randomSecrets();
	const port = await freePort();
	const url = `http://${HOST}:${port}`;
	const gateway = await startGatewaySim({
		host: HOST,
		port: 0,
		token: secrets.OPENCLAW_GATEWAY_TOKEN,
		log: (line) => log(`[gateway] ${line}`),
	});
	const sim = await startObeGeeSim({
		host: HOST,
		port: 0,
		apiToken: secrets.OBEGEE_API_TOKEN,
		webhookSecret: secrets.WEBHOOK_SECRET,
		webhookUrl: `${url}/api/dispatch/delivery-webhook`,
		log: (line) => log(`[sim] ${line}`),
		agent: gatewayAgent(gateway),
	});
	const push = await startPushSims({ host: HOST, log });
	const stopSimulators = async () => {
		await sim.close();
		await gateway.close();
		await push.close();
	};
	try {
		const worker = await startLocalWorker({
			root: ROOT,
			config: "wrangler.toml",
			port,
			migrations: true,
			readyPath: "/health",
			onLine: (line) => {
				if (line.trim()) log(`[wrangler] ${line}`);
			},
			vars: {
				...secrets,
				OBEGEE_BASE_URL: sim.url,
				OPENCLAW_GATEWAY_URL: gateway.url,
				POLL_INTERVAL_MS: "500",
				DEMO_ROUTES: "true",
				// EXPO_PUSH_URL, APNS_*, FCM_*, VAPID_*: every push provider on, at its simulator.
				...push.env,
			},
		});
		return {
			url,
			secrets,
			sim,
			gateway,
			push,
			stop: async () => {
				await worker.stop();
				await stopSimulators();
			},
		};
	} catch (error) {
		await stopSimulators();
		throw error;
	}
}
