import * as z from "zod/mini";
import { DemoSession } from "./demo-api.ts";

/**
 * The sessions a tap on a notification may reopen (issue 10, item 7). A notification names only its
 * session and mandate — never a token — and the page needs the session's mobile token to watch it,
 * so once the user turns notifications on, this browser keeps the token of each session it watches
 * here until the token expires (at most 24 h; a demo token 2 h). Nothing is kept for a user who never
 * opted in, and turning notifications off forgets them all.
 */

const STORAGE_KEY = "myndlens.notify-sessions";
/** A browser that watches many sessions keeps the newest few. */
const MAX_REMEMBERED = 20;

const Remembered = z.object({
	session_id: z.string(),
	token: z.string(),
	expires_at: z.number(),
	/** A demo session (npm start): brings back the page's form too. */
	demo: z.nullable(DemoSession),
});
export type Remembered = z.infer<typeof Remembered>;

export function rememberSession(sessionId: string, token: string, demo: DemoSession | null): void {
	const expiresAt = demo ? Date.parse(demo.expires_at) : tokenExpiry(token);
	if (!Number.isFinite(expiresAt) || expiresAt <= Date.now()) return;
	const others = readAll().filter((entry) => entry.session_id !== sessionId);
	const entry: Remembered = { session_id: sessionId, token, expires_at: expiresAt, demo };
	write([entry, ...others].slice(0, MAX_REMEMBERED));
}

/** The session's token (and demo session) if this browser keeps one that has not expired. */
export function rememberedSession(sessionId: string): Remembered | null {
	return readAll().find((entry) => entry.session_id === sessionId) ?? null;
}

export function forgetSessions(): void {
	try {
		localStorage.removeItem(STORAGE_KEY);
	} catch {
		// storage unavailable: nothing was kept either
	}
}

/** Unexpired entries only; expired ones are dropped from storage as they are found. */
function readAll(): Remembered[] {
	let stored: unknown;
	try {
		stored = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "[]");
	} catch {
		return [];
	}
	const entries = z.array(Remembered).safeParse(stored);
	if (!entries.success) {
		forgetSessions();
		return [];
	}
	const live = entries.data.filter((entry) => entry.expires_at > Date.now());
	if (live.length !== entries.data.length) write(live);
	return live;
}

function write(entries: Remembered[]): void {
	try {
		localStorage.setItem(STORAGE_KEY, JSON.stringify(entries));
	} catch {
		// storage full or blocked: a tap then opens the page without this session
	}
}

/**
 * The token's `exp` in milliseconds, read without verifying (the Worker verifies; this only decides
 * how long to keep it). A token the page cannot read is not kept.
 */
function tokenExpiry(token: string): number {
	try {
		const payload = token.split(".")[1] ?? "";
		const claims: unknown = JSON.parse(atob(payload.replaceAll("-", "+").replaceAll("_", "/")));
		const exp = z.object({ exp: z.number() }).safeParse(claims);
		return exp.success ? exp.data.exp * 1000 : Number.NaN;
	} catch {
		return Number.NaN;
	}
}
