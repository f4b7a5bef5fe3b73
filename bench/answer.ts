import { agentPayload, chatPayload, message, type RunNames, splitAnswer } from "../sim/openclaw.ts";

/** The streaming scenario's answer: `words` numbered words ("w00000 w00001 …"). */
export function streamedAnswer(words: number): string {
	return Array.from({ length: words }, (_, i) => `w${String(i).padStart(5, "0")} `).join("");
}

/**
 * The gateway's two events for each piece of `answer` (split as the simulator splits it), as the
 * simulator sends them (its own payload builders, in the envelope its connection puts them in): the
 * agent's `assistant` event, then the chat delta, both repeating the answer so far. `events(n, seq)`
 * gives piece n's (1-based), with connection-level seqs `seq` and `seq + 1`.
 */
export function answerEvents(run: RunNames, itemId: string, answer: string) {
	const pieces = splitAnswer(answer);
	const soFar = pieces.map((_, i) => pieces.slice(0, i + 1).join(""));
	const frame = (event: string, payload: unknown, seq: number) =>
		JSON.stringify({ type: "event", event, payload, seq });
	return {
		pieces: pieces.length,
		events(n: number, seq: number): [string, string] {
			const text = soFar[n - 1] ?? "";
			const delta = pieces[n - 1] ?? "";
			return [
				frame("agent", agentPayload(run, "assistant", { text, delta, itemId }, n), seq),
				frame("chat", chatPayload(run, n, "delta", { deltaText: delta, message: message(text) }), seq + 1),
			];
		},
	};
}
