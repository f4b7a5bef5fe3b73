/** Runs in Node around the whole test run: closes the simulators that vitest.config.ts started. */
export default function setup() {
	return async () => {
		const simulators =
			(globalThis as { __simulators?: Array<{ close(): Promise<void> }> }).__simulators ?? [];
		await Promise.all(simulators.map((simulator) => simulator.close()));
	};
}
