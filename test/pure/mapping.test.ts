import { describe, expect, it } from "vitest";
import type { AgentUpdate } from "../../src/openclaw/contract.ts";
import type { AgentEvent, ChatEvent } from "../../src/openclaw/frames.ts";
import {
	type MappingNote,
	mapAgentEvent,
	mapChatEvent,
	matchesExecution,
	mustPersist,
	newRunState,
	type RunState,
	restoredRunState,
} from "../../src/openclaw/mapping.ts";

/**
 * OpenClaw `agent`/`chat` events → what the phone shows (seed-spec.md "Future Enhancement", issue 3):
 * sub-statuses and progress, the answer streamed once and in order, the end of the run.
 */

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
	const statuses = updates.flatMap((u) => (u.kind === "status" ? [`${u.progress} ${u.status}`] : []));
	return { state, updates, notes, answer, statuses };
}

const agent = (seq: number | undefined, stream: string, data?: Record<string, unknown>): Input => ({
	agent: { runId: "exec_1", ...(seq === undefined ? {} : { seq }), stream, ...(data ? { data } : {}) },
});
const chat = (seq: number | undefined, state: string, extra: Partial<ChatEvent> = {}): Input => ({
	chat: { runId: "exec_1", ...(seq === undefined ? {} : { seq }), state, ...extra },
});
const message = (text: string) => ({ message: { role: "assistant", content: [{ type: "text", text }] } });
const start = (seq: number) => agent(seq, "lifecycle", { phase: "start" });
const tool = (seq: number | undefined, id: string | undefined, name?: string) =>
	agent(seq, "tool", { phase: "start", ...(id ? { toolCallId: id } : {}), ...(name ? { name } : {}) });
const text = (seq: number, itemId: string | undefined, cumulative: string) =>
	agent(seq, "assistant", { ...(itemId ? { itemId } : {}), text: cumulative });

describe("a new run", () => {
	it("has shown nothing, seen nothing and streams no item", () => {
		expect(newRunState()).toEqual({
			progress: 0,
			started: false,
			ended: false,
			toolCount: 0,
			toolCalls: {},
			agentSeq: 0,
			chatSeq: 0,
			itemId: null,
			itemText: "",
			answerChars: 0,
			itemSettled: false,
			resumed: false,
		});
	});

	it("is never changed in place by mapping an event", () => {
		const before = feed([start(1), tool(2, "c1", "read")]).state;
		const copy = JSON.parse(JSON.stringify(before));
		mapAgentEvent(before, {
			runId: "exec_1",
			seq: 3,
			stream: "tool",
			data: { phase: "start", toolCallId: "c2" },
		});
		mapChatEvent(before, { runId: "exec_1", seq: 1, state: "final", ...message("Hi") });
		expect(before).toEqual(copy);
	});
});

describe("which runs belong to an execution", () => {
	it("a run whose runId is the execution id", () => {
		expect(matchesExecution({ runId: "exec_1" }, "exec_1")).toBe(true);
		expect(matchesExecution({ runId: "exec_11" }, "exec_1")).toBe(false);
	});

	it("a sessionKey that is the execution id, or ends in it after a separator", () => {
		expect(matchesExecution({ sessionKey: "exec_1" }, "exec_1")).toBe(true);
		for (const separator of [":", "-", "_", "/"]) {
			expect(matchesExecution({ sessionKey: `agent${separator}exec_1` }, "exec_1")).toBe(true);
		}
		for (const key of ["agentxexec_1", "agent.exec_1", "agent:main.exec_1", "agent:exec_1:x", "", "exec_"]) {
			expect(matchesExecution({ sessionKey: key }, "exec_1")).toBe(false);
		}
	});

	it("nothing else", () => {
		expect(matchesExecution({}, "exec_1")).toBe(false);
		expect(matchesExecution({ runId: "run_9", sessionKey: "agent:main" }, "exec_1")).toBe(false);
	});
});

