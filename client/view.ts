import type { StageNumber, StageStatus } from "./protocol/stages.ts";

/**
 * What a phone shows for a session, folded from the server's frames (issue 5). Plain immutable data:
 * every change makes new objects, so a UI can compare by reference to know what to redraw.
 */

export interface StageView {
	stage: StageNumber;
	stage_name: string;
	status: StageStatus;
	/** When the stage last changed (ISO), or null while it has never left `pending`. */
	timestamp: string | null;
	/** The user-facing explanation the server attached (set when a stage fails). */
	message?: string;
}

/** A mandate is `in_progress` until stage 10 completes or a stage fails. */
export type MandatePhase = "in_progress" | "completed" | "failed";

export interface MandateResult {
	summary: string | null;
	delivered_to: string[];
}

export interface MandateView {
	mandate_id: string;
	execution_id: string | null;
	/** What the user asked for: from a snapshot, or from the stage frames once the mandate has one. */
	intent: string | null;
	/** Always the 10 stages, in order. */
	stages: readonly StageView[];
	phase: MandatePhase;
	/** The sub-status line under stage 9 ("Agent started", "Still working... (20 s)"). */
	sub_status: string | null;
	/** 0–100; never decreases. */
	progress: number;
	/** The agent's streamed answer: every `response_chunk`, in seq order. */
	answer: string;
	/** The friendly message of the failure, when the mandate failed. */
	error: string | null;
	result: MandateResult | null;
}

export interface SessionView {
	session_id: string | null;
	/** The last seq folded in (the `since` of the next resume), or null before the first frame. */
	seq: number | null;
	/** In the order the session first saw them. */
	mandates: readonly MandateView[];
}

/**
 * `connecting` until the first connection is live, `live` while the server is heard on an open socket,
 * `reconnecting` while the SDK backs off and retries after a drop, `unauthorized` once the token was
 * refused (close 4401/4403) even after asking the token provider again — the SDK then waits for
 * `reconnect()` — and `closed` once the app called `close()`.
 */
export type ConnectionStatus = "connecting" | "live" | "reconnecting" | "unauthorized" | "closed";
