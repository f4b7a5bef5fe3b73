import { type ConnectionStatus, ProgressClient, type SessionView } from "../../client/index.ts";
import { MandateCard } from "./card.ts";
import { type DemoSession, demoSession, startMandate } from "./demo-api.ts";

/**
 * The pipeline card page (issue 5): what the MyndLens app shows, driven by the client SDK.
 * Locally (demo routes on) it gets its own session and a form to start mandates in a simulator
 * scenario; anywhere else it watches the session named in `#session=…&token=…`.
 */

interface Watch {
	sessionId: string;
	token: string;
	demo: DemoSession | null;
}

/** Test and debugging hook: the browser test forces reconnects through it. */
declare global {
	interface Window {
		__myndlens?: { client: ProgressClient; sessionId: string };
	}
}

const CONNECTION_LABELS: Record<ConnectionStatus, string> = {
	connecting: "Connecting…",
	live: "Live",
	reconnecting: "Reconnecting…",
	closed: "Offline",
};

const cards = new Map<string, MandateCard>();
/** Intents this page typed: live frames do not carry the intent until a snapshot does. */
const intents = new Map<string, string>();

function byId<T extends HTMLElement>(id: string): T {
	const element = document.getElementById(id);
	if (!element) throw new Error(`#${id} is missing from index.html`);
	return element as T;
}

async function findSession(): Promise<Watch | null> {
	const hash = new URLSearchParams(location.hash.slice(1));
	const sessionId = hash.get("session");
	const token = hash.get("token");
	if (sessionId && token) return { sessionId, token, demo: null };
	const demo = await demoSession();
	return demo ? { sessionId: demo.session_id, token: demo.token, demo } : null;
}

function render(session: SessionView, status: ConnectionStatus): void {
	const connection = byId("connection");
	connection.dataset.status = status;
	connection.textContent = CONNECTION_LABELS[status];
	const container = byId("cards");
	for (const mandate of session.mandates) {
		let card = cards.get(mandate.mandate_id);
		if (!card) {
			card = new MandateCard(mandate.mandate_id);
			cards.set(mandate.mandate_id, card);
			container.prepend(card.element); // newest first, as on the phone
		}
		card.update(mandate, intents.get(mandate.mandate_id) ?? null);
	}
}

function notice(text: string | null): void {
	const element = byId("notice");
	element.hidden = text === null;
	element.textContent = text ?? "";
}

function showForm(demo: DemoSession, rerender: () => void): void {
	const form = byId<HTMLFormElement>("start");
	const select = form.elements.namedItem("scenario") as HTMLSelectElement;
	for (const scenario of demo.scenarios) select.add(new Option(scenario.label, scenario.id));
	form.hidden = false;
	form.addEventListener("submit", async (event) => {
		event.preventDefault();
		const data = new FormData(form);
		const intent = String(data.get("intent") ?? "").trim();
		if (!intent) return;
		const button = form.querySelector("button");
		if (button) button.disabled = true;
		try {
			const started = await startMandate(demo, intent, String(data.get("scenario")));
			const mandateId = started.mandateId;
			if (mandateId) intents.set(mandateId, intent);
			// The card may already be drawn from the socket (and a failed one gets no more frames).
			rerender();
			// A dispatch failure is shown on its card (stage 6 failed); only other failures need a notice.
			notice(started.ok || mandateId ? null : started.message);
		} catch {
			notice("Could not reach the service. Is `npm start` still running?");
		} finally {
			if (button) button.disabled = false;
		}
	});
}

async function main(): Promise<void> {
	const watch = await findSession();
	if (!watch) {
		byId("empty").hidden = true;
		notice(
			"Demo routes are off on this server. Open this page with #session=<id>&token=<mobile token> to watch a session.",
		);
		return;
	}
	const client = new ProgressClient({
		baseUrl: location.origin,
		sessionId: watch.sessionId,
		token: watch.token,
	});
	if (watch.demo) showForm(watch.demo, () => render(client.session, client.status));
	else byId("empty").textContent = "No requests in this session yet.";
	client.subscribe(render);
	// A phone back from a dead zone should not wait out the backoff.
	window.addEventListener("online", () => client.reconnect());
	window.__myndlens = { client, sessionId: watch.sessionId };
}

main().catch((error: unknown) => notice(`The page could not start: ${String(error)}`));
