import { type ConnectionStatus, ProgressClient, type SessionView } from "../../client/index.ts";
import { MandateCard } from "./card.ts";
import {
	adoptDemoSession,
	type DemoSession,
	demoSession,
	startMandate,
	storedDemoSession,
} from "./demo-api.ts";
import { byId } from "./dom.ts";
import { setUpNotifications } from "./notify.ts";
import { rememberedSession } from "./remembered.ts";

/**
 * The pipeline card page (issue 5): what the MyndLens app shows, driven by the client SDK.
 * Locally (demo routes on) it gets its own session and a form to start mandates in a simulator
 * scenario; anywhere else it watches the session named in `#session=…&token=…`.
 *
 * The address always names the watched session (`#session=…`, the token only if it came that way),
 * so the service worker (public/sw.js) can tell which open page a tapped notification belongs to;
 * `#session=…&mandate=…` without a token — what a tap opens — works for this tab's demo session and
 * for sessions this browser remembers because notifications are on (remembered.ts).
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
	unauthorized: "Link expired",
	closed: "Offline",
};

const EXPIRED =
	"This link has expired or is no longer valid, so this request's progress can't be shown. Open it again from the MyndLens app to get a new link.";

const cards = new Map<string, MandateCard>();
/** Intents this page typed: live frames do not carry the intent until a snapshot does. */
const intents = new Map<string, string>();

/** A card to bring into view once it is drawn: the mandate of a tapped notification. */
let openMandate: string | null = null;

async function findSession(): Promise<Watch | null> {
	const hash = new URLSearchParams(location.hash.slice(1));
	const sessionId = hash.get("session");
	const token = hash.get("token");
	if (sessionId && token) {
		// Kept for this tab only (a reload finds it); the address bar and history lose it (nameInAddress).
		keepLinkToken(sessionId, token);
		return { sessionId, token, demo: null };
	}
	if (sessionId) {
		const known = knownSession(sessionId);
		if (known) return known;
		// Opened from a notification whose session this browser can no longer watch.
		if (hash.get("mandate")) notice("That request can't be shown here any more: its sign-in has ended.");
	}
	const demo = await demoSession();
	return demo ? { sessionId: demo.session_id, token: demo.token, demo } : null;
}

/**
 * A session named without a token: this tab's demo session, one this tab opened from a link (its
 * token moved out of the address), or one kept for notification taps.
 */
function knownSession(sessionId: string): Watch | null {
	const demo = storedDemoSession(sessionId);
	if (demo) return { sessionId, token: demo.token, demo };
	const linked = linkToken(sessionId);
	if (linked) return { sessionId, token: linked, demo: null };
	const remembered = rememberedSession(sessionId);
	if (!remembered) return null;
	// A tab opened from a notification takes the demo session over, so a reload keeps it.
	if (remembered.demo) adoptDemoSession(remembered.demo);
	return { sessionId, token: remembered.token, demo: remembered.demo };
}

/**
 * The address names the watched session and nothing else: a token that came in it leaves the address
 * bar at once, and `replaceState` takes it out of the history too (issue 15), so it is not in a
 * bookmark, a shared link or a screenshot. `mandate=` is used once.
 */
function nameInAddress(watch: Watch): void {
	const hash = new URLSearchParams(location.hash.slice(1));
	openMandate = hash.get("mandate");
	const named = new URLSearchParams({ session: watch.sessionId });
	if (location.hash.slice(1) !== named.toString()) history.replaceState(null, "", `#${named}`);
}

const LINK_TOKEN_KEY = "myndlens.link-token.";

/** This tab keeps the token of a session it was opened for (sessionStorage: this tab, until it closes). */
function keepLinkToken(sessionId: string, token: string): void {
	try {
		sessionStorage.setItem(LINK_TOKEN_KEY + sessionId, token);
	} catch {
		// storage blocked: a reload then needs the link again
	}
}

function linkToken(sessionId: string): string | null {
	try {
		return sessionStorage.getItem(LINK_TOKEN_KEY + sessionId);
	} catch {
		return null;
	}
}

/** Brings a mandate's card into view and marks it, now or as soon as it is drawn. */
function showCard(mandateId: string): void {
	const card = cards.get(mandateId);
	if (!card) {
		openMandate = mandateId;
		return;
	}
	openMandate = null;
	for (const other of cards.values()) delete other.element.dataset.opened;
	card.element.dataset.opened = "true";
	card.element.scrollIntoView({ block: "center", behavior: "smooth" });
}

/** A notification of this session was tapped while this page is open (public/sw.js). */
function listenForTaps(watch: Watch): void {
	navigator.serviceWorker?.addEventListener("message", (event: MessageEvent) => {
		const message: unknown = event.data;
		if (typeof message !== "object" || message === null) return;
		const { type, session_id, mandate_id } = message as Record<string, unknown>;
		if (type !== "myndlens.open-card" || session_id !== watch.sessionId) return;
		if (typeof mandate_id === "string" && mandate_id) showCard(mandate_id);
	});
}

/** Set while the page says the link expired, so the words go once the session is live again. */
let expiredShown = false;

function render(session: SessionView, status: ConnectionStatus): void {
	const connection = byId("connection");
	connection.dataset.status = status;
	connection.textContent = CONNECTION_LABELS[status];
	if (status === "unauthorized") {
		// The token was refused twice: retrying cannot help, and "no requests yet" would be wrong.
		expiredShown = true;
		byId("empty").hidden = true;
		byId("notify").hidden = true;
		notice(EXPIRED);
	} else if (expiredShown && status === "live") {
		expiredShown = false;
		notice(null);
	}
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
	if (openMandate && cards.has(openMandate)) showCard(openMandate);
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
	nameInAddress(watch);
	const client = new ProgressClient({
		baseUrl: location.origin,
		sessionId: watch.sessionId,
		token: watch.token,
	});
	if (watch.demo) showForm(watch.demo, () => render(client.session, client.status));
	else byId("empty").textContent = "No requests in this session yet.";
	// "Notify me" is offered once the session's token is accepted: never for an expired link.
	let notifyOffered = false;
	client.subscribe((session, status) => {
		render(session, status);
		if (status !== "live" || notifyOffered) return;
		notifyOffered = true;
		// Never in the way of the cards: without Web Push (browser or Worker) the control stays hidden.
		setUpNotifications(watch).catch(() => {});
	});
	// A phone back from a dead zone should not wait out the backoff.
	window.addEventListener("online", () => client.reconnect());
	window.__myndlens = { client, sessionId: watch.sessionId };
	listenForTaps(watch);
}

main().catch((error: unknown) => notice(`The page could not start: ${String(error)}`));
