import { type DeviceTarget, deleteDevice, listDevices } from "../d1/devices.ts";
import { backoffDelay } from "../pipeline/backoff.ts";
import {
	type PushMessage,
	type PushResult,
	type PushTarget,
	pushProviders,
	sendPush,
} from "../push/provider.ts";
import { flush } from "./alarm.ts";
import { type OutcomeSignal, outcomePoint, pushPoint } from "./analytics.ts";
import { audit, auditSubject } from "./audit.ts";
import type { SessionContext } from "./context.ts";
import { endLive } from "./live.ts";
import type { MandateRecord } from "./mandate-store.ts";
import { sessionOwner } from "./owner.ts";
import { ackedSeq } from "./sockets.ts";

/**
 * Completion pushes (issue 10): when a mandate reaches its one outcome, every device of the user who
 * owns the session gets exactly one notification for it — unless a phone of the session, in the
 * foreground, acknowledged the outcome's frame within ACK_GRACE_MS (the user saw it).
 *
 * Each push is a row here before its first attempt (ml_push, unique per mandate, outcome and device,
 * so no outcome is pushed twice to a device). The outcome's row fans out to the owner's devices (a
 * D1 read) right after the outcome, off the caller's path; its lease brings it back through the alarm
 * if the object dies first. A user with no device costs nothing more. Each device's row is due when
 * the grace is over, is sent from the alarm in the background (leased first), retried with backoff
 * and jitter on 429/5xx (at least the provider's Retry-After) until PUSH_TTL_MS, given up on a
 * definite refusal; a device the provider calls unregistered is removed at once. A provider outage
 * never slows a frame to a phone.
 */

export const ACK_GRACE_MS = 3_000;
/** Expo hands a ticket; the delivery's receipt is asked for this long after (Expo's advice). */
export const EXPO_RECEIPT_DELAY_MS = 15 * 60_000;
/** A receipt not ready yet is asked for again after this; Expo keeps receipts for 24 hours. */
const EXPO_RECEIPT_RETRY_MS = 5 * 60_000;
/** The outcome's fan-out runs right away; this long after, the alarm does it instead (an eviction). */
const FANOUT_LEASE_MS = 30_000;
export const PUSH_TTL_MS = 24 * 60 * 60_000;
const RETRY_BASE_MS = 5_000;
const RETRY_CAP_MS = 10 * 60_000;
/** An attempt in flight counts as lost once this has passed (an eviction), and is tried again. */
const SEND_LEASE_MS = 30_000;

export type PushOutcome = "completed" | "failed" | "timed_out" | "late_success";

interface PushRow {
	id: number;
	mandate_id: string;
	outcome: string;
	terminal_seq: number;
	message: string;
	device_id: string;
	target: string | null;
	attempts: number;
	due_at: number;
	expires_at: number;
	/** An Expo ticket whose receipt is still to be read (the row is due when it is asked for). */
	ticket: string | null;
}

/** Called in the same turn as the outcome's stage frame is logged: the push waits out the grace. */
export function schedulePush(
	s: SessionContext,
	mandate: MandateRecord,
	outcome: PushOutcome,
	now: number,
	signal: OutcomeSignal,
): void {
	// Every terminal outcome passes here once: the operator's data point, then the lock screen's end.
	outcomePoint(s, mandate, outcome, signal, now);
	endLive(s, mandate.mandate_id, now);
	// Nobody's phone has opened the session: there is no user whose devices to tell.
	if (sessionOwner(s) === null) return;
	// One statement stores the outcome's push and hands it back (nothing when it was stored before).
	const row = s.sql
		.exec<PushRow & Record<string, SqlStorageValue>>(
			`INSERT INTO ml_push (mandate_id, outcome, terminal_seq, message, due_at, expires_at)
			 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING *`,
			mandate.mandate_id,
			outcome,
			s.log.lastSeq(),
			JSON.stringify(completionMessage(s, mandate, outcome)),
			now + FANOUT_LEASE_MS,
			now + PUSH_TTL_MS,
		)
		.toArray()[0] as unknown as PushRow | undefined;
	if (!row) return;
	// With no phone connected nobody can acknowledge the outcome: no grace to wait out, send at once.
	const grace = s.ctx.getWebSockets().length > 0 ? ACK_GRACE_MS : 0;
	s.waitUntil(
		fanOut(s, row, now, grace)
			.then(() => (grace === 0 ? runPushes(s, Math.max(Date.now(), now)) : undefined))
			.then(() => flush(s)),
	);
}

/** When the next push is due, for the alarm. */
export function nextPushAt(s: SessionContext): number | null {
	return s.sql.exec<{ at: number | null }>("SELECT MIN(due_at) AS at FROM ml_push").one().at;
}

/**
 * The alarm's part: the outcomes whose grace is over fan out to the owner's devices; the sends that
 * are due go out in the background (their rows are leased first), so the alarm never waits on a provider.
 */
