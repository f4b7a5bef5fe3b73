/**
 * The one progress model (seed-spec.md, "Progress Percentage"): what stage 9's bar and sub-status line
 * show, whichever signal moves them — ObeGee's coarse status while polling, the OpenClaw agent's own
 * events when its gateway streams them (src/openclaw/mapping.ts), and the outcome. Dispatched 5 %,
 * agent started 10 %, each tool call +10 % up to 90 %, the answer streaming 90–95 %, done 100 %. The
 * shown value never decreases.
 */
export const PROGRESS = {
	queued: 5,
	started: 10,
	perTool: 10,
	toolCap: 90,
	answerStart: 90,
	answerCap: 95,
	done: 100,
} as const;

/** The sub-status lines the service writes itself (tool lines come from the agent's own titles). */
export const STATUS = {
	queued: "Mandate queued",
	started: "Agent started",
	generating: "Generating response...",
	lifecycleError: "The agent hit a problem and may retry...",
	chatError: "The agent reported an error...",
	aborted: "The agent run was stopped",
	done: "Execution complete",
} as const;

export function nextProgress(current: number, candidate: number): number {
	return Math.max(current, Math.min(100, Math.max(0, Math.round(candidate))));
}

/**
 * How far along ObeGee's own running statuses are (upper-cased): a status never moves the mandate's
 * remote status back (EXECUTING, then a stale QUEUED, changes nothing). Statuses ObeGee may add later
 * rank 0 and show nothing.
 */
export function remoteStatusRank(status: string | null): number {
	switch (status) {
		case "QUEUED":
			return 1;
		case "EXECUTING":
			return 2;
		default:
			return 0;
	}
}

/**
 * The sub-status shown for ObeGee's own running statuses while polling: once ObeGee has the run
 * (QUEUED or EXECUTING), stage 9 says "Agent started" at 10 % (seed-spec.md, "Enhanced Progress
 * Updates"); the agent's own stream, when its gateway speaks, says more. Other statuses show nothing.
 */
export function subStatusForRemote(status: string): { status: string; progress: number } | null {
	return remoteStatusRank(status) > 0 ? { status: STATUS.started, progress: PROGRESS.started } : null;
}

export function stillWorkingStatus(elapsedMs: number): string {
	const seconds = Math.floor(elapsedMs / 1000);
	const span = seconds < 90 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
	return `Still working... (${span})`;
}
