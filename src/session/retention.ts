import { deleteSessionOwner } from "../d1/erasure.ts";
import { log } from "../log.ts";
import { forgetAnswer } from "./answer.ts";
import type { SessionContext } from "./context.ts";
import { snapshot } from "./emission.ts";
import { FINISHED_STATES_SQL } from "./mandate-store.ts";
import { broadcast } from "./sockets.ts";
import { WEBHOOK_DEDUP_RETENTION_MS } from "./webhook-log.ts";

/**
 * Retention (issue 12, DESIGN.md "Operations"): a finished mandate — its stages, its events in the log,
 * its push and live rows — is deleted once RETENTION_DAYS old; nothing still running is touched. A
 * session with nothing left, no phone connected and nothing waiting for D1 deletes its own storage,
 * alarm included, and its `session_owners` row. D1's copies are swept by the Cron Trigger
 * (src/d1/erasure.ts `sweepD1`). A phone resuming across deleted events gets a snapshot (event-log.ts).
 */

/** A session whose last phone left with no mandate ever stored is deleted this long after. */
export const EMPTY_SESSION_GRACE_MS = 60 * 60_000;

/**
 * When a session that never held a mandate is due for deletion, for the alarm (finished mandates'
 * deletion is in MandateStore.nextDue's one aggregate). Read only when no mandate needs the alarm.
 */
export function emptySessionCleanupAt(s: SessionContext): number | null {
	return s.meta.getNumber("empty_cleanup_at");
}

/** The last phone left: a session that never held a mandate is deleted after EMPTY_SESSION_GRACE_MS. */
export function noteLastPhoneLeft(s: SessionContext, now: number): boolean {
	if (s.ctx.getWebSockets().length > 0) return false;
	if (s.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM ml_mandates").one().n > 0) return false;
	s.meta.set("empty_cleanup_at", now + EMPTY_SESSION_GRACE_MS);
	return true;
}

/** Deletes what is past retention; true when the whole session was deleted (its storage is gone). */
export async function runRetention(s: SessionContext, now: number): Promise<boolean> {
	const cutoff = now - s.timing.retentionMs;
	const expired = s.sql
		.exec<{ mandate_id: string }>(
			`SELECT mandate_id FROM ml_mandates WHERE state IN ${FINISHED_STATES_SQL} AND updated_at <= ?`,
			cutoff,
		)
		.toArray()
		.map((row) => row.mandate_id);
	for (const mandateId of expired) {
		forgetAnswer(s, mandateId);
		for (const table of ["ml_stages", "ml_events", "ml_push", "ml_live", "ml_mandates"]) {
			s.sql.exec(`DELETE FROM ${table} WHERE mandate_id = ?`, mandateId);
		}
	}
	if (expired.length > 0) {
		log("info", "retention: mandates deleted", { session_id: s.sessionId(), mandates: expired.length });
		// No frame says "deleted": the deletion takes a seq of its own, phones watching now get the
		// snapshot at it, and a phone that comes back from before it finds a hole and gets one too.
		s.log.skip();
		if (s.ctx.getWebSockets().length > 0) broadcast(s.ctx, JSON.stringify(snapshot(s)));
	}
	// Webhook ids are kept a week to spot replays (a replay older than that is refused by its timestamp
	// anyway), or less when retention is shorter.
	s.webhooks.forget(Math.max(cutoff + 1, now - WEBHOOK_DEDUP_RETENTION_MS));

	const left = s.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM ml_mandates").one().n;
	if (left > 0 || s.ctx.getWebSockets().length > 0 || s.outbox.pending() > 0) return false;
	const sessionId = s.sessionId();
	try {
		if (sessionId) {
			await deleteSessionOwner(s.env.DB, sessionId);
		}
	} catch {
		// D1 is down: keep everything and try again with the next alarm.
		return false;
	}
	await s.ctx.storage.deleteAlarm();
	await s.ctx.storage.deleteAll();
	log("info", "retention: session deleted", { session_id: sessionId });
	return true;
}
