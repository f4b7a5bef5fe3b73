import { describe, expect, it } from "vitest";
import type { AgentUpdate } from "../src/openclaw/contract.ts";
import {
	AgentUpdateDelivery,
	ANSWER_CADENCE_MS,
	CHUNK_WINDOW_MS,
	type DeliveryOptions,
	foldText,
	RETRY_DELAYS_MS,
} from "../src/openclaw/delivery.ts";

/** A delivery to a session that always takes the batch: the calls, in order. */
function recording(options: DeliveryOptions = {}) {
	const calls: AgentUpdate[][] = [];
	const delivery = new AgentUpdateDelivery(
		async (_s, _e, updates) => {
			calls.push(updates);
		},
		() => {},
		options,
	);
	return { delivery, calls };
}

// Issue 6: a fast answer travels in a few coalesced batches, in order, with nothing lost or repeated.
describe("agent update delivery", () => {
	// Chunks 10 ms apart (100/s) and real timers: slower timers only coalesce more.
	it("coalesces a 100-chunks/s answer into at least 6x fewer calls (issue 17)", async () => {
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
		expect(calls.length * 6).toBeLessThanOrEqual(sent.length);
	});

	it("hands each drain to keepAlive once, however many updates join it (issue 17)", async () => {
		const kept: Array<Promise<void>> = [];
		const { delivery, calls } = recording({ keepAlive: (drain) => kept.push(drain), sleep: async () => {} });
		const first = delivery.push("s1", "exec_1", [{ kind: "chunk", text: "a" }]);
		void delivery.push("s1", "exec_1", [{ kind: "chunk", text: "b" }]);
		void delivery.push("s1", "exec_1", [{ kind: "chunk", text: "c" }]);
		expect(kept).toEqual([first]);
		await first;
		// The lane drained: the next update starts (and keeps alive) a drain of its own.
		const second = delivery.push("s1", "exec_1", [{ kind: "chunk", text: "d" }]);
		expect(second).not.toBe(first);
		expect(kept).toEqual([first, second]);
		await second;
		expect(calls.flat().map((u) => (u.kind === "chunk" ? u.text : ""))).toEqual(["abc", "d"]);
	});

	it("sends an answer's first words after CHUNK_WINDOW_MS, then its text at most once per ANSWER_CADENCE_MS", async () => {
		let now = 1_000_000;
		const waits: number[] = [];
		const { delivery, calls } = recording({
			now: () => now,
			sleep: async (ms) => {
				waits.push(ms);
				now += ms;
			},
		});
		await delivery.push("s1", "exec_1", [{ kind: "chunk", text: "a" }]);
		now += 30;
		await delivery.push("s1", "exec_1", [{ kind: "chunk", text: "b" }]);
		// Another execution's first words are not held by this one's cadence.
		await delivery.push("s1", "exec_2", [{ kind: "chunk", text: "x" }]);
		now += ANSWER_CADENCE_MS;
		await delivery.push("s1", "exec_1", [{ kind: "chunk", text: "c" }]);
		expect(waits).toEqual([
			CHUNK_WINDOW_MS,
			ANSWER_CADENCE_MS - 30,
			CHUNK_WINDOW_MS,
			// 'c' comes 300 ms after 'b' went: past its turn, so only the window.
			CHUNK_WINDOW_MS,
		]);
		expect(calls).toEqual([
			[{ kind: "chunk", text: "a" }],
			[{ kind: "chunk", text: "b" }],
			[{ kind: "chunk", text: "x" }],
			[{ kind: "chunk", text: "c" }],
		]);
	});

	it("cuts the answer's wait short for a status, the end or an error, which carry the text queued before them", async () => {
		const waits: number[] = [];
		// A wait that only ends when it is cut short.
		const { delivery, calls } = recording({
			sleep: (ms, wake) => {
				waits.push(ms);
				return wake;
			},
		});
		void delivery.push("s1", "exec_1", [{ kind: "chunk", text: "a" }]);
		void delivery.push("s1", "exec_1", [{ kind: "chunk", text: "b" }]);
		await delivery.push("s1", "exec_1", [{ kind: "status", status: "Using tool: search", progress: 40 }]);
		void delivery.push("s1", "exec_1", [{ kind: "chunk", text: "c" }]);
		await delivery.push("s1", "exec_1", [{ kind: "end" }]);
		void delivery.push("s1", "exec_2", [{ kind: "chunk", text: "x" }]);
		await delivery.push("s1", "exec_2", [{ kind: "error", message: "boom" }]);
		expect(calls).toEqual([
			[
				{ kind: "chunk", text: "ab" },
				{ kind: "status", status: "Using tool: search", progress: 40 },
			],
			[{ kind: "chunk", text: "c" }, { kind: "end" }],
			[
				{ kind: "chunk", text: "x" },
				{ kind: "error", message: "boom" },
			],
		]);
		expect(waits).toHaveLength(3);
	});

	it("lets a status that only moves the progress ride with the text: one after it, not one between every piece", async () => {
		const generating = (progress: number): AgentUpdate => ({
			kind: "status",
			status: "Generating response...",
			progress,
		});
		let cut = 0;
		const { delivery, calls } = recording({
			sleep: async (_ms, wake) => {
				await wake;
				cut += 1;
			},
		});
		void delivery.push("s1", "exec_1", [{ kind: "chunk", text: "a", offset: 0 }, generating(41)]);
		await delivery.idle();
		void delivery.push("s1", "exec_1", [{ kind: "chunk", text: "b", offset: 1 }, generating(42)]);
		void delivery.push("s1", "exec_1", [{ kind: "chunk", text: "c", offset: 2 }, generating(43)]);
		// Only the progress moved: the text still waits for its turn.
		await Promise.resolve();
		expect(calls).toHaveLength(1);
		await delivery.push("s1", "exec_1", [{ kind: "end" }]);
		expect(calls).toEqual([
			// The first status line is news: it goes at once, with the text before it.
			[{ kind: "chunk", text: "a", offset: 0 }, generating(41)],
			[{ kind: "chunk", text: "bc", offset: 1 }, generating(43), { kind: "end" }],
		]);
		expect(cut).toBe(1);
	});

	it("folds a batch: chunks joined, the last progress-only status of each stretch after its text, every other update in place", () => {
		const status = (text: string, progress: number): AgentUpdate => ({
			kind: "status",
			status: text,
			progress,
		});
		const chunk = (text: string, offset: number): AgentUpdate => ({ kind: "chunk", text, offset });
		expect(
			foldText([
				chunk("a", 0),
				status("Generating", 41),
				chunk("b", 1),
				status("Generating", 42),
				status("Using tool: search", 42),
				chunk("c", 2),
				status("Using tool: search", 44),
				chunk("d", 3),
				{ kind: "end" },
			]),
		).toEqual([
			chunk("a", 0),
			// "Generating" is news here (nothing before it in this batch or before it)...
			status("Generating", 41),
			// ...and its repeat folds after the text up to the next status line.
			chunk("b", 1),
			status("Generating", 42),
			status("Using tool: search", 42),
			chunk("cd", 2),
			status("Using tool: search", 44),
			{ kind: "end" },
		]);
		// Against the status line already handed over, the first repeat folds too.
		expect(foldText([status("Generating", 41), chunk("a", 0)], "Generating")).toEqual([
			chunk("a", 0),
			status("Generating", 41),
		]);
	});

	it("sends a status at once, flushing chunks queued before it, in order", async () => {
		const { delivery, calls } = recording();
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

// Issue 14, finding 11: a failing session is retried over time; a batch given up leaves a visible hole.
describe("agent update delivery to a failing session", () => {
	it("retries a failed call after growing waits, not in the same millisecond, and loses nothing", async () => {
		const waits: number[] = [];
		let failures = 4;
		const delivered: AgentUpdate[][] = [];
		const given: number[] = [];
		const delivery = new AgentUpdateDelivery(
			async (_s, _e, updates) => {
				if (failures-- > 0) throw new Error("session unavailable");
				delivered.push(updates);
			},
			(_e, _error, dropped) => given.push(dropped),
			{ sleep: async (ms) => void waits.push(ms) },
		);
		await delivery.push("s1", "exec_1", [{ kind: "status", status: "Agent started", progress: 10 }]);
		expect(delivered).toEqual([[{ kind: "status", status: "Agent started", progress: 10 }]]);
		expect(given).toEqual([]);
		expect(waits).toEqual([250, 500, 1_000, 2_000]);
		expect(delivery.stats).toEqual({ failedCalls: 4, dropped: 0 });
	});

	it("gives a batch up only after every wait, and the next chunk keeps its offset so the hole shows", async () => {
		const waits: number[] = [];
		const delivered: AgentUpdate[][] = [];
		let failing = true;
		const delivery = new AgentUpdateDelivery(
			async (_s, _e, updates) => {
				if (failing) throw new Error("session unavailable");
				delivered.push(updates);
			},
			() => {
				failing = false;
			},
			// A clock that stands still: the next text's turn is exactly the cadence.
			{ sleep: async (ms) => void waits.push(ms), now: () => 1_000 },
		);
		void delivery.push("s1", "exec_1", [{ kind: "chunk", text: "Hello, ", offset: 0 }]);
		await delivery.idle();
		await delivery.push("s1", "exec_1", [{ kind: "chunk", text: "world.", offset: 7 }]);
		// The first words' window, the retries, then the next text's turn in the answer's cadence.
		expect(waits).toEqual([CHUNK_WINDOW_MS, ...RETRY_DELAYS_MS, ANSWER_CADENCE_MS]);
		expect(delivered).toEqual([[{ kind: "chunk", text: "world.", offset: 7 }]]);
	});

	it("keeps a bounded queue while the session fails: statuses fold, the oldest go first", async () => {
		let release = () => {};
		const gate = new Promise<void>((resolve) => {
			release = resolve;
		});
		const delivered: AgentUpdate[][] = [];
		const delivery = new AgentUpdateDelivery(
			async (_s, _e, updates) => {
				await gate;
				delivered.push(updates);
			},
			() => {},
			{ maxQueued: 3 },
		);
		const done = delivery.push("s1", "exec_1", [{ kind: "end" }]);
		for (let i = 1; i <= 10; i++)
			void delivery.push("s1", "exec_1", [
				{ kind: "status", status: `step ${i}`, progress: i },
				{ kind: "error", message: `e${i}` },
			]);
		expect(delivery.queued()).toBeLessThanOrEqual(3);
		release();
		await done;
		await delivery.idle();
		expect(delivered.flat().at(-1)).toEqual({ kind: "error", message: "e10" });
		expect(delivery.stats.dropped).toBeGreaterThan(0);
	});
});
