import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AgentUpdate } from "../src/openclaw/contract.ts";
import { coalesceChunks } from "../src/openclaw/contract.ts";
import type { AgentEvent, ChatEvent } from "../src/openclaw/frames.ts";
import {
	type MappingNote,
	mapAgentEvent,
	mapChatEvent,
	matchesExecution,
	mustPersist,
	newRunState,
	type RunState,
	restoredRunState,
} from "../src/openclaw/mapping.ts";

/** The pure event → AgentUpdate mapping (issue 3, "Map events to progress"). */

type Input = { agent: AgentEvent } | { chat: ChatEvent };

function feed(inputs: Input[], start: RunState = newRunState()) {
	let state = start;
	const updates: AgentUpdate[] = [];
	const notes: MappingNote[] = [];
	for (const input of inputs) {
		const result = "agent" in input ? mapAgentEvent(state, input.agent) : mapChatEvent(state, input.chat);
		state = result.state;
		updates.push(...result.updates);
		notes.push(...result.notes);
	}
	const answer = updates.flatMap((u) => (u.kind === "chunk" ? [u.text] : [])).join("");
	return { state, updates, notes, answer };
}

const RUN = "exec_1";
const agent = (seq: number, stream: string, data: Record<string, unknown>): Input => ({
	agent: { runId: RUN, seq, stream, data },
});
const chat = (seq: number, state: string, text?: string, deltaText?: string): Input => ({
	chat: {
		runId: RUN,
		seq,
		state,
		...(deltaText !== undefined ? { deltaText } : {}),
		...(text !== undefined ? { message: { role: "assistant", content: [{ type: "text", text }] } } : {}),
	},
});

/** The sample run's shape (openclaw-sample-run.jsonl), with its natural per-run seq holes. */
const SAMPLE: Input[] = [
	agent(1, "lifecycle", { phase: "start" }),
	agent(2, "lifecycle", { phase: "model" }),
	agent(3, "usage", { outputTokens: 10 }),
	agent(4, "item", {
		kind: "tool",
		phase: "start",
		toolCallId: "call_1",
		name: "read",
		title: "Read from REPORT.md",
	}),
	agent(5, "tool", { phase: "start", toolCallId: "call_1", name: "read" }),
	agent(6, "tool", { phase: "result", toolCallId: "call_1", name: "read", isError: false }),
	agent(7, "item", { kind: "tool", phase: "end", toolCallId: "call_1", name: "read" }),
	agent(9, "assistant", { text: "The we", delta: "The we", itemId: "m2" }),
	chat(9, "delta", "The we", "The we"),
	agent(11, "assistant", { text: "The weekly report", delta: "ekly report", itemId: "m2" }),
	chat(11, "delta", "The weekly report", "ekly report"),
	agent(13, "assistant", { text: "The weekly report is up.", delta: " is up.", itemId: "m2" }),
	agent(20, "lifecycle", { phase: "finishing" }),
	agent(22, "lifecycle", { phase: "end", terminalReply: { text: "The weekly report is up." } }),
	chat(13, "delta", "The weekly report is up.", " is up."),
	chat(22, "final", "The weekly report is up."),
];