describe("the lifecycle", () => {
	it("start says the agent started, at 10 %", () => {
		const { updates, state } = feed([start(1)]);
		expect(updates).toEqual([{ kind: "status", status: "Agent started", progress: 10 }]);
		expect(state.started).toBe(true);
	});

	it("a repeated start while the run goes on shows nothing more", () => {
		expect(feed([start(1), start(2)]).updates).toHaveLength(1);
		expect(feed([start(1), tool(2, "c1"), start(3)]).statuses).toEqual([
			"10 Agent started",
			"20 Using a tool...",
		]);
	});

	it("an error is only a sub-status (OpenClaw may retry); a retried start shows again without lowering progress", () => {
		const { updates, state } = feed([
			start(1),
			tool(2, "c1", "read"),
			agent(3, "lifecycle", { phase: "error", error: "internal detail" }),
			start(4),
		]);
		expect(updates).toEqual([
			{ kind: "status", status: "Agent started", progress: 10 },
			{ kind: "status", status: "Using read tool...", progress: 20 },
			{ kind: "error", message: "The agent hit a problem and may retry..." },
			{ kind: "status", status: "Agent started", progress: 20 },
		]);
		expect(state.started).toBe(true);
	});

	it("an error marks the run as not started", () => {
		expect(feed([start(1), agent(2, "lifecycle", { phase: "error" })]).state.started).toBe(false);
	});

	it("end completes the answer from the terminal reply, goes to 100 % and ends once", () => {
		const { updates, state } = feed([
			start(1),
			text(2, "m", "The report"),
			agent(3, "lifecycle", { phase: "end", terminalReply: { text: "The report is up." } }),
			agent(4, "lifecycle", { phase: "end", terminalReply: { text: "The report is up. More" } }),
		]);
		expect(updates).toEqual([
			{ kind: "status", status: "Agent started", progress: 10 },
			{ kind: "status", status: "Generating response...", progress: 90 },
			{ kind: "chunk", text: "The report", offset: 0 },
			{ kind: "chunk", text: " is up.", offset: 10 },
			{ kind: "end" },
		]);
		expect(state).toMatchObject({ ended: true, progress: 100 });
	});

	it("end without a readable terminal reply only ends", () => {
		for (const terminalReply of [undefined, null, "text", ["text"], { text: 42 }]) {
			expect(feed([agent(1, "lifecycle", { phase: "end", terminalReply })]).updates).toEqual([
				{ kind: "end" },
			]);
		}
	});

	it("other phases show nothing", () => {
		expect(feed([agent(1, "lifecycle", { phase: "model" }), agent(2, "lifecycle")]).updates).toEqual([]);
	});
});

