import { PROGRESS, STATUS } from "../pipeline/progress.ts";
import type { AgentUpdate } from "./contract.ts";
import { type AgentEvent, type ChatEvent, messageText } from "./frames.ts";

/*
 * OpenClaw `agent`/`chat` events → AgentUpdates (issue 3; seed-spec.md "Future Enhancement").
 * Pure: the caller keeps one RunState per watched execution and stores the state it gets back.
 *
 * The answer has two sources that overlap: `agent` `assistant` events (every delta, with the item's
 * cumulative `text`) and `chat` events (throttled deltas — the last may come after lifecycle `end` —
 * then `final` with the whole message). Both are treated as "the current item's text so far"; only
 * the part beyond what was already forwarded is sent. So the answer goes out once, in order,
 * whichever source is first, a lost delta is healed by the next cumulative text, and lifecycle
 * `end` (whose `terminalReply.text` is the whole answer) and `chat` `final` complete it.
 *
 * Offsets survive a restart of the Gateway DO (issue 14, finding 11) without a write per chunk: the
 * state is persisted at every boundary (`mustPersist`: a new item, the end of an item's text, tool
 * calls, lifecycle), so a restored state always knows where the current item starts in the answer,
 * and the next cumulative `text` places every character exactly. Only a delta without its cumulative
 * text cannot be placed after a restart: it is skipped, and the next cumulative text heals it.
 */

/** The answer's share of the 90–95 % band: one point per this many characters. */
const ANSWER_CHARS_PER_POINT = 200;
/** Tool calls remembered per run (for de-duplicating item/tool events of one call). */
const MAX_REMEMBERED_TOOL_CALLS = 64;
const MAX_STATUS_LENGTH = 120;
/** Between two assistant items of one run (text before a tool round, then the answer). */
const ITEM_SEPARATOR = "\n\n";

export interface RunState {
	/** The highest progress sent; never goes down. */
	progress: number;
	started: boolean;
	ended: boolean;
	toolCount: number;
	/** toolCallId → whether its status line already used the item's title. */
	toolCalls: Record<string, boolean>;
	/** The last `agent` / `chat` payload `seq` seen (0: none yet). */
	agentSeq: number;
	chatSeq: number;
	/** The assistant item being streamed and how much of its text was already forwarded. */
	itemId: string | null;
	itemText: string;
	answerChars: number;
	/**
	 * The current item's text is known to be whole: a later non-answer event (tool call, lifecycle,
	 * usage) closed it. Persisted the moment it turns true.
	 */
	itemSettled: boolean;
	/**
	 * Restored from storage while its item was still streaming: `itemText` may lag what was sent, so
	 * deltas without cumulative text are skipped until a cumulative one arrives. Never persisted true.
	 */
	resumed: boolean;
}

/** Something worth a log line; never carries answer text or tokens. */
export type MappingNote =
	| { kind: "duplicate"; stream: "agent" | "chat"; seq: number }
	| { kind: "gap"; stream: "agent"; expected: number; got: number }
	| { kind: "diverged"; source: string }
	/** After a restart, an item ended unseen: how much of it was sent before is unknown. */
	| { kind: "resumed_gap"; offset: number };

export interface MapResult {
	state: RunState;
	updates: AgentUpdate[];
	notes: MappingNote[];
}

export function newRunState(): RunState {
	return {
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
	};
}

/**
 * The state as restored after a restart: only an item whose text was still streaming when it was
 * persisted may lag (see `resumed`).
 */
export function restoredRunState(persisted: Partial<RunState>): RunState {
	const state = { ...newRunState(), ...persisted };
	state.resumed = state.itemId !== null && !state.itemSettled;
	return state;
}

/** Whether this step crossed a boundary that must be persisted at once (see the header). */
export function mustPersist(before: RunState, after: RunState): boolean {
	return (
		before.ended !== after.ended ||
		before.started !== after.started ||
		before.itemId !== after.itemId ||
		before.itemSettled !== after.itemSettled ||
		before.toolCount !== after.toolCount
	);
}

/** DESIGN.md: runs match by `runId` = execution id, or a `sessionKey` ending in it. */
export function matchesExecution(run: { runId?: string; sessionKey?: string }, executionId: string): boolean {
	if (run.runId === executionId) return true;
	const key = run.sessionKey;
	if (!key) return false;
	if (key === executionId) return true;
	// Only at a boundary, so "exec_1" never matches a key for "xexec_1".
	return key.endsWith(executionId) && /[:\-_/]$/.test(key.slice(0, key.length - executionId.length));
}

