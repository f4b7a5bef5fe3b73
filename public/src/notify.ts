import type { DemoSession } from "./demo-api.ts";
import { byId } from "./dom.ts";
import { listDevices, registerDevice, removeDevice, webPushKey } from "./push-api.ts";
import { forgetSessions, rememberSession } from "./remembered.ts";

/**
 * "Notify me when it's done" (issue 10, item 7): this browser becomes one of the user's push devices
 * through Web Push. The Worker then sends each mandate's outcome to it (src/session/push.ts) unless a
 * page showed that outcome while visible; the service worker (public/sw.js) shows it and a tap opens
 * the card.
 *
 * The control exists only where it can work: a browser with service workers, PushManager and
 * Notification, and a Worker whose Web Push provider is on. Permission is asked on a click, never
 * on load. States: off · on · blocked (the browser denies notifications to this site: only its
 * settings can change that) · unavailable (subscribing or registering failed; the reason is shown).
 */

type State =
	| { kind: "off"; note?: string }
	| { kind: "working"; label: string }
	| { kind: "on" }
	| { kind: "blocked" }
	| { kind: "unavailable"; reason: string };

export interface Watched {
	sessionId: string;
	token: string;
	demo: DemoSession | null;
}

const SW_URL = "/sw.js";
const SCOPE = "/";
const DEVICE_ID_KEY = "myndlens.push-device-id";
/** Chromium without its push service waits forever; the user gets an answer instead. */
const SUBSCRIBE_TIMEOUT_MS = 30_000;

const TEXT = {
	off: "Get a notification when a request finishes, even with this page in the background.",
	on: "Notifications are on in this browser: you'll get one when a request finishes.",
	blocked:
		"Notifications are blocked for this site. Allow them in your browser's site settings to turn this on.",
};

export function notificationsSupported(): boolean {
	return (
		window.isSecureContext &&
		"serviceWorker" in navigator &&
		"PushManager" in window &&
		"Notification" in window &&
		"showNotification" in ServiceWorkerRegistration.prototype
	);
}

/** Shows the control when the browser and the Worker both support Web Push; otherwise it stays hidden. */
export async function setUpNotifications(watched: Watched): Promise<void> {
	if (!notificationsSupported()) return;
	const publicKey = await webPushKey().catch(() => null);
	if (!publicKey) return;
	const control = new NotifyControl(watched, publicKey);
	await control.start();
}

class NotifyControl {
	readonly #watched: Watched;
	readonly #publicKey: string;
	readonly #root: HTMLElement;
	readonly #text: HTMLElement;
	readonly #button: HTMLButtonElement;
	#state: State = { kind: "off" };

	constructor(watched: Watched, publicKey: string) {
		this.#watched = watched;
		this.#publicKey = publicKey;
		this.#root = byId("notify");
		this.#text = byId("notify-text");
		this.#button = byId<HTMLButtonElement>("notify-toggle");
	}