describe("tool calls", () => {
	it("each distinct call adds 10 %, up to 90 %, with 'Using X tool...' when it has no title", () => {
		const calls = Array.from({ length: 10 }, (_, i) => tool(i + 2, `c${i}`, "browser"));
		const { statuses, state } = feed([start(1), ...calls]);
		expect(statuses).toEqual([
			"10 Agent started",
			...[20, 30, 40, 50, 60, 70, 80, 90, 90, 90].map((p) => `${p} Using browser tool...`),
		]);
		expect(state.toolCount).toBe(10);
	});

	it("an item's title is the line, clipped to one line of at most 120 characters", () => {
		const item = (seq: number, id: string, title: string) =>
			agent(seq, "item", { kind: "tool", phase: "start", toolCallId: id, name: "read", title });
		const long = "x".repeat(121);
		const { statuses } = feed([
			item(1, "c1", "  Read   from\nREPORT.md "),
			item(2, "c2", "y".repeat(120)),
			item(3, "c3", long),
		]);
		expect(statuses).toEqual([`20 Read from REPORT.md`, `30 ${"y".repeat(120)}`, `40 ${"x".repeat(117)}...`]);
	});

	it("one call seen as an item and as a tool event counts once; a later title replaces 'Using…'", () => {
		const { statuses, state } = feed([
			start(1),
			tool(2, "c1", "read"),
			agent(3, "item", {
				kind: "tool",
				phase: "start",
				toolCallId: "c1",
				name: "read",
				title: "Read REPORT.md",
			}),
			agent(4, "item", { kind: "tool", phase: "start", toolCallId: "c1", name: "read", title: "Read again" }),
			tool(5, "c1", "read"),
		]);
		expect(statuses).toEqual(["10 Agent started", "20 Using read tool...", "20 Read REPORT.md"]);
		expect(state.toolCount).toBe(1);
	});

	it("a titled item first, then its tool event, shows the title only", () => {
		const { statuses } = feed([
			agent(1, "item", { kind: "tool", phase: "start", itemId: "c1", title: "Search the web" }),
			agent(2, "item", { kind: "tool", phase: "start", itemId: "c1" }),
			tool(3, "c1", "search"),
		]);
		expect(statuses).toEqual(["20 Search the web"]);
	});

	it("calls without an id count each time", () => {
		expect(feed([tool(1, undefined, "read"), tool(2, undefined, "read")]).state.toolCount).toBe(2);
	});

	it("only tool items that start count, and only tool events that start", () => {
		const { updates } = feed([
			agent(1, "item", { kind: "tool", phase: "end", toolCallId: "c1", name: "read" }),
			agent(2, "item", { kind: "message", phase: "start", itemId: "m1" }),
			agent(3, "item", { phase: "start", toolCallId: "c2" }),
			agent(4, "tool", { phase: "update", toolCallId: "c3", name: "read" }),
			agent(5, "tool", { phase: "result", toolCallId: "c3", name: "read", isError: false }),
			agent(6, "tool", { toolCallId: "c4", name: "read" }),
			agent(7, "tool", { phase: "update", toolCallId: "c3", name: "read", isError: true }),
		]);
		expect(updates).toEqual([]);
	});

	it("a tool result that is an error is a sub-status at the current progress", () => {
		const { statuses } = feed([
			tool(1, "c1", "read"),
			agent(2, "tool", { phase: "result", toolCallId: "c1", name: "read", isError: true }),
			agent(3, "tool", { phase: "result", toolCallId: "c2", isError: true }),
			agent(4, "tool", { phase: "result", toolCallId: "c2", isError: "yes" }),
		]);
		expect(statuses).toEqual([
			"20 Using read tool...",
			"20 The read tool reported an error...",
			"20 A tool reported an error...",
		]);
	});

	it("a tool's name is shown cleaned and at most 40 characters; without one it is 'a tool'", () => {
		const { statuses } = feed([
			tool(1, "c1", "web search!"),
			tool(2, "c2", "n".repeat(45)),
			tool(3, "c3", "!!!"),
			tool(4, "c4", "fs.read_file-v2"),
			agent(5, "tool", { phase: "start", toolCallId: "c5", name: 7 }),
		]);
		expect(statuses).toEqual([
			"20 Using websearch tool...",
			`30 Using ${"n".repeat(40)} tool...`,
			"40 Using a tool...",
			"50 Using fs.read_file-v2 tool...",
			"60 Using a tool...",
		]);
	});

	it("remembers the last 64 calls of a run, forgetting the oldest", () => {
		const calls = Array.from({ length: 70 }, (_, i) => tool(i + 1, `c${i}`));
		const { state } = feed(calls);
		expect(Object.keys(state.toolCalls)).toEqual(Array.from({ length: 64 }, (_, i) => `c${i + 6}`));
		// A remembered call is not counted again; a forgotten one is.
		const again = feed([tool(71, "c69"), tool(72, "c0")], state);
		expect(again.state.toolCount).toBe(71);
	});

	it("keeps exactly 64 when it reaches the limit", () => {
		const calls = Array.from({ length: 64 }, (_, i) => tool(i + 1, `c${i}`));
		const { state } = feed(calls);
		expect(Object.keys(state.toolCalls)).toHaveLength(64);
		expect(state.toolCalls.c0).toBe(false);
		expect(Object.keys(feed([tool(65, "c64")], state).state.toolCalls)).toEqual(
			Array.from({ length: 64 }, (_, i) => `c${i + 1}`),
		);
	});
});

