/**
 * Types text out into an element, the way the app shows the agent's answer arriving. Streamed chunks
 * only ever extend the target, so typing continues where it was; any other change restarts.
 *
 * It never falls behind (issue 15): each tick reveals a share of what is still hidden, so the speed
 * grows with the backlog — a few characters a tick for a trickle, the whole of a long answer within
 * about half a second. Text that is already final (a finished mandate, or what a card shows when it
 * is first drawn, e.g. after a reload) is shown at once, never re-typed.
 */
const MIN_CHARS_PER_TICK = 2;
/** The share of the hidden rest revealed per tick: the backlog shrinks geometrically. */
const BACKLOG_SHARE_PER_TICK = 0.2;
const TICK_MS = 16;

export class Typewriter {
	readonly #element: HTMLElement;
	#target = "";
	#shown = 0;
	#timer: ReturnType<typeof setInterval> | null = null;

	constructor(element: HTMLElement) {
		this.#element = element;
	}

	/** Types `text` out; with `instant`, shows all of it now. */
	type(text: string, instant = false): void {
		if (text === this.#target && !(instant && this.#shown < text.length)) return;
		if (!text.startsWith(this.#target.slice(0, this.#shown))) this.#shown = 0;
		this.#target = text;
		if (instant) {
			this.#shown = text.length;
			this.#element.textContent = text;
			this.#stop();
			return;
		}
		if (this.#timer === null) this.#timer = setInterval(() => this.#tick(), TICK_MS);
		this.#element.dataset.typing = "true";
	}

	#tick(): void {
		const hidden = this.#target.length - this.#shown;
		const step = Math.max(MIN_CHARS_PER_TICK, Math.ceil(hidden * BACKLOG_SHARE_PER_TICK));
		this.#shown = Math.min(this.#target.length, this.#shown + step);
		this.#element.textContent = this.#target.slice(0, this.#shown);
		if (this.#shown >= this.#target.length) this.#stop();
	}

	#stop(): void {
		if (this.#timer !== null) clearInterval(this.#timer);
		this.#timer = null;
		this.#element.dataset.typing = "false";
	}
}
