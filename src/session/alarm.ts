import type { SessionContext } from "./context.ts";
import { resumeDispatches } from "./dispatch.ts";
import { timeOut } from "./outcomes.ts";
import { pollExecution } from "./poll.ts";
import { closeExpiredSockets, socketsExpireAt } from "./sockets.ts";

/**
 * The session's one alarm (DESIGN.md, "Rules that keep it correct"), multiplexed over every running
 * execution's next poll and deadline, every stored dispatch's retry, the phones' token expiries and
 * the outbox's retry. It may run early (tests fire it on
 * demand) or twice: it acts as of the time it was armed for, does the work due by then, and re-arms.
 */
export async function runAlarm(s: SessionContext): Promise<void> {
	const sessionId = s.sessionId();
	if (!sessionId) return;
	if (s.env.METRICS_LOG === "true") console.log(JSON.stringify({ metric: "alarm", session_id: sessionId }));
	const now = s.alarm.fired();
	closeExpiredSockets(s, now);
	await resumeDispatches(s, now);

	// Poll first: at the deadline, one last look at ObeGee lets a finished run end as a success.
	const due = s.mandates
		.running()
		.filter((mandate) => mandate.execution_id !== null && (mandate.next_poll_at ?? 0) <= now);
	await Promise.all(due.map((mandate) => pollExecution(s, mandate, now)));
	for (const mandate of s.mandates.running()) {
		if (mandate.deadline_at !== null && mandate.deadline_at <= now) timeOut(s, mandate, now);
	}
	await flush(s);
}

/** Arms the one alarm for the earliest pending job: a poll, a deadline, a dispatch, an expiry or a retry. */
export function armAlarm(s: SessionContext): void {
	const times: Array<number | null> = [s.outbox.retryAt(), socketsExpireAt(s)];
	for (const mandate of s.mandates.running()) times.push(mandate.next_poll_at, mandate.deadline_at);
	for (const mandate of s.mandates.dispatching()) times.push(mandate.next_dispatch_at);
	s.alarm.arm(times);
}

/**
 * Copies the outbox to D1. The alarm is armed before and after: before, so a state change is covered
 * even if the object dies mid-flush; after, to drop that cover or schedule a retry.
 */
export async function flush(s: SessionContext): Promise<void> {
	const sessionId = s.sessionId();
	if (!sessionId) return;
	armAlarm(s);
	await s.outbox.flush(s.env.DB, sessionId);
	armAlarm(s);
	if (s.env.METRICS_LOG === "true") {
		console.log(JSON.stringify({ metric: "session_flush", session_id: sessionId, ...s.metrics.take() }));
	}
}