describe("the answer", () => {
	it("streams as chunks with their offsets, 'Generating response...' from 90 %", () => {
		const { updates } = feed([text(1, "m", "Hel"), text(2, "m", "Hello"), text(3, "m", "Hello!")]);
		expect(updates).toEqual([
			{ kind: "status", status: "Generating response...", progress: 90 },
			{ kind: "chunk", text: "Hel", offset: 0 },
			{ kind: "chunk", text: "lo", offset: 3 },
			{ kind: "chunk", text: "!", offset: 5 },
		]);
	});

	it("moves progress one point per 200 characters, up to 95 %", () => {
		const a = "a".repeat(199);
		const { statuses } = feed([
			text(1, "m", a),
			text(2, "m", `${a}b`),
			text(3, "m", `${a}b${"c".repeat(399)}`),
			text(4, "m", `${a}b${"c".repeat(400)}`),
			text(5, "m", "d".repeat(5_000)),
		]);
		expect(statuses).toEqual([90, 91, 92, 93].map((p) => `${p} Generating response...`));
		const long = feed([text(1, "m", "d".repeat(5_000))]);
		expect(long.statuses).toEqual(["95 Generating response..."]);
	});

	it("a delta without cumulative text appends to the current item", () => {
		const { answer } = feed([
			agent(1, "assistant", { itemId: "m", delta: "Hel" }),
			agent(2, "assistant", { itemId: "m", delta: "lo" }),
			agent(3, "assistant", { delta: "!" }),
		]);
		expect(answer).toBe("Hello!");
	});

	it("a delta naming an item continues the text that came before any item id, like cumulative text does", () => {
		const { answer, state, notes } = feed([
			text(1, undefined, "Hi"),
			agent(2, "assistant", { itemId: "a", delta: "!" }),
		]);
		expect(answer).toBe("Hi!");
		expect(state.itemId).toBe("a");
		expect(notes).toEqual([]);
	});

	it("a delta of a new item starts that item", () => {
		const { answer, state } = feed([
			text(1, "a", "First."),
			agent(2, "assistant", { itemId: "b", delta: "Then" }),
		]);
		expect(answer).toBe("First.\n\nThen");
		expect(state.itemId).toBe("b");
	});

	it("an assistant event without text or delta shows nothing", () => {
		expect(feed([agent(1, "assistant", { itemId: "m" }), agent(2, "assistant")]).updates).toEqual([]);
	});

	it("an event without an item id continues the current item", () => {
		const { answer, state } = feed([text(1, "a", "One"), text(2, undefined, "One two")]);
		expect(answer).toBe("One two");
		expect(state.itemId).toBe("a");
	});

	it("the first item id seen becomes the current item", () => {
		expect(feed([text(1, undefined, "Hi")]).state.itemId).toBeNull();
		expect(feed([text(1, undefined, "Hi"), text(2, "a", "Hi there")])).toMatchObject({
			answer: "Hi there",
			state: { itemId: "a" },
		});
	});

	it("separates items with a blank line, never before the first text", () => {
		expect(feed([text(1, "a", "Let me look."), text(2, "b", "Done.")]).answer).toBe("Let me look.\n\nDone.");
		expect(feed([text(1, "a", ""), text(2, "b", "Done.")]).updates).toEqual([
			{ kind: "status", status: "Generating response...", progress: 90 },
			{ kind: "chunk", text: "Done.", offset: 0 },
		]);
	});

	it("an empty text of a new item does not switch items", () => {
		const { answer, state } = feed([text(1, "a", "One"), text(2, "b", ""), text(3, "a", "One two")]);
		expect(answer).toBe("One two");
		expect(state.itemId).toBe("a");
	});

	it("an older, shorter text changes nothing and is not noted", () => {
		const { answer, notes } = feed([text(1, "a", "Hello world"), text(2, "a", "Hello")]);
		expect(answer).toBe("Hello world");
		expect(notes).toEqual([]);
	});

	it("a text that diverged is noted with its source, never sent", () => {
		const { answer, notes } = feed([
			text(1, "a", "Hello"),
			text(2, "a", "Goodbye"),
			chat(1, "delta", message("Bye")),
			chat(2, "final", message("Farewell")),
			agent(3, "lifecycle", { phase: "end", terminalReply: { text: "Ciao" } }),
		]);
		expect(answer).toBe("Hello");
		expect(notes).toEqual([
			{ kind: "diverged", source: "agent" },
			{ kind: "diverged", source: "chat.delta" },
			{ kind: "diverged", source: "chat.final" },
			{ kind: "diverged", source: "lifecycle.end" },
		]);
	});

	it("after the end, late answer text is still sent, without a progress change", () => {
		const { updates } = feed([
			agent(1, "lifecycle", { phase: "end" }),
			chat(1, "final", message("Forty-two")),
		]);
		expect(updates).toEqual([{ kind: "end" }, { kind: "chunk", text: "Forty-two", offset: 0 }]);
	});
});