/** Mutable working copy for one event; `finish()` hands back an immutable-looking result. */
class Step {
	readonly state: RunState;
	readonly updates: AgentUpdate[] = [];
	readonly notes: MappingNote[] = [];
	constructor(state: RunState) {
		this.state = { ...state, toolCalls: { ...state.toolCalls } };
	}
	status(status: string, candidate: number): void {
		this.state.progress = Math.max(this.state.progress, Math.min(candidate, PROGRESS.done));
		this.updates.push({ kind: "status", status, progress: this.state.progress });
	}
	finish(): MapResult {
		return { state: this.state, updates: this.updates, notes: this.notes };
	}
}

export function mapAgentEvent(state: RunState, event: AgentEvent): MapResult {
	const step = new Step(state);
	if (event.seq !== undefined) {
		const last = step.state.agentSeq;
		if (event.seq <= last) {
			step.notes.push({ kind: "duplicate", stream: "agent", seq: event.seq });
			return step.finish();
		}
		if (event.seq !== last + 1)
			step.notes.push({ kind: "gap", stream: "agent", expected: last + 1, got: event.seq });
		step.state.agentSeq = event.seq;
	}
	const data = event.data ?? {};
	// Any other stream after answer text closes the item: its text is now whole.
	if (event.stream !== "assistant" && step.state.itemId !== null) step.state.itemSettled = true;
	switch (event.stream) {
		case "lifecycle":
			onLifecycle(step, data);
			break;
		case "item":
			if (data.kind === "tool" && data.phase === "start") {
				onToolCall(step, str(data.toolCallId) ?? str(data.itemId), str(data.name), str(data.title));
			}
			break;
		case "tool":
			if (data.phase === "start") onToolCall(step, str(data.toolCallId), str(data.name), null);
			else if (data.phase === "result" && data.isError === true) {
				step.status(`${toolLabel(str(data.name))} reported an error...`, step.state.progress);
			}
			break;
		case "assistant": {
			const itemId = str(data.itemId);
			const cumulative = str(data.text);
			const delta = str(data.delta);
			if (cumulative !== null) onAnswerText(step, itemId, cumulative, "agent");
			else if (delta !== null && !step.state.resumed)
				onAnswerText(step, itemId, currentText(step.state, itemId) + delta, "agent");
			break;
		}
		// `usage`, `thinking`, … change nothing the phone shows.
	}
	return step.finish();
}

export function mapChatEvent(state: RunState, event: ChatEvent): MapResult {
	const step = new Step(state);
	if (event.seq !== undefined) {
		// Chat deltas are throttled, so their seq skips by design: only repeats are meaningful.
		if (event.seq <= step.state.chatSeq) {
			step.notes.push({ kind: "duplicate", stream: "chat", seq: event.seq });
			return step.finish();
		}
		step.state.chatSeq = event.seq;
	}
	switch (event.state) {
		case "delta": {
			const whole = messageText(event.message);
			// `replace: true`: deltaText is the whole replacement text, never a suffix to append.
			const fromDelta =
				event.deltaText === undefined
					? null
					: event.replace === true
						? event.deltaText
						: step.state.resumed
							? null
							: step.state.itemText + event.deltaText;
			const text = whole ?? fromDelta;
			if (text !== null) onAnswerText(step, step.state.itemId, text, "chat.delta");
			break;
		}
		case "final": {
			const whole = messageText(event.message);
			if (whole !== null) onAnswerText(step, step.state.itemId, whole, "chat.final");
			break;
		}
		case "error":
			step.status(STATUS.chatError, step.state.progress);
			break;
		case "aborted":
			step.status(STATUS.aborted, step.state.progress);
			break;
	}
	return step.finish();
}

function onLifecycle(step: Step, data: Record<string, unknown>): void {
	switch (data.phase) {
		case "start":
			// A retried run starts again after an error: say so, but never lower the progress.
			if (step.state.started && !step.state.ended) return;
			step.state.started = true;
			step.status(STATUS.started, PROGRESS.started);
			return;
		case "end": {
			if (step.state.ended) return;
			const reply = data.terminalReply;
			const text = isRecord(reply) ? str(reply.text) : null;
			if (text !== null) onAnswerText(step, step.state.itemId, text, "lifecycle.end");
			step.state.ended = true;
			step.state.progress = PROGRESS.done;
			step.updates.push({ kind: "end" });
			return;
		}
		case "error":
			// Not a failure: OpenClaw may retry the run; ObeGee decides the outcome (DESIGN.md).
			step.state.started = false;
			step.updates.push({ kind: "error", message: STATUS.lifecycleError });
			return;
	}
}

