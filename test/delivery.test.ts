import { describe, expect, it } from "vitest";
import type { AgentUpdate } from "../src/openclaw/contract.ts";
import { AgentUpdateDelivery } from "../src/openclaw/delivery.ts";

// Issue 6: a fast answer travels in a few coalesced batches, in order, with nothing lost or repeated.
describe("agent update delivery", () => {
	// Chunks 10 ms apart (100/s) and a CHUNK_WINDOW_MS window: slower timers only coalesce more.
	it("coalesces a 100-chunks/s answer into at least 4x fewer calls", async () => {
		const calls: Array<{ updates: AgentUpdate[] }> = [];
		const delivery = new AgentUpdateDelivery(
			async (_session, _execution, updates) => {
				calls.push({ updates });
			},
			() => {
				throw new Error("no delivery may fail here");
			},
		);
		const sent: string[] = [];
		for (let i = 0; i < 50; i++) {
			const text = `w${i} `;
			sent.push(text);
			void delivery.push("s1", "exec_1", [{ kind: "chunk", text }]);
			await new Promise((resolve) => setTimeout(resolve, 10));
		}
		await delivery.idle();
		const received = calls.flatMap((call) => call.updates.map((u) => (u.kind === "chunk" ? u.text : "")));
		expect(received.join("")).toBe(sent.join(""));
		expect(calls.length * 4).toBeLessThanOrEqual(sent.length);
	});

	it("sends a status at once, flushing chunks queued before it, in order", async () => {
		const calls: AgentUpdate[][] = [];
		const delivery = new AgentUpdateDelivery(
			async (_s, _e, updates) => {
				calls.push(updates);
			},
			() => {},
		);
		void delivery.push("s1", "exec_1", [{ kind: "status", status: "Agent started", progress: 10 }]);
		void delivery.push("s1", "exec_1", [{ kind: "chunk", text: "a" }]);
		void delivery.push("s1", "exec_1", [{ kind: "chunk", text: "b" }, { kind: "end" }]);
		await delivery.idle();
		expect(calls.flat()).toEqual([
			{ kind: "status", status: "Agent started", progress: 10 },
			{ kind: "chunk", text: "ab" },
			{ kind: "end" },
		]);
	});
});