describe("the agent stream's seq", () => {
	it("drops a repeated or older event, noting it, and changes nothing", () => {
		const first = feed([start(1), tool(2, "c1")]);
		for (const seq of [1, 2]) {
			const again = feed([tool(seq, "c9")], first.state);
			expect(again.updates).toEqual([]);
			expect(again.notes).toEqual([{ kind: "duplicate", stream: "agent", seq }]);
			expect(again.state).toEqual(first.state);
		}
	});

	it("notes a gap, and still maps the event", () => {
		const { notes, state, statuses } = feed([start(1), tool(4, "c1")]);
		expect(notes).toEqual([{ kind: "gap", stream: "agent", expected: 2, got: 4 }]);
		expect(state.agentSeq).toBe(4);
		expect(statuses).toHaveLength(2);
	});

	it("an event without seq is mapped, and the seq is left as it was", () => {
		const { notes, state, statuses } = feed([start(1), tool(undefined, "c1"), tool(undefined, "c2")]);
		expect(notes).toEqual([]);
		expect(state.agentSeq).toBe(1);
		expect(statuses).toHaveLength(3);
	});
});

describe("chat events", () => {
	it("a delta's message is the whole text so far; only what is new is sent", () => {
		const { answer, updates } = feed([
			chat(1, "delta", { ...message("The we"), deltaText: "The we" }),
			chat(3, "delta", { ...message("The weekly"), deltaText: "ekly" }),
		]);
		expect(answer).toBe("The weekly");
		expect(updates.filter((u) => u.kind === "chunk")).toHaveLength(2);
	});

	it("a delta without message appends its deltaText; with replace: true it is the whole text", () => {
		const { answer } = feed([
			chat(1, "delta", { deltaText: "Hello" }),
			chat(2, "delta", { deltaText: "Hello, world", replace: true }),
			chat(3, "delta", { deltaText: "!" }),
			chat(4, "delta", { deltaText: "?", replace: false }),
		]);
		expect(answer).toBe("Hello, world!?");
	});

	it("a delta or final with no text at all shows nothing", () => {
		const { updates, notes } = feed([
			text(1, "a", "Hi"),
			chat(1, "delta"),
			chat(2, "final"),
			chat(3, "final", { message: { role: "assistant", content: [] } }),
		]);
		expect(updates.filter((u) => u.kind === "chunk")).toEqual([{ kind: "chunk", text: "Hi", offset: 0 }]);
		expect(notes).toEqual([]);
	});

	it("final completes the answer", () => {
		expect(feed([text(1, "a", "Forty"), chat(1, "final", message("Forty-two"))]).answer).toBe("Forty-two");
	});

	it("error and aborted are sub-statuses at the current progress", () => {
		const { updates } = feed([start(1), chat(1, "error"), chat(2, "aborted"), chat(3, "other")]);
		expect(updates).toEqual([
			{ kind: "status", status: "Agent started", progress: 10 },
			{ kind: "status", status: "The agent reported an error...", progress: 10 },
			{ kind: "status", status: "The agent run was stopped", progress: 10 },
		]);
	});

	it("a repeated or older seq is a duplicate: noted, nothing else", () => {
		const first = feed([chat(5, "delta", message("Hi"))]);
		for (const seq of [5, 4]) {
			const again = feed([chat(seq, "final", message("Hi there"))], first.state);
			expect(again.updates).toEqual([]);
			expect(again.notes).toEqual([{ kind: "duplicate", stream: "chat", seq }]);
			expect(again.state).toEqual(first.state);
		}
	});

	it("skipped chat seqs are normal (deltas are throttled): no note", () => {
		const { notes, state } = feed([chat(1, "delta", message("a")), chat(9, "delta", message("ab"))]);
		expect(notes).toEqual([]);
		expect(state.chatSeq).toBe(9);
	});

	it("an event without seq is mapped, and the seq is left as it was", () => {
		const { answer, state } = feed([chat(2, "delta", message("a")), chat(undefined, "delta", message("ab"))]);
		expect(answer).toBe("ab");
		expect(state.chatSeq).toBe(2);
	});
});