	async start(): Promise<void> {
		this.#render(await this.#currentState());
		this.#root.hidden = false;
		this.#button.addEventListener("click", () => {
			const action = this.#state.kind === "on" ? this.#turnOff() : this.#turnOn();
			action
				.then((state) => this.#render(state))
				.catch((error: unknown) => this.#render({ kind: "unavailable", reason: reasonOf(error) }));
		});
		// The user may allow or block notifications in the browser's settings while the page is open.
		const status = await navigator.permissions?.query({ name: "notifications" }).catch(() => null);
		status?.addEventListener("change", () => {
			if (this.#state.kind === "working") return;
			void this.#currentState().then((state) => this.#render(state));
		});
	}

	/** What is true now, asking nobody: permission, this browser's subscription, the Worker's device list. */
	async #currentState(): Promise<State> {
		if (Notification.permission === "denied") return { kind: "blocked" };
		if (Notification.permission !== "granted") return { kind: "off" };
		const registration = await navigator.serviceWorker.getRegistration(SCOPE);
		const subscription = await registration?.pushManager.getSubscription();
		if (!subscription || !this.#keyMatches(subscription)) return { kind: "off" };
		const devices = await listDevices(this.#watched.token).catch(() => null);
		const mine = devices?.find((device) => device.device_id === deviceId() && device.kind === "webpush");
		if (mine?.token_hint !== `…${subscription.endpoint.slice(-6)}`) return { kind: "off" };
		// Sessions watched after opting in are remembered too, so their notifications open them.
		rememberSession(this.#watched.sessionId, this.#watched.token, this.#watched.demo);
		return { kind: "on" };
	}

	async #turnOn(): Promise<State> {
		// Asked here, in the click, and only if not answered yet: the browser shows its question now.
		const permission =
			Notification.permission === "default"
				? await Notification.requestPermission()
				: Notification.permission;
		if (permission === "denied") return { kind: "blocked" };
		if (permission !== "granted") return { kind: "off", note: "Your browser didn't allow notifications." };
		this.#render({ kind: "working", label: "Turning on…" });
		await navigator.serviceWorker.register(SW_URL, { scope: SCOPE });
		// subscribe() needs an active worker; `ready` waits for the one whose scope holds this page.
		const registration = await navigator.serviceWorker.ready;
		let subscription = await registration.pushManager.getSubscription();
		if (subscription && !this.#keyMatches(subscription)) {
			// The Worker's VAPID key changed (SECURITY.md: rotating it means subscribing again).
			await subscription.unsubscribe();
			subscription = null;
		}
		const created = subscription === null;
		subscription ??= await withTimeout(
			registration.pushManager.subscribe({
				userVisibleOnly: true,
				applicationServerKey: fromBase64url(this.#publicKey),
			}),
			SUBSCRIBE_TIMEOUT_MS,
			"the browser's push service did not answer",
		);
		const registered = await registerDevice(this.#watched.token, deviceId(), subscription.toJSON());
		if (!registered.ok) {
			// A subscription the Worker will never push to is dropped, so the browser holds nothing stale.
			if (created) await subscription.unsubscribe().catch(() => false);
			return { kind: "unavailable", reason: registered.message };
		}
		rememberSession(this.#watched.sessionId, this.#watched.token, this.#watched.demo);
		return { kind: "on" };
	}

	async #turnOff(): Promise<State> {
		this.#render({ kind: "working", label: "Turning off…" });
		const removed = await removeDevice(this.#watched.token, deviceId());
		if (!removed.ok) return { kind: "unavailable", reason: removed.message };
		const registration = await navigator.serviceWorker.getRegistration(SCOPE);
		await (await registration?.pushManager.getSubscription())?.unsubscribe();
		forgetSessions();
		return { kind: "off" };
	}

	#keyMatches(subscription: PushSubscription): boolean {
		const key = subscription.options.applicationServerKey;
		return key !== null && toBase64url(new Uint8Array(key)) === this.#publicKey;
	}

	#render(state: State): void {
		this.#state = state;
		this.#root.dataset.state = state.kind;
		this.#button.disabled = state.kind === "working";
		this.#button.hidden = state.kind === "blocked";
		switch (state.kind) {
			case "off":
				this.#text.textContent = state.note ? `${state.note} ${TEXT.off}` : TEXT.off;
				this.#button.textContent = "Notify me when it's done";
				break;
			case "working":
				this.#button.textContent = state.label;
				break;
			case "on":
				this.#text.textContent = TEXT.on;
				this.#button.textContent = "Turn off";
				break;
			case "blocked":
				this.#text.textContent = TEXT.blocked;
				break;
			case "unavailable":
				this.#text.textContent = `Notifications aren't available: ${state.reason}`;
				this.#button.textContent = "Try again";
				break;
		}
	}
}

/** This browser's device id: made once, kept, so turning notifications on again replaces the device. */
function deviceId(): string {
	try {
		const stored = localStorage.getItem(DEVICE_ID_KEY);
		if (stored) return stored;
		const made = `web_${crypto.randomUUID()}`;
		localStorage.setItem(DEVICE_ID_KEY, made);
		return made;
	} catch {
		return sessionDeviceId;
	}
}
/** Without storage the id lives as long as the page. */
const sessionDeviceId = `web_${crypto.randomUUID()}`;

function withTimeout<T>(promise: Promise<T>, ms: number, reason: string): Promise<T> {
	let timer: ReturnType<typeof setTimeout> | undefined;
	const timeout = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new Error(reason)), ms);
	});
	return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function reasonOf(error: unknown): string {
	// fetch() fails with a TypeError when the service cannot be reached.
	if (error instanceof TypeError) return "the service could not be reached.";
	// A DOMException from subscribe() ("Registration failed - push service error") says what went wrong.
	return error instanceof Error && error.message ? error.message : "something went wrong.";
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
	const binary = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
	return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function toBase64url(bytes: Uint8Array): string {
	let binary = "";
	for (const byte of bytes) binary += String.fromCharCode(byte);
	return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
