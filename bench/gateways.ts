import { setTimeout as sleep } from "node:timers/promises";
import { type GatewaySim, startGatewaySim } from "../sim/openclaw.ts";

/**
 * One simulated OpenClaw Gateway per tenant, registered through the Worker's own admin route, as
 * an operator would: each tenant's Gateway DO then hears only its own tenant's runs (a shared
 * simulator would send every run's events to every tenant's connection).
 */
export class Gateways {
	readonly #sims = new Map<string, Promise<GatewaySim>>();
	readonly #serviceUrl: string;
	readonly #adminToken: string;
	readonly #token: string;

	constructor(serviceUrl: string, adminToken: string, token: string) {
		this.#serviceUrl = serviceUrl;
		this.#adminToken = adminToken;
		this.#token = token;
	}

	forTenant(tenantId: string): Promise<GatewaySim> {
		let sim = this.#sims.get(tenantId);
		if (!sim) {
			sim = this.#register(tenantId);
			this.#sims.set(tenantId, sim);
		}
		return sim;
	}

	/** Resolves once the tenant's Gateway DO has completed its handshake with the tenant's gateway. */
	async connected(tenantId: string): Promise<GatewaySim> {
		const sim = await this.forTenant(tenantId);
		const deadline = Date.now() + 30_000;
		while (sim.stats().open < 1) {
			if (Date.now() > deadline) throw new Error(`the gateway of ${tenantId} was never connected`);
			await sleep(25);
		}
		return sim;
	}

	async closeAll(): Promise<void> {
		await Promise.all([...this.#sims.values()].map(async (sim) => (await sim).close()));
	}

	async #register(tenantId: string): Promise<GatewaySim> {
		const sim = await startGatewaySim({ port: 0, token: this.#token, log: () => {} });
		const response = await fetch(`${this.#serviceUrl}/api/admin/tenants/${tenantId}/gateway`, {
			method: "PUT",
			headers: { "Content-Type": "application/json", Authorization: `Bearer ${this.#adminToken}` },
			body: JSON.stringify({ url: sim.url, token: this.#token }),
		});
		if (!response.ok)
			throw new Error(`registering the gateway of ${tenantId}: ${response.status} ${await response.text()}`);
		return sim;
	}
}