describe("what must be persisted at once", () => {
	const base = () => feed([start(1), text(2, "a", "Hi")]).state;

	it("every boundary: started, ended, a new item, an item closing, a tool call", () => {
		for (const change of [
			{ started: false },
			{ ended: true },
			{ itemId: "b" },
			{ itemSettled: true },
			{ toolCount: 1 },
		]) {
			expect(mustPersist(base(), { ...base(), ...change })).toBe(true);
		}
	});

	it("not the text within an item, progress or seqs", () => {
		expect(mustPersist(base(), base())).toBe(false);
		expect(
			mustPersist(base(), {
				...base(),
				itemText: "Hi there",
				answerChars: 8,
				progress: 91,
				agentSeq: 9,
				chatSeq: 3,
			}),
		).toBe(false);
	});

	it("an item's text closes when another stream speaks, not while answer text flows", () => {
		expect(feed([text(3, "a", "Hi there")], base()).state.itemSettled).toBe(false);
		expect(feed([text(3, "a", "Hi")], base()).state.itemSettled).toBe(false);
		expect(feed([text(3, "a", "H")], base()).state.itemSettled).toBe(false);
		for (const next of [agent(3, "usage", { outputTokens: 3 }), tool(3, "c1"), agent(3, "lifecycle", {})]) {
			expect(feed([next], base()).state.itemSettled).toBe(true);
		}
		expect(feed([agent(2, "usage")]).state.itemSettled).toBe(false);
		expect(feed([agent(3, "usage"), text(4, "a", "Hi!")], base()).state.itemSettled).toBe(false);
	});
});

describe("a state restored after a restart", () => {
	it("is a complete state, whatever was persisted", () => {
		expect(restoredRunState({})).toEqual(newRunState());
		expect(restoredRunState({ progress: 40, toolCount: 3 })).toEqual({
			...newRunState(),
			progress: 40,
			toolCount: 3,
		});
	});

	it("is resumed only when its item was still streaming", () => {
		expect(restoredRunState({ itemId: "a", itemSettled: false }).resumed).toBe(true);
		expect(restoredRunState({ itemId: "a", itemSettled: true }).resumed).toBe(false);
		expect(restoredRunState({ itemId: null, itemSettled: false, resumed: true }).resumed).toBe(false);
	});

	it("while resumed, skips deltas without cumulative text until a cumulative text places it", () => {
		const restored = restoredRunState({ itemId: "a", itemText: "Let me", answerChars: 6 });
		const { updates } = feed(
			[
				agent(1, "assistant", { itemId: "a", delta: " check" }),
				chat(1, "delta", { deltaText: " check" }),
				text(2, "a", "Let me check. Done"),
				agent(3, "assistant", { itemId: "a", delta: "!" }),
			],
			restored,
		);
		expect(updates.filter((u) => u.kind === "chunk")).toEqual([
			{ kind: "chunk", text: " check. Done", offset: 6 },
			{ kind: "chunk", text: "!", offset: 18 },
		]);
	});

	it("while resumed, a chat delta with replace: true or a message still places its text", () => {
		const restored = restoredRunState({ itemId: "a", itemText: "Let", answerChars: 3 });
		expect(feed([chat(1, "delta", { deltaText: "Let me", replace: true })], restored).answer).toBe(" me");
	});

	it("notes a gap when the resumed item ended unseen and a new one begins", () => {
		const restored = restoredRunState({ itemId: "a", itemText: "Let me", answerChars: 6 });
		const { updates, notes } = feed([text(1, "b", "Sent.")], restored);
		expect(updates.filter((u) => u.kind === "chunk")).toEqual([
			{ kind: "chunk", text: "\n\nSent.", offset: 6, gap: true },
		]);
		expect(notes).toEqual([{ kind: "resumed_gap", offset: 6 }]);
	});

	it("a settled item after a restart is followed without a gap", () => {
		const restored = restoredRunState({ itemId: "a", itemText: "Let me", answerChars: 6, itemSettled: true });
		const { updates, notes } = feed([text(1, "b", "Sent.")], restored);
		expect(updates.filter((u) => u.kind === "chunk")).toEqual([
			{ kind: "chunk", text: "\n\nSent.", offset: 6 },
		]);
		expect(notes).toEqual([]);
	});
});