describe("mapping a run", () => {
	it("shows the seed's sub-statuses and progress, the answer once, then end", () => {
		const { updates, answer } = feed(SAMPLE);
		const statuses = updates.flatMap((u) => (u.kind === "status" ? [`${u.progress} ${u.status}`] : []));
		expect(statuses).toEqual(["10 Agent started", "20 Read from REPORT.md", "90 Generating response..."]);
		expect(answer).toBe("The weekly report is up.");
		expect(updates.at(-1)).toEqual({ kind: "end" });
		expect(updates.filter((u) => u.kind === "end")).toHaveLength(1);
	});

	it("says 'Using X tool...' without an item title, +10 % per call up to 90 %", () => {
		const tools = Array.from({ length: 10 }, (_, i) =>
			agent(i + 2, "tool", { phase: "start", toolCallId: `c${i}`, name: "browser" }),
		);
		const { updates } = feed([agent(1, "lifecycle", { phase: "start" }), ...tools]);
		const progress = updates.flatMap((u) => (u.kind === "status" ? [u.progress] : []));
		expect(progress).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 90, 90]);
		expect(updates[1]).toEqual({ kind: "status", status: "Using browser tool...", progress: 20 });
	});

	it("shows a lifecycle error as a sub-status (not a failure) and a retried start again", () => {
		const { updates } = feed([
			agent(1, "lifecycle", { phase: "start" }),
			agent(2, "lifecycle", { phase: "error", error: "secret internal detail" }),
			agent(3, "lifecycle", { phase: "start" }),
		]);
		expect(updates.map((u) => u.kind)).toEqual(["status", "error", "status"]);
		expect(JSON.stringify(updates)).not.toContain("secret internal detail");
	});

	it("turns chat error and aborted into sub-statuses", () => {
		const { updates } = feed([chat(1, "error"), chat(2, "aborted")]);
		expect(updates.map((u) => u.kind)).toEqual(["status", "status"]);
	});

	it("drops duplicates by per-run seq and notes gaps; cumulative text heals a lost delta", () => {
		const { answer, notes } = feed([
			agent(1, "assistant", { text: "Hel", delta: "Hel", itemId: "m" }),
			agent(1, "assistant", { text: "Hel", delta: "Hel", itemId: "m" }),
			agent(3, "assistant", { text: "Hello wor", delta: " wor", itemId: "m" }),
			agent(4, "assistant", { text: "Hello world", delta: "ld", itemId: "m" }),
		]);
		expect(answer).toBe("Hello world");
		expect(notes).toEqual([
			{ kind: "duplicate", stream: "agent", seq: 1 },
			{ kind: "gap", stream: "agent", expected: 2, got: 3 },
		]);
	});

	it("takes a replace: true chat delta as the whole text, not a suffix (issue 19)", () => {
		const { answer } = feed([
			{ chat: { runId: RUN, seq: 1, state: "delta", deltaText: "Hello" } },
			{ chat: { runId: RUN, seq: 2, state: "delta", deltaText: "Hello, world", replace: true } },
			{ chat: { runId: RUN, seq: 3, state: "delta", deltaText: "!" } },
		]);
		expect(answer).toBe("Hello, world!");
	});

	it("completes the answer from chat final when lifecycle end has no terminal reply", () => {
		const { answer, updates } = feed([
			agent(1, "assistant", { text: "Forty", delta: "Forty", itemId: "m" }),
			agent(2, "lifecycle", { phase: "end" }),
			chat(2, "final", "Forty-two"),
		]);
		expect(answer).toBe("Forty-two");
		expect(updates.map((u) => u.kind)).toEqual(["status", "chunk", "end", "chunk"]);
	});

	it("separates two assistant items and ignores text that diverged", () => {
		const { answer, notes } = feed([
			agent(1, "assistant", { text: "Let me look.", itemId: "a" }),
			agent(2, "assistant", { text: "Done.", itemId: "b" }),
			chat(3, "final", "Something else"),
		]);
		expect(answer).toBe("Let me look.\n\nDone.");
		expect(notes).toEqual([{ kind: "diverged", source: "chat.final" }]);
	});

	it("matches runs by runId or a sessionKey ending in the execution id, at a boundary", () => {
		expect(matchesExecution({ runId: "exec_1" }, "exec_1")).toBe(true);
		expect(matchesExecution({ sessionKey: "agent:main:myndlens-exec_1" }, "exec_1")).toBe(true);
		expect(matchesExecution({ sessionKey: "agent:main:xexec_1" }, "exec_1")).toBe(false);
		expect(matchesExecution({ runId: "exec_11" }, "exec_1")).toBe(false);
	});

	it("coalesces consecutive chunks only", () => {
		expect(
			coalesceChunks([
				{ kind: "chunk", text: "a" },
				{ kind: "chunk", text: "b" },
				{ kind: "status", status: "s", progress: 90 },
				{ kind: "chunk", text: "c" },
			]),
		).toEqual([
			{ kind: "chunk", text: "ab" },
			{ kind: "status", status: "s", progress: 90 },
			{ kind: "chunk", text: "c" },
		]);
	});
});

