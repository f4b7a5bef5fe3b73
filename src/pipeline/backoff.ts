/**
 * Exponential backoff with "equal jitter": the wait doubles with each consecutive failure up to a
 * cap, and half of it is random so that many sessions recovering from the same ObeGee outage do
 * not poll in lockstep. `random` is injectable so the schedule can be tested exactly.
 */
export function backoffDelay(
	failures: number,
	baseMs: number,
	capMs: number,
	random: () => number = Math.random,
): number {
	if (failures <= 0) return baseMs;
	const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(failures, 30));
	return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Polling backs off to at most 30 s between attempts while ObeGee is failing. */
export const POLL_BACKOFF_CAP_MS = 30_000;
/** Audit rows wait at most a minute between D1 retries. */
export const OUTBOX_BACKOFF_CAP_MS = 60_000;
/** A running execution shows a sign of life at least this often, so nothing looks frozen. */
export const HEARTBEAT_INTERVAL_MS = 10_000;

/**
 * While the tenant's OpenClaw gateway streams an execution's events, ObeGee is polled this much
 * less often (it stays the safety net for the outcome); after STREAM_QUIET_MS of silence, or when
 * the stream drops, polling returns to the base interval.
 */
export const STREAMING_POLL_FACTOR = 5;
export const STREAM_QUIET_MS = 10_000;
export function streamingPollInterval(pollIntervalMs: number): number {
	return pollIntervalMs * STREAMING_POLL_FACTOR;
}

/** ObeGee's `Retry-After` is honoured up to this; a longer one is cut (and never past the deadline). */
export const RETRY_AFTER_CAP_MS = 120_000;

/** A retry waits at least as long as ObeGee's `Retry-After` asked (capped), never less than `delayMs`. */
export function honourRetryAfter(delayMs: number, retryAfterMs: number | null | undefined): number {
	// Absent, zero, negative or not a number: nothing was asked.
	const asked = retryAfterMs ?? 0;
	if (!(asked > 0)) return delayMs;
	return Math.max(delayMs, Math.min(asked, RETRY_AFTER_CAP_MS));
}

/**
 * The wait before polling a failing ObeGee again: backoff from the poll interval, up to the larger of
 * POLL_BACKOFF_CAP_MS and the interval itself, and never shorter than the interval — a failing ObeGee
 * is never polled sooner than a healthy one, whatever POLL_INTERVAL_MS is — then `Retry-After`.
 */
export function pollRetryDelay(
	failures: number,
	pollIntervalMs: number,
	retryAfterMs: number | null | undefined,
	random: () => number = Math.random,
): number {
	const cap = Math.max(POLL_BACKOFF_CAP_MS, pollIntervalMs);
	const backoff = Math.max(pollIntervalMs, backoffDelay(failures, pollIntervalMs, cap, random));
	return honourRetryAfter(backoff, retryAfterMs);
}
