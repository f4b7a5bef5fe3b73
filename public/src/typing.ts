/**
 * Types text out into an element, the way the app shows the agent's answer arriving. Streamed
 * chunks only ever extend the target, so typing continues where it was; any other change restarts.
 */
const CHARS_PER_TICK = 2;
const TICK_MS = 16;

export class Typewriter {
	readonly #element: HTMLElement;
	#target = "";
	#shown = 0;
	#timer: ReturnType<typeof setInterval> | null = null;

	constructor(element: HTMLElement) {
		this.#element = element;
	}

	type(text: string): void {
		if (text === this.#target) return;
		if (!text.startsWith(this.#element.textContent ?? "")) this.#shown = 0;
		this.#target = text;
		if (this.#timer === null) this.#timer = setInterval(() => this.#tick(), TICK_MS);
		this.#element.dataset.typing = "true";
	}

	#tick(): void {
		this.#shown = Math.min(this.#target.length, this.#shown + CHARS_PER_TICK);
		this.#element.textContent = this.#target.slice(0, this.#shown);
		if (this.#shown < this.#target.length) return;
		if (this.#timer !== null) clearInterval(this.#timer);
		this.#timer = null;
		this.#element.dataset.typing = "false";
	}
}
