import {
	agentPayload,
	ChatDeltaThrottle,
	chatPayload,
	message,
	type RunNames,
	splitAnswer,
} from "../sim/openclaw.ts";

/** The streaming scenario's answer: `words` numbered words ("w00000 w00001 …"). */
export function streamedAnswer(words: number): string {
	return Array.from({ length: words }, (_, i) => `w${String(i).padStart(5, "0")} `).join("");
}

/**
 * The gateway's events for each piece of `answer` (split as the simulator splits it), as the
 * simulator sends them (its own payload builders and chat throttle, in the envelope its connection
 * puts them in): the agent's `assistant` event, and with it the chat delta when the throttle lets
 * one through (`now` is its clock), both repeating the answer so far. Call `events` for pieces
 * 1, 2, … in order; `seq` is the first frame's connection-level seq, the next frame has `seq + 1`.
 */
export function answerEvents(run: RunNames, itemId: string, answer: string, now?: () => number) {
	const pieces = splitAnswer(answer);
	const soFar = pieces.map((_, i) => pieces.slice(0, i + 1).join(""));
	const chat = new ChatDeltaThrottle(now);
	const frame = (event: string, payload: unknown, seq: number) =>
		JSON.stringify({ type: "event", event, payload, seq });
	return {
		pieces: pieces.length,
		events(n: number, seq: number): string[] {
			const text = soFar[n - 1] ?? "";
			const delta = pieces[n - 1] ?? "";
			const frames = [frame("agent", agentPayload(run, "assistant", { text, delta, itemId }, n), seq)];
			const due = chat.next(text);
			if (due !== null)
				frames.push(
					frame(
						"chat",
						chatPayload(run, n, "delta", {
							deltaText: due.deltaText,
							message: message(due.text, due.at),
						}),
						seq + 1,
					),
				);
			return frames;
		},
	};
}
