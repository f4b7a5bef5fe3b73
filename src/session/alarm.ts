import { log } from "../log.ts";
import { HEARTBEAT_INTERVAL_MS } from "../pipeline/backoff.ts";
import type { SessionContext } from "./context.ts";
import { resumeDispatches } from "./dispatch.ts";
import { heartbeat } from "./emission.ts";
import { nextLiveAt, runLive } from "./live.ts";
import { timeOut } from "./outcomes.ts";
import { pollExecution } from "./poll.ts";
import { nextPushAt, runPushes } from "./push.ts";
import { emptySessionCleanupAt, runRetention } from "./retention.ts";
import { closeExpiredSockets, socketsExpireAt } from "./sockets.ts";

/**
 * The session's one alarm (DESIGN.md, "Rules that keep it correct"), multiplexed over every running
 * execution's next poll, deadline and sign of life, every stored dispatch's retry, the phones' token expiries and
 * the outbox's retry. It may run early (tests fire it on
 * demand) or twice: it acts as of the time it was armed for, does the work due by then, and re-arms.
 */
export async function runAlarm(s: SessionContext): Promise<"deleted" | undefined> {
	const sessionId = s.sessionId();
	if (!sessionId) return;
	const now = s.alarm.fired();
	closeExpiredSockets(s, now);
	await resumeDispatches(s, now);
	await runPushes(s, now);

	// Poll first: at the deadline, one last look at ObeGee lets a finished run end as a success.
	const due = s.mandates
		.running()
		.filter((mandate) => mandate.execution_id !== null && (mandate.next_poll_at ?? 0) <= now);
	await Promise.all(due.map((mandate) => pollExecution(s, mandate, now)));
	for (const mandate of s.mandates.running()) {
		if (mandate.deadline_at !== null && mandate.deadline_at <= now) timeOut(s, mandate, now);
		// While ObeGee fails and polls back off (up to 30 s), the phones still see a sign of life every 10 s.
		else heartbeat(s, mandate, now);
	}
	// After the polls and deadlines, so what they changed goes out in this turn.
	runLive(s, now);
	await flushNow(s);
	// Last, once the outbox is copied: a session with nothing left deletes itself.
	if (await runRetention(s, now)) return "deleted";
	armAlarm(s);
}

/**
 * The sessions whose alarm, as last armed, is for the outbox (its cover while a copy runs, or its retry):
 * only then must a finished copy arm it again. Otherwise the copy changed nothing the schedule reads,
 * and whatever else changed meanwhile armed it in its own turn.
 */
const armedForOutbox = new WeakSet<SessionContext>();

/** Arms the one alarm for the earliest pending job: a poll, a deadline, a dispatch, an expiry or a retry. */
export function armAlarm(s: SessionContext): void {
	const now = Date.now();
	const jobs = [
		socketsExpireAt(s),
		nextPushAt(s),
		nextLiveAt(s),
		s.mandates.nextDue(HEARTBEAT_INTERVAL_MS, s.timing.retentionMs) ?? emptySessionCleanupAt(s),
	];
	let next: number | null = null;
	for (const at of jobs) if (at !== null && (next === null || at < next)) next = at;
	const outbox = s.outbox.retryAt(now, next);
	if (outbox !== null && (next === null || outbox < next)) armedForOutbox.add(s);
	else armedForOutbox.delete(s);
	s.alarm.arm([next, outbox]);
}

/**
 * Starts copying the outbox to D1 off the caller's path (issue 16): a webhook or a stage report is
 * answered once its state is stored and its frames are sent, never after a D1 backlog. The alarm is
 * armed first, so the rows are covered even if the object dies before the copy finishes; when it
 * finishes, the alarm is armed again if it was for that cover (to drop it), or for a retry with backoff.
 */
export function flush(s: SessionContext): Promise<void> {
	const sessionId = s.sessionId();
	if (!sessionId) return Promise.resolve();
	armAlarm(s);
	// A flush in progress drains rows added meanwhile too (it reads until the outbox is empty); after a
	// failure the alarm retries with backoff, so a D1 outage is not hit again by every request.
	if (s.outbox.inProgress() || s.outbox.backingOff()) return Promise.resolve();
	s.waitUntil(
		flushNow(s, false).catch((error: unknown) =>
			log("error", "outbox flush crashed", { session_id: sessionId, error: String(error) }),
		),
	);
	return Promise.resolve();
}

/** Copies the outbox to D1 and waits for it (the alarm's retry); `armFirst` false when just armed. */
export async function flushNow(s: SessionContext, armFirst = true): Promise<void> {
	const sessionId = s.sessionId();
	if (!sessionId) return;
	if (armFirst) armAlarm(s);
	const copied = await s.outbox.flush(s.env.DB, sessionId);
	if (!copied || armedForOutbox.has(s)) armAlarm(s);
}
