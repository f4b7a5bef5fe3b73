import { currentStage, type MandateView } from "../../client/index.ts";
import { Typewriter } from "./typing.ts";

/**
 * One mandate's pipeline card: its 10 stages, sub-status, progress bar, the answer typing out and
 * a friendly error. Built once and updated in place, so a stage's row keeps its identity (and its
 * CSS transition) as the status moves. Text goes in with textContent only, never as HTML.
 */
export class MandateCard {
	readonly element: HTMLElement;
	readonly #intent: HTMLElement;
	readonly #phase: HTMLElement;
	readonly #fill: HTMLElement;
	readonly #bar: HTMLElement;
	readonly #subStatus: HTMLElement;
	readonly #stages: HTMLElement[];
	readonly #answer: HTMLElement;
	readonly #typewriter: Typewriter;
	readonly #delivered: HTMLElement;
	readonly #error: HTMLElement;
	readonly #errorText: HTMLElement;
	/** Whether the card was drawn before: what it shows when first drawn is not typed out again. */
	#drawn = false;

	constructor(mandateId: string) {
		this.element = el("article", "card");
		this.element.dataset.mandateId = mandateId;
		const head = el("div", "card-head");
		this.#intent = el("h2", "intent-text");
		this.#phase = el("span", "phase");
		head.append(this.#intent, this.#phase);
		this.#bar = el("div", "bar");
		this.#bar.setAttribute("role", "progressbar");
		this.#bar.setAttribute("aria-valuemin", "0");
		this.#bar.setAttribute("aria-valuemax", "100");
		this.#fill = el("div", "bar-fill");
		this.#bar.append(this.#fill);
		this.#subStatus = el("p", "sub-status");
		this.#subStatus.setAttribute("aria-live", "polite");
		const list = el("ol", "stages");
		this.#stages = [];
		for (let stage = 1; stage <= 10; stage++) {
			const row = el("li", "stage");
			row.dataset.stage = String(stage);
			row.append(el("span", "stage-icon"), el("span", "stage-name"), el("time", "stage-time"));
			list.append(row);
			this.#stages.push(row);
		}
		this.#answer = el("p", "answer");
		this.#answer.hidden = true;
		this.#typewriter = new Typewriter(this.#answer);
		this.#delivered = el("p", "delivered");
		this.#delivered.hidden = true;
		this.#error = el("div", "error");
		this.#error.setAttribute("role", "alert");
		this.#error.hidden = true;
		const title = el("strong");
		title.textContent = "We couldn't finish this request";
		this.#errorText = el("span", "error-text");
		this.#error.append(title, this.#errorText);
		this.element.append(head, this.#bar, this.#subStatus, list, this.#answer, this.#delivered, this.#error);
	}

	update(mandate: MandateView, intent: string | null): void {
		this.element.dataset.phase = mandate.phase;
		this.#intent.textContent = mandate.intent ?? intent ?? `Request ${mandate.mandate_id}`;
		const stage = currentStage(mandate);
		this.#phase.textContent =
			mandate.phase === "completed"
				? "Delivered"
				: mandate.phase === "failed"
					? "Failed"
					: `Stage ${stage} of 10`;

		// Before stage 9 reports its own progress, the bar follows the stages.
		const percent = mandate.phase === "completed" ? 100 : Math.max(mandate.progress, stage * 5);
		this.#fill.style.width = `${percent}%`;
		this.#bar.setAttribute("aria-valuenow", String(percent));
		this.#bar.dataset.progress = String(percent);
		this.#subStatus.textContent = mandate.phase === "in_progress" ? (mandate.sub_status ?? "") : "";

		mandate.stages.forEach((view, index) => {
			const row = this.#stages[index];
			if (!row) return;
			// Written only on change, so each visible status change is one DOM mutation.
			if (row.dataset.status !== view.status) row.dataset.status = view.status;
			const name = row.querySelector(".stage-name");
			const time = row.querySelector("time");
			if (name) name.textContent = view.stage_name;
			if (time) {
				time.textContent = view.timestamp && view.status !== "pending" ? clock(view.timestamp) : "";
				time.dateTime = view.timestamp ?? "";
			}
		});

		// The streamed answer when the agent streams one; otherwise ObeGee's summary at the end.
		const answer = mandate.answer || mandate.result?.summary || "";
		this.#answer.hidden = answer === "";
		// A finished answer, or the answer so far on a card drawn just now (a reload), shows at once.
		if (answer) this.#typewriter.type(answer, mandate.phase !== "in_progress" || !this.#drawn);
		const channels = mandate.result?.delivered_to ?? [];
		this.#delivered.hidden = channels.length === 0;
		this.#delivered.textContent = channels.length ? `Delivered to ${channels.join(", ")}` : "";

		this.#error.hidden = mandate.error === null || mandate.phase !== "failed";
		this.#errorText.textContent = mandate.error ?? "";
		this.#drawn = true;
	}
}

function el(tag: string, className?: string): HTMLElement {
	const element = document.createElement(tag);
	if (className) element.className = className;
	return element;
}

function clock(iso: string): string {
	const date = new Date(iso);
	return Number.isNaN(date.getTime())
		? ""
		: date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