function onToolCall(step: Step, callId: string | null, name: string | null, title: string | null): void {
	const id = callId ?? `anonymous:${step.state.toolCount + 1}`;
	const titled = step.state.toolCalls[id];
	const line = title ? clip(title) : `Using ${toolName(name)} tool...`;
	if (titled === undefined) {
		step.state.toolCount += 1;
		rememberToolCall(step.state, id, Boolean(title));
		step.status(line, Math.min(PROGRESS.started + PROGRESS.perTool * step.state.toolCount, PROGRESS.toolCap));
	} else if (titled === false && title) {
		// The item's title ("Read from REPORT.md") reads better than "Using read tool...".
		step.state.toolCalls[id] = true;
		step.status(line, step.state.progress);
	}
}

function onAnswerText(step: Step, itemId: string | null, cumulative: string, source: string): void {
	const state = step.state;
	let separator = "";
	let gap = false;
	if (itemId !== null && state.itemId !== null && itemId !== state.itemId) {
		// A new assistant item: its text follows what was already forwarded.
		if (cumulative === "") return;
		// Restored mid-item and that item ended unseen: its tail (and so this offset) is unknown.
		gap = state.resumed;
		if (gap) step.notes.push({ kind: "resumed_gap", offset: state.answerChars });
		separator = state.answerChars > 0 ? ITEM_SEPARATOR : "";
		state.itemId = itemId;
		state.itemText = "";
	} else if (state.itemId === null && itemId !== null) {
		state.itemId = itemId;
	}
	// A cumulative text of the current item places everything exactly again.
	state.resumed = false;
	if (!hasPrefix(cumulative, state.itemText)) {
		// Behind (an older, shorter text) is normal; anything else cannot be unsent, only noted.
		if (!hasPrefix(state.itemText, cumulative)) step.notes.push({ kind: "diverged", source });
		return;
	}
	const suffix = cumulative.slice(state.itemText.length);
	if (suffix === "") return;
	state.itemText = cumulative;
	state.itemSettled = false;
	const text = separator + suffix;
	const offset = state.answerChars;
	state.answerChars += text.length;
	if (!state.ended) {
		const candidate = Math.min(
			PROGRESS.answerStart + Math.floor(state.answerChars / ANSWER_CHARS_PER_POINT),
			PROGRESS.answerCap,
		);
		if (candidate > state.progress) step.status(STATUS.generating, candidate);
	}
	step.updates.push(gap ? { kind: "chunk", text, offset, gap: true } : { kind: "chunk", text, offset });
}

/**
 * `text.startsWith(prefix)`, as one block compare. Every answer event repeats the answer so far, so
 * this runs on the whole text for every answer event: V8's `startsWith` walks it a character at a
 * time (about 6 µs for the streaming scenario's 2,100 characters, more than parsing the event), while
 * `===` on the cut compares memory (issue 17; `npm run bench:hot-path` measures both).
 */
function hasPrefix(text: string, prefix: string): boolean {
	return text.slice(0, prefix.length) === prefix;
}

/** The text so far of the item a delta belongs to; text that came before any item id is the first item's. */
function currentText(state: RunState, itemId: string | null): string {
	return itemId === null || state.itemId === null || itemId === state.itemId ? state.itemText : "";
}

function rememberToolCall(state: RunState, id: string, titled: boolean): void {
	const ids = Object.keys(state.toolCalls);
	if (ids.length >= MAX_REMEMBERED_TOOL_CALLS) delete state.toolCalls[ids[0] as string];
	state.toolCalls[id] = titled;
}

function toolName(name: string | null): string {
	const clean = (name ?? "").replace(/[^A-Za-z0-9_.-]/g, "").slice(0, 40);
	return clean === "" ? "a" : clean;
}

function toolLabel(name: string | null): string {
	const clean = toolName(name);
	return clean === "a" ? "A tool" : `The ${clean} tool`;
}

function clip(text: string): string {
	const line = text.replace(/\s+/g, " ").trim();
	return line.length > MAX_STATUS_LENGTH ? `${line.slice(0, MAX_STATUS_LENGTH - 3)}...` : line;
}

function str(value: unknown): string | null {
	return typeof value === "string" ? value : null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}
