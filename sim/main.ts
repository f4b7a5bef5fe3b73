import { parseArgs } from "node:util";
import { gatewayAgent, startObeGeeSim } from "./obegee.ts";
import { type GatewaySim, startGatewaySim } from "./openclaw.ts";

/**
 * Runs the ObeGee simulator on its own:
 *   node sim/main.ts --port 8788 --webhook-url http://127.0.0.1:8787/api/dispatch/delivery-webhook
 * Secrets come from OBEGEE_API_TOKEN and WEBHOOK_SECRET (or --api-token / --webhook-secret), the same
 * names the Worker reads, so one `.dev.vars` configures both sides. With OPENCLAW_GATEWAY_TOKEN (or
 * --gateway-token) it also runs the OpenClaw gateway simulator on --gateway-port (8789) and plays each
 * execution's agent run on it, as `npm start` does.
 */

const USAGE = `usage: node sim/main.ts [--port 8788] [--host 127.0.0.1] [--webhook-url URL]
                        [--api-token TOKEN] [--webhook-secret whsec_...]
                        [--gateway-port 8789] [--gateway-token TOKEN]
environment: OBEGEE_API_TOKEN, WEBHOOK_SECRET, OPENCLAW_GATEWAY_TOKEN (used when the flags are absent)`;

function fail(message: string): never {
	console.error(`obegee-sim: ${message}\n${USAGE}`);
	process.exit(2);
}

function readOptions() {
	const { values } = parseArgs({
		options: {
			port: { type: "string", default: "8788" },
			host: { type: "string", default: "127.0.0.1" },
			"webhook-url": { type: "string" },
			"api-token": { type: "string" },
			"webhook-secret": { type: "string" },
			"gateway-port": { type: "string", default: "8789" },
			"gateway-token": { type: "string" },
			help: { type: "boolean", default: false },
		},
	});
	if (values.help) {
		console.log(USAGE);
		process.exit(0);
	}
	const port = Number(values.port);
	if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`invalid --port ${values.port}`);
	const gatewayPort = Number(values["gateway-port"]);
	if (!Number.isInteger(gatewayPort) || gatewayPort < 0 || gatewayPort > 65535)
		fail(`invalid --gateway-port ${values["gateway-port"]}`);
	const gatewayToken = values["gateway-token"] ?? process.env.OPENCLAW_GATEWAY_TOKEN;
	const apiToken = values["api-token"] ?? process.env.OBEGEE_API_TOKEN;
	const webhookSecret = values["webhook-secret"] ?? process.env.WEBHOOK_SECRET;
	if (!apiToken) fail("set OBEGEE_API_TOKEN or pass --api-token");
	if (!webhookSecret?.startsWith("whsec_")) fail("set WEBHOOK_SECRET (whsec_...) or pass --webhook-secret");
	return {
		port,
		host: values.host,
		webhookUrl: values["webhook-url"],
		apiToken,
		webhookSecret,
		gateway: gatewayToken ? { port: gatewayPort, token: gatewayToken } : null,
	};
}

async function main(): Promise<void> {
	const { gateway: gatewayOptions, ...options } = readOptions();
	const inUse = (port: number) => (error: unknown) => {
		const code = (error as { code?: string }).code;
		if (code === "EADDRINUSE") fail(`port ${port} on ${options.host} is already in use`);
		throw error;
	};
	let gateway: GatewaySim | null = null;
	if (gatewayOptions) {
		gateway = await startGatewaySim({
			host: options.host,
			port: gatewayOptions.port,
			token: gatewayOptions.token,
			log: (line) => console.log(`[gateway] ${line}`),
		}).catch(inUse(gatewayOptions.port));
	}
	const sim = await startObeGeeSim({
		...options,
		log: (line) => console.log(`[sim] ${line}`),
		...(gateway ? { agent: gatewayAgent(gateway) } : {}),
	}).catch(inUse(options.port));
	console.log(`ObeGee simulator listening on ${sim.url}`);
	console.log(
		gateway
			? `each execution plays an agent run on the OpenClaw gateway simulator at ${gateway.url}`
			: "no OPENCLAW_GATEWAY_TOKEN: no OpenClaw gateway simulator",
	);
	console.log(
		options.webhookUrl ? `webhooks go to ${options.webhookUrl}` : "no --webhook-url: webhooks are not sent",
	);
	const shutdown = () => {
		void Promise.all([sim.close(), gateway?.close()]).then(() => process.exit(0));
	};
	process.once("SIGINT", shutdown);
	process.once("SIGTERM", shutdown);
}

await main();
