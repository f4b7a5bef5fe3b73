import type { Env } from "./env.ts";

/** Numeric settings with their documented defaults (DESIGN.md); a malformed value falls back to the default. */
export interface Timing {
	pollIntervalMs: number;
	executionTimeoutMs: number;
	/** RETENTION_DAYS: a finished mandate, its events and its audit rows are deleted once this old. */
	retentionMs: number;
}

export const DEFAULT_POLL_INTERVAL_MS = 2_000;
export const DEFAULT_EXECUTION_TIMEOUT_MS = 300_000;
export const DEFAULT_RETENTION_DAYS = 30;
const DAY_MS = 24 * 60 * 60_000;

function positiveInt(raw: string | undefined, fallback: number): number {
	const value = Number(raw);
	return Number.isInteger(value) && value > 0 ? value : fallback;
}

export function timing(env: Env): Timing {
	return {
		pollIntervalMs: positiveInt(env.POLL_INTERVAL_MS, DEFAULT_POLL_INTERVAL_MS),
		executionTimeoutMs: positiveInt(env.EXECUTION_TIMEOUT_MS, DEFAULT_EXECUTION_TIMEOUT_MS),
		retentionMs: positiveInt(env.RETENTION_DAYS, DEFAULT_RETENTION_DAYS) * DAY_MS,
	};
}
