import { env } from "cloudflare:workers";

/** Helpers for the OpenClaw gateway tests: the simulated gateway's control API and the Gateway DO. */

declare global {
	namespace Cloudflare {
		interface Env {
			GATEWAY_SIM_URL: string;
		}
	}
}

export async function gatewaySim<T = Record<string, unknown>>(path: string, body?: unknown): Promise<T> {
	const response = await fetch(`${env.GATEWAY_SIM_URL}${path}`, {
		method: body === undefined ? "GET" : "POST",
		headers: { "content-type": "application/json" },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	if (!response.ok) throw new Error(`gateway sim ${path}: ${response.status} ${await response.text()}`);
	return (await response.json()) as T;
}

export interface SimStats {
	connections: number;
	hellos: number;
	refusals: { code: string }[];
	devices: string[];
	deviceTokenConnects: number;
	preauthCloses: string[];
}

export const simStats = () => gatewaySim<SimStats>("/__sim/state");

/** One `connect` the simulator received (sim/openclaw.ts RecordedConnect). */
export interface RecordedConnect {
	path: string;
	peer: "loopback" | "remote";
	params: {
		scopes?: string[];
		caps?: string[];
		auth?: { token?: string; deviceToken?: string };
		device?: { id: string };
	};
	outcome: string;
	scopes?: string[];
	deviceTokenIssued?: boolean;
}

/** Every `connect` the simulator received from this device, oldest first. */
export const simConnects = async (deviceId: string) =>
	(await gatewaySim<{ connects: RecordedConnect[] }>(`/__sim/connects?deviceId=${deviceId}`)).connects;

export function gatewayStub(tenantId: string) {
	return env.GATEWAY.getByName(tenantId);
}

/** Polls until the condition holds: network I/O to the simulator is real, so it is awaited, never slept on. */
export async function eventually<T>(
	read: () => Promise<T>,
	ok: (value: T) => boolean,
	what: string,
	timeoutMs = 4_000,
) {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await read();
		if (ok(value)) return value;
		if (Date.now() > deadline)
			throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(value)}`);
		await new Promise((resolve) => setTimeout(resolve, 20));
	}
}