export async function runPushes(s: SessionContext, now: number): Promise<void> {
	const due = s.sql
		.exec<PushRow & Record<string, SqlStorageValue>>(
			"SELECT * FROM ml_push WHERE due_at <= ? ORDER BY id",
			now,
		)
		.toArray() as unknown as PushRow[];
	for (const row of due.filter((r) => r.target === null)) await fanOut(s, row, now, ACK_GRACE_MS);
	const receipts = due.filter((r) => r.ticket !== null);
	if (receipts.length > 0) checkReceipts(s, receipts, now);
	const sends: PushRow[] = [];
	for (const row of due.filter((r) => r.target !== null && r.ticket === null)) {
		if (row.attempts === 0 && ackedSeq(s) >= row.terminal_seq) {
			// A phone of the session showed this outcome in the foreground: the user has seen it.
			s.sql.exec("DELETE FROM ml_push WHERE id = ?", row.id);
			audit(
				s,
				"push_skipped",
				auditSubject(s, row.mandate_id),
				{ outcome: row.outcome, device_id: row.device_id, reason: "seen on a phone" },
				now,
			);
			continue;
		}
		s.sql.exec(
			"UPDATE ml_push SET attempts = attempts + 1, due_at = ? WHERE id = ?",
			now + SEND_LEASE_MS,
			row.id,
		);
		sends.push({ ...row, attempts: row.attempts + 1 });
	}
	if (sends.length === 0) return;
	const providers = pushProviders(s.env);
	s.waitUntil(
		Promise.all(
			sends.map(async (row) => {
				const result = await sendPush(
					providers,
					JSON.parse(row.target as string) as PushTarget,
					JSON.parse(row.message) as PushMessage,
				).catch(
					(error: unknown): PushResult => ({ outcome: "retry", retryAfterMs: null, reason: String(error) }),
				);
				await settle(s, row, result, Math.max(Date.now(), now));
			}),
		).then(() => flush(s)),
	);
}

