/**
 * Progress percentages (seed-spec.md, "Progress Percentage"): lifecycle start 10 %, each tool call
 * +10 % up to 90 %, streaming 90–95 %, end 100 %. The shown value never decreases.
 */
export const PROGRESS = {
	queued: 5,
	started: 10,
	toolStep: 10,
	toolCeiling: 90,
	streamingStart: 90,
	streamingCeiling: 95,
	done: 100,
} as const;

export function nextProgress(current: number, candidate: number): number {
	return Math.max(current, Math.min(100, Math.max(0, Math.round(candidate))));
}

/** Sub-statuses shown for ObeGee's own execution statuses while polling. */
export function subStatusForRemote(status: string): { status: string; progress: number } | null {
	switch (status) {
		case "QUEUED":
			return { status: "Waiting for an agent...", progress: PROGRESS.queued };
		case "EXECUTING":
			return { status: "Agent started", progress: PROGRESS.started };
		default:
			return null;
	}
}

export function stillWorkingStatus(elapsedMs: number): string {
	const seconds = Math.floor(elapsedMs / 1000);
	const span = seconds < 90 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
	return `Still working... (${span})`;
}
