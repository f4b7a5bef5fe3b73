/**
 * The pipeline card page's service worker (issue 10, item 7): shows the Worker's completion pushes
 * and opens the mandate's card when one is tapped. Plain JavaScript served as is (no build step);
 * its scope is the whole page ("/"), so it needs no Service-Worker-Allowed header.
 *
 * A push carries what src/push/webpush.ts encrypts: JSON `{title, body, data}` with `data` =
 * `{session_id, mandate_id, execution_id?, outcome}` (src/session/push.ts). The Worker's collapse key,
 * `<mandate_id>:<outcome>`, travels as the push's Topic header, which the push service consumes; the
 * same key is rebuilt here as the notification's tag (or taken from a `tag` field, if the payload
 * ever carries one), so a retried push replaces its notification instead of showing a second one.
 */

const FALLBACK_TITLE = "MyndLens";
const FALLBACK_BODY = "One of your requests has an update.";

// A new version takes over at once: nothing here depends on the version a page started with.
self.addEventListener("install", () => self.skipWaiting());

self.addEventListener("push", (event) => {
	const { title, options } = notificationOf(event.data);
	// Every push shows a notification (userVisibleOnly): browsers penalise a push that shows none.
	event.waitUntil(self.registration.showNotification(title, options));
});

self.addEventListener("notificationclick", (event) => {
	event.notification.close();
	event.waitUntil(openCard(event.notification.data ?? {}));
});

/** The notification for a push's payload; an unreadable payload still shows a generic one. */
function notificationOf(payload) {
	let message = {};
	try {
		message = payload ? payload.json() : {};
	} catch {
		// not JSON: the generic notification below
	}
	if (typeof message !== "object" || message === null) message = {};
	const data = {};
	if (typeof message.data === "object" && message.data !== null) {
		for (const [key, value] of Object.entries(message.data)) if (typeof value === "string") data[key] = value;
	}
	// A `tag` in the payload wins, should the Worker ever send its collapse key along.
	const rebuilt = data.mandate_id && data.outcome ? `${data.mandate_id}:${data.outcome}` : undefined;
	const tag = typeof message.tag === "string" && message.tag ? message.tag : rebuilt;
	return {
		title: typeof message.title === "string" && message.title ? message.title : FALLBACK_TITLE,
		options: {
			body: typeof message.body === "string" ? message.body : FALLBACK_BODY,
			data,
			...(tag && { tag }),
		},
	};
}

/**
 * Focuses the open page that watches the notification's session (its address names it:
 * `#session=…`) and tells it which card to show; without one, opens the page on that session and
 * card. A page needs the session's token to watch it: the page keeps it for this (remembered.ts).
 */
async function openCard(data) {
	const sessionId = typeof data.session_id === "string" ? data.session_id : "";
	const mandateId = typeof data.mandate_id === "string" ? data.mandate_id : "";
	const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
	const page = sessionId ? windows.find((client) => watchedSession(client.url) === sessionId) : undefined;
	if (page) {
		page.postMessage({ type: "myndlens.open-card", session_id: sessionId, mandate_id: mandateId });
		// Browsers allow focus only inside a real tap; a page already in front needs none.
		await page.focus().catch(() => undefined);
		return;
	}
	const hash = new URLSearchParams();
	if (sessionId) hash.set("session", sessionId);
	if (mandateId) hash.set("mandate", mandateId);
	await self.clients.openWindow(`/#${hash}`);
}

function watchedSession(url) {
	try {
		return new URLSearchParams(new URL(url).hash.slice(1)).get("session");
	} catch {
		return null;
	}
}