async function fanOut(s: SessionContext, row: PushRow, now: number, grace: number): Promise<void> {
	const mandate = auditSubject(s, row.mandate_id);
	const owner = sessionOwner(s);
	let devices: Awaited<ReturnType<typeof listDevices>> = [];
	if (owner !== null) {
		try {
			devices = await listDevices(s.env.DB, owner);
		} catch (error) {
			const retryAt = now + backoffDelay(row.attempts + 1, RETRY_BASE_MS, RETRY_CAP_MS);
			s.sql.exec("UPDATE ml_push SET attempts = attempts + 1, due_at = ? WHERE id = ?", retryAt, row.id);
			audit(s, "push_fanout_failed", mandate, { error: String(error).slice(0, 300) }, now);
			return;
		}
	}
	for (const device of devices) {
		s.sql.exec(
			`INSERT INTO ml_push (mandate_id, outcome, terminal_seq, message, device_id, target, due_at, expires_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			row.mandate_id,
			row.outcome,
			row.terminal_seq,
			row.message,
			device.device_id,
			JSON.stringify(toPushTarget(device.target)),
			// The grace counts from the outcome (its row's expiry is the outcome time + PUSH_TTL_MS).
			row.expires_at - PUSH_TTL_MS + grace,
			row.expires_at,
		);
	}
	s.sql.exec("DELETE FROM ml_push WHERE id = ?", row.id);
	audit(s, "push_fanout", mandate, { outcome: row.outcome, devices: devices.length }, now);
}

async function settle(s: SessionContext, row: PushRow, result: PushResult, now: number): Promise<void> {
	const mandate = auditSubject(s, row.mandate_id);
	const kind = (JSON.parse(row.target ?? "{}") as { kind?: string }).kind ?? "unknown";
	pushPoint(s, s.mandates.get(row.mandate_id)?.tenant_id ?? null, kind, result.outcome);
	const detail = {
		outcome: row.outcome,
		device_id: row.device_id,
		attempt: row.attempts,
		result: result.outcome,
	};
	if (result.outcome === "retry") {
		const wait = Math.max(result.retryAfterMs ?? 0, backoffDelay(row.attempts, RETRY_BASE_MS, RETRY_CAP_MS));
		if (now + wait < row.expires_at) {
			s.sql.exec("UPDATE ml_push SET due_at = ? WHERE id = ?", now + wait, row.id);
			audit(
				s,
				"push_retry",
				mandate,
				{ ...detail, reason: result.reason.slice(0, 300), retry_in_ms: wait },
				now,
			);
			return;
		}
		audit(s, "push_expired", mandate, { ...detail, reason: result.reason.slice(0, 300) }, now);
	} else if (result.outcome === "unregistered") {
		const owner = sessionOwner(s);
		if (owner !== null) await deleteDevice(s.env.DB, owner, row.device_id).catch(() => false);
		audit(s, "push_device_removed", mandate, { ...detail, reason: result.reason.slice(0, 300) }, now);
	} else {
		if (result.outcome === "sent" && result.providerId && JSON.parse(row.target ?? "{}").kind === "expo") {
			// Expo's ticket only says it took the message: its receipt (~15 min later) says whether
			// APNs/FCM did, and is the only place a removed app (DeviceNotRegistered) shows up.
			s.sql.exec(
				"UPDATE ml_push SET ticket = ?, due_at = ? WHERE id = ?",
				result.providerId,
				now + EXPO_RECEIPT_DELAY_MS,
				row.id,
			);
			audit(s, "push_sent", mandate, { ...detail, ticket: result.providerId }, now);
			return;
		}
		audit(
			s,
			result.outcome === "sent" ? "push_sent" : "push_rejected",
			mandate,
			{
				...detail,
				...(result.outcome === "rejected" ? { reason: result.reason.slice(0, 300) } : {}),
			},
			now,
		);
	}
	s.sql.exec("DELETE FROM ml_push WHERE id = ?", row.id);
}

/**
 * The Expo receipts that are due, read in one call per 300 tickets in the background (rows leased
 * first): a delivered one is done; DeviceNotRegistered removes the device; a rate or provider error
 * sends the message again (same collapse key, so never shown twice); a receipt not ready is asked for
 * again later, until Expo's 24 hours are over.
 */
function checkReceipts(s: SessionContext, rows: PushRow[], now: number): void {
	const expo = pushProviders(s.env).expo;
	for (const row of rows) {
		s.sql.exec("UPDATE ml_push SET due_at = ? WHERE id = ?", now + SEND_LEASE_MS, row.id);
	}
	if (!expo) {
		for (const row of rows) s.sql.exec("DELETE FROM ml_push WHERE id = ?", row.id);
		return;
	}
	s.waitUntil(
		expo
			.getReceipts(rows.map((row) => row.ticket as string))
			.then(async (answer) => {
				const at = Math.max(Date.now(), now);
				for (const row of rows) {
					const ticket = row.ticket as string;
					const receipt = answer.receipts[ticket];
					const mandate = auditSubject(s, row.mandate_id);
					const detail = { outcome: row.outcome, device_id: row.device_id, ticket };
					if (!receipt) {
						const again = at + Math.max(answer.retryAfterMs ?? 0, EXPO_RECEIPT_RETRY_MS);
						if (again < row.expires_at) {
							s.sql.exec("UPDATE ml_push SET due_at = ? WHERE id = ?", again, row.id);
						} else {
							s.sql.exec("DELETE FROM ml_push WHERE id = ?", row.id);
							audit(s, "push_receipt_missing", mandate, detail, at);
						}
						continue;
					}
					if (receipt.outcome === "retry" && at < row.expires_at) {
						const wait = Math.max(
							receipt.retryAfterMs ?? 0,
							backoffDelay(row.attempts, RETRY_BASE_MS, RETRY_CAP_MS),
						);
						s.sql.exec("UPDATE ml_push SET ticket = NULL, due_at = ? WHERE id = ?", at + wait, row.id);
						audit(s, "push_retry", mandate, { ...detail, reason: receipt.reason.slice(0, 300) }, at);
						continue;
					}
					s.sql.exec("DELETE FROM ml_push WHERE id = ?", row.id);
					if (receipt.outcome === "unregistered") {
						const owner = sessionOwner(s);
						if (owner !== null) await deleteDevice(s.env.DB, owner, row.device_id).catch(() => false);
						audit(s, "push_device_removed", mandate, { ...detail, reason: receipt.reason.slice(0, 300) }, at);
					} else {
						audit(
							s,
							receipt.outcome === "sent" ? "push_delivered" : "push_undelivered",
							mandate,
							{ ...detail, ...("reason" in receipt && { reason: receipt.reason.slice(0, 300) }) },
							at,
						);
					}
				}
			})
			.then(() => flush(s)),
	);
}

/** A registered device as a provider addresses it. */
function toPushTarget(target: DeviceTarget): PushTarget {
	switch (target.kind) {
		case "expo":
		case "fcm":
			return target;
		case "apns":
			return {
				kind: "apns",
				token: target.token,
				bundleId: target.bundle_id,
				environment: target.environment,
				pushType: "alert",
			};
		case "webpush":
			return { kind: "webpush", endpoint: target.subscription.endpoint, ...target.subscription.keys };
	}
}

const INTENT_IN_TITLE = 80;

/** What the person reads: "Done: Send weekly report to team", or the friendly failure message. */
function completionMessage(s: SessionContext, mandate: MandateRecord, outcome: PushOutcome): PushMessage {
	const intent = (mandate.intent ?? "Your request").trim();
	const short = intent.length > INTENT_IN_TITLE ? `${intent.slice(0, INTENT_IN_TITLE - 1)}…` : intent;
	const succeeded = outcome === "completed" || outcome === "late_success";
	const summary = mandate.result ? (JSON.parse(mandate.result) as { summary?: string | null }).summary : null;
	return {
		title: succeeded ? `Done: ${short}` : `Couldn't finish: ${short}`,
		body: succeeded
			? (summary ?? "Your request was completed.")
			: (mandate.error ?? "Your request couldn't be completed."),
		data: {
			session_id: s.sessionId() ?? "",
			mandate_id: mandate.mandate_id,
			...(mandate.execution_id ? { execution_id: mandate.execution_id } : {}),
			outcome,
		},
		// One notification per outcome: a retried send replaces, never adds.
		collapseKey: `${mandate.mandate_id}:${outcome}`,
		priority: "high",
		ttlSeconds: PUSH_TTL_MS / 1000,
	};
}
