/**
 * The Gateway DO's own work per answer event, with nothing around it (issue 17): the gateway's
 * events for one tenant's share of a streaming burst (5 runs of a 600-word answer, 467 pieces each,
 * interleaved on one connection; the agent's event per piece and the chat deltas the gateway's
 * throttle lets through, each repeating the answer so far, built by the simulator's own payload
 * builders and throttle: bench/answer.ts), run through each step of the path in turn.
 * Node runs the same V8 as workerd; the streaming scenario of `npm run bench` measures the whole path
 * in the runtime.
 *
 *   npm run bench:hot-path
 */
import { isGatewayEventFrame } from "@openclaw/gateway-protocol/frame-guards";
import { AgentEvent, ChatEvent } from "../src/openclaw/frames.ts";
import { mapAgentEvent, mapChatEvent, newRunState, type RunState } from "../src/openclaw/mapping.ts";
import { answerEvents, streamedAnswer } from "./answer.ts";

const RUNS = 5;
const WORDS = 600;
const ROUNDS = 10;

/**
 * Milliseconds between two pieces of one run, for the chat throttle's clock: a burst offered
 * 61,000–77,000 pieces a second over its 20 runs at `7d4b0b8` (`npm run bench`), 3,000–3,800 per
 * run; 0.5 ms (2,000 per run) is slower than that, so it lets through a few more chat deltas.
 */
const PIECE_MS = 0.5;

const frames: string[] = [];
let clock = 0;
const runs = Array.from({ length: RUNS }, (_, r) =>
	answerEvents(
		{ runId: `exec_${r}`, sessionKey: `agent:main:myndlens-exec_${r}` },
		`item-${r}:2`,
		streamedAnswer(WORDS),
		() => clock,
	),
);
let connectionSeq = 1;
for (let n = 1; n <= (runs[0]?.pieces ?? 0); n++) {
	clock = n * PIECE_MS;
	for (const run of runs) {
		const events = run.events(n, connectionSeq);
		frames.push(...events);
		connectionSeq += events.length;
	}
}

/** Microseconds per frame (per `count` items), the best of ROUNDS passes (after three to warm up). */
function perFrame(step: () => void, count = frames.length): number {
	for (let i = 0; i < 3; i++) step();
	let best = Number.POSITIVE_INFINITY;
	for (let i = 0; i < ROUNDS; i++) {
		const started = performance.now();
		step();
		best = Math.min(best, performance.now() - started);
	}
	return (best * 1000) / count;
}

const parsed = frames.map((frame) => JSON.parse(frame) as { event: string; payload: unknown });
const events = parsed.map(({ event, payload }) =>
	event === "agent"
		? ({ kind: "agent", event: AgentEvent.parse(payload) } as const)
		: ({ kind: "chat", event: ChatEvent.parse(payload) } as const),
);
const agentTexts = events.flatMap((e) => (e.kind === "agent" ? [String(e.event.data?.text)] : []));
let failures = 0;

const rows: [string, number][] = [
	[
		"JSON.parse",
		perFrame(() => {
			for (const frame of frames) JSON.parse(frame);
		}),
	],
	[
		"frame guard and schema",
		perFrame(() => {
			for (const frame of parsed) {
				if (!isGatewayEventFrame(frame)) failures++;
				else if (!(frame.event === "agent" ? AgentEvent : ChatEvent).safeParse(frame.payload).success)
					failures++;
			}
		}),
	],
	[
		"mapping",
		perFrame(() => {
			const states = new Map<string, RunState>();
			for (const { kind, event } of events) {
				const runId = event.runId ?? "";
				const state = states.get(runId) ?? newRunState();
				const result = kind === "agent" ? mapAgentEvent(state, event) : mapChatEvent(state, event);
				states.set(runId, result.state);
			}
		}),
	],
	[
		// What the mapping's prefix check cost before (issue 17): String.prototype.startsWith.
		"one startsWith per agent event",
		perFrame(() => {
			let before = "";
			for (const text of agentTexts) {
				if (!text.startsWith(before)) failures++;
				before = text;
			}
		}, agentTexts.length),
	],
];
if (failures > 0) throw new Error(`${failures} frames failed their check`);
const bytes = frames.reduce((total, frame) => total + frame.length, 0) / frames.length;
console.log(
	`${frames.length} frames, ${Math.round(bytes)} bytes each on average (one burst's tenant ×${RUNS} runs)`,
);
for (const [label, us] of rows) console.log(`${label.padEnd(34)} ${us.toFixed(2).padStart(6)} µs per frame`);
