import * as z from "zod/mini";

/**
 * The page's calls to the Worker's demo-only routes (src/routes/demo.ts). They exist only where
 * the local config enables them; elsewhere `POST /api/demo/session` is a 404 and the page can only
 * watch a session it was given (`#session=…&token=…`).
 */

const Scenario = z.object({ id: z.string(), label: z.string() });
export type Scenario = z.infer<typeof Scenario>;

export const DemoSession = z.object({
	session_id: z.string(),
	token: z.string(),
	expires_at: z.string(),
	scenarios: z.array(Scenario),
});
export type DemoSession = z.infer<typeof DemoSession>;

const Started = z.object({ mandate_id: z.string(), execution_id: z.optional(z.string()) });
const Failed = z.object({
	mandate_id: z.optional(z.string()),
	error: z.object({ code: z.string(), message: z.string() }),
});

export type StartResult =
	| { ok: true; mandateId: string }
	| { ok: false; mandateId: string | null; message: string };

const STORAGE_KEY = "myndlens.demo-session";
/** A stored session is reused (a reload keeps its cards) while its token has this long left. */
const MIN_TOKEN_LIFE_MS = 10 * 60 * 1000;

/** The demo session of this tab, reused across reloads; null when the Worker has no demo routes. */
export async function demoSession(): Promise<DemoSession | null> {
	const stored = storedDemoSession();
	if (stored) return stored;
	const response = await fetch("/api/demo/session", { method: "POST" });
	if (response.status === 404) return null;
	if (!response.ok) throw new Error(`POST /api/demo/session answered ${response.status}`);
	const session = DemoSession.parse(await response.json());
	adoptDemoSession(session);
	return session;
}

/** This tab's demo session while its token has a while left (with `sessionId`, only that one). */
export function storedDemoSession(sessionId?: string): DemoSession | null {
	const stored = DemoSession.safeParse(readStored());
	if (!stored.success || Date.parse(stored.data.expires_at) - Date.now() <= MIN_TOKEN_LIFE_MS) return null;
	return sessionId === undefined || stored.data.session_id === sessionId ? stored.data : null;
}

/** Makes `session` this tab's demo session (a tab opened from a notification takes over its session). */
export function adoptDemoSession(session: DemoSession): void {
	sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export async function startMandate(
	session: DemoSession,
	intent: string,
	scenario: string,
): Promise<StartResult> {
	const response = await fetch("/api/demo/mandates", {
		method: "POST",
		headers: { Authorization: `Bearer ${session.token}`, "Content-Type": "application/json" },
		body: JSON.stringify({ session_id: session.session_id, intent, scenario }),
	});
	const body: unknown = await response.json().catch(() => null);
	const started = Started.safeParse(body);
	if (response.ok && started.success) return { ok: true, mandateId: started.data.mandate_id };
	const failed = Failed.safeParse(body);
	return {
		ok: false,
		mandateId: failed.success ? (failed.data.mandate_id ?? null) : null,
		message: failed.success ? failed.data.error.message : `The request failed (${response.status}).`,
	};
}

function readStored(): unknown {
	try {
		return JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "null");
	} catch {
		return null;
	}
}
