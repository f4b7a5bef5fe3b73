/** Runs in Node around the whole test run: closes the simulated ObeGee that vitest.config.ts started. */
export default function setup() {
	return async () => {
		await (globalThis as { __obegeeSim?: { close(): Promise<void> } }).__obegeeSim?.close();
	};
}