describe("mapping properties", () => {
	/** Any delivery order, duplication or loss of a run's events. */
	const answerArb = fc.string({ minLength: 1, maxLength: 60 });
	const scenario = fc.tuple(answerArb, fc.array(fc.nat({ max: 100 }), { maxLength: 40 }), fc.boolean());

	it("never lowers progress, never repeats answer text, and ends whole when the end carries it", () => {
		fc.assert(
			fc.property(scenario, ([answer, picks, withFinal]) => {
				const cuts = [
					...new Set(picks.map((p) => Math.min(answer.length, Math.round((p / 100) * answer.length)))),
				];
				const events: Input[] = [agent(1, "lifecycle", { phase: "start" })];
				for (const [i, cut] of cuts.entries()) {
					const text = answer.slice(0, cut);
					// Out-of-order, duplicated and skipped seqs all happen here.
					events.push(
						i % 3 === 2
							? chat(2 + (picks[i] ?? 0), "delta", text)
							: agent(2 + (picks[i] ?? 0), "assistant", { text, itemId: "m" }),
					);
					events.push(agent(2 + i, "tool", { phase: "start", toolCallId: `t${i % 4}`, name: "read" }));
				}
				if (withFinal)
					events.push(agent(500, "lifecycle", { phase: "end", terminalReply: { text: answer } }));
				const { updates, answer: joined } = feed(events);
				const progress = updates.flatMap((u) => (u.kind === "status" ? [u.progress] : []));
				for (let i = 1; i < progress.length; i++)
					expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1] as number);
				expect(answer.startsWith(joined)).toBe(true);
				if (withFinal) expect(joined).toBe(answer);
			}),
			{ numRuns: 300 },
		);
	});
});

// Issue 14, finding 11: what a restored state (after a Gateway DO restart) can and cannot place.
describe("mapping state restored after a restart", () => {
	const streaming = feed([
		agent(1, "lifecycle", { phase: "start" }),
		agent(2, "assistant", { itemId: "i1", text: "Let me", delta: "Let me" }),
	]);
	// Persisted mid-item, then restored (gateway-store.ts does the same).
	const restored = () => restoredRunState(JSON.parse(JSON.stringify({ ...streaming.state, resumed: false })));

	it("persists at item boundaries: a new item, the end of an item's text, a tool call", () => {
		const settled = feed(
			[agent(3, "item", { kind: "tool", phase: "start", toolCallId: "c1" })],
			streaming.state,
		);
		expect(mustPersist(streaming.state, settled.state)).toBe(true);
		const more = feed(
			[agent(3, "assistant", { itemId: "i1", text: "Let me check", delta: " check" })],
			streaming.state,
		);
		expect(mustPersist(streaming.state, more.state)).toBe(false);
	});

	it("skips a delta without cumulative text, then places the next cumulative text exactly", () => {
		const out = feed(
			[
				agent(4, "assistant", { itemId: "i1", delta: "check." }),
				agent(5, "assistant", { itemId: "i1", text: "Let me check. Done", delta: " Done" }),
			],
			restored(),
		);
		expect(out.updates.filter((u) => u.kind === "chunk")).toEqual([
			{ kind: "chunk", text: " check. Done", offset: 6 },
		]);
	});

	it("flags the next item's first chunk as following a gap when the restored item ended unseen", () => {
		const out = feed([agent(7, "assistant", { itemId: "i2", text: "Sent.", delta: "Sent." })], restored());
		expect(out.updates.filter((u) => u.kind === "chunk")).toEqual([
			{ kind: "chunk", text: "\n\nSent.", offset: 6, gap: true },
		]);
		expect(out.notes).toContainEqual({ kind: "resumed_gap", offset: 6 });
		expect(coalesceChunks([{ kind: "chunk", text: "Let me", offset: 0 }, ...out.updates])).toHaveLength(2);
	});
});
