import { parseArgs } from "node:util";
import { startObeGeeSim } from "./obegee.ts";

/**
 * Runs the ObeGee simulator on its own:
 *   node sim/main.ts --port 8788 --webhook-url http://127.0.0.1:8787/api/dispatch/delivery-webhook
 * Secrets come from OBEGEE_API_TOKEN and WEBHOOK_SECRET (or --api-token / --webhook-secret), the same
 * names the Worker reads, so one `.dev.vars` configures both sides.
 */

const USAGE = `usage: node sim/main.ts [--port 8788] [--host 127.0.0.1] [--webhook-url URL]
                        [--api-token TOKEN] [--webhook-secret whsec_...]
environment: OBEGEE_API_TOKEN, WEBHOOK_SECRET (used when the flags are absent)`;

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
			help: { type: "boolean", default: false },
		},
	});
	if (values.help) {
		console.log(USAGE);
		process.exit(0);
	}
	const port = Number(values.port);
	if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`invalid --port ${values.port}`);
	const apiToken = values["api-token"] ?? process.env.OBEGEE_API_TOKEN;
	const webhookSecret = values["webhook-secret"] ?? process.env.WEBHOOK_SECRET;
	if (!apiToken) fail("set OBEGEE_API_TOKEN or pass --api-token");
	if (!webhookSecret?.startsWith("whsec_")) fail("set WEBHOOK_SECRET (whsec_...) or pass --webhook-secret");
	return { port, host: values.host, webhookUrl: values["webhook-url"], apiToken, webhookSecret };
}

async function main(): Promise<void> {
	const options = readOptions();
	const sim = await startObeGeeSim({ ...options, log: (line) => console.log(`[sim] ${line}`) }).catch(
		(error: unknown) => {
			const code = (error as { code?: string }).code;
			if (code === "EADDRINUSE") fail(`port ${options.port} on ${options.host} is already in use`);
			throw error;
		},
	);
	console.log(`ObeGee simulator listening on ${sim.url}`);
	console.log(
		options.webhookUrl ? `webhooks go to ${options.webhookUrl}` : "no --webhook-url: webhooks are not sent",
	);
	const shutdown = () => {
		void sim.close().then(() => process.exit(0));
	};
	process.once("SIGINT", shutdown);
	process.once("SIGTERM", shutdown);
}

await main();
