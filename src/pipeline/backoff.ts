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
