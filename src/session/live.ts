import { deleteDevice, listDevices } from "../d1/devices.ts";
import { backoffDelay } from "../pipeline/backoff.ts";
import { currentStage, type StageChange } from "../pipeline/stage-machine.ts";
import { type StageNumber, type StageStatus, stageName } from "../protocol/stages.ts";
import {
	type PushMessage,
	type PushResult,
	type PushTarget,
	pushProviders,
	sendPush,
} from "../push/provider.ts";
import { flush } from "./alarm.ts";
import { answerOf } from "./answer.ts";
import { audit, auditSubject } from "./audit.ts";
import type { SessionContext } from "./context.ts";
import { isFinished, type MandateRecord } from "./mandate-store.ts";
import { sessionOwner } from "./owner.ts";

/**
 * Live progress off the app (issue 10, DESIGN.md "Push"): a mandate's stages on the lock screen while
 * the phone is in a pocket.
 *
 * - iOS: the app starts a Live Activity for a mandate and registers its push token
 *   (`PUT …/mandates/:mandateId/live-activity`); the service sends APNs `liveactivity` pushes with the
 *   documented `content-state` — updates at priority 5, coalesced (at most one every
 *   LIVE_UPDATE_INTERVAL_MS), and exactly one `end` at priority 10 with the final state and a
 *   `dismissal-date`.
 * - Android: when a mandate is dispatched, every FCM device of the session's owner gets the same state
 *   as data messages (normal priority; high only for the final one), so the app can post an ongoing
 *   progress notification. Best effort by design: the completion push (push.ts) is what is guaranteed.
 *
 * Each target is a row (ml_live) noted on every visible change of its mandate; the content is read
 * from the mandate when the push goes out, so a retry or a coalesced update always sends the latest
 * state. Sends run from the alarm in the background, each row leased first; a target the provider calls
 * unregistered (the user dismissed the activity, the app was removed) is dropped at once.
 */

/** Intermediate updates: at most one per target this often (Apple budgets priority-5 updates). */
export const LIVE_UPDATE_INTERVAL_MS = 2_000;
/** Never two pushes to one target within a second, the end included. */
export const LIVE_MIN_GAP_MS = 1_000;
/** How long an ended activity stays on the lock screen (`dismissal-date`). */
export const LIVE_DISMISS_AFTER_S = 30 * 60;
/** An activity not updated for this long shows as stale (`stale-date`). */
export const LIVE_STALE_AFTER_S = 15 * 60;
/** A target is given up this long after it was registered (an activity lives at most 8 h + 4 h). */
export const LIVE_TTL_MS = 12 * 60 * 60_000;
/** The answer's preview on the lock screen, in characters. */
export const ANSWER_PREVIEW_CHARS = 120;
const RETRY_BASE_MS = 2_000;
const RETRY_CAP_MS = 5 * 60_000;
const SEND_LEASE_MS = 30_000;

/** The `content-state` of the Live Activity, and the Android data message's fields (as strings). */
export interface LiveContentState {
	stage: StageNumber;
	stage_name: string;
	status: StageStatus;
	/** Stage 9's bar, 0–100, as the app shows it: 100 once the request is done. */
	progress: number;
	sub_status: string | null;
	answer_preview: string | null;
}

interface LiveRow {
	mandate_id: string;
	target_key: string;
	target: string;
	version: number;
	sent_version: number;
	last_sent_at: number | null;
	last_timestamp: number;
	due_at: number | null;
	in_flight: number;
	attempts: number;
	ending: number;
	done: number;
	expires_at: number;
}

type Row = LiveRow & Record<string, SqlStorageValue>;

/** The mandates with a live target still to update, in memory so a chunk with none costs no query. */
const watched = new WeakMap<SessionContext, Set<string>>();

function liveMandates(s: SessionContext): Set<string> {
	let set = watched.get(s);
	if (!set) {
		set = new Set(
			s.sql
				.exec<{ mandate_id: string }>("SELECT DISTINCT mandate_id FROM ml_live WHERE done = 0 AND ending = 0")
				.toArray()
				.map((row) => row.mandate_id),
		);
		watched.set(s, set);
	}
	return set;
}

export type LiveActivityResult =
	| { ok: true; outcome: "created" | "replaced" | "unchanged" }
	| { ok: false; reason: "unknown_mandate" };

/**
 * The app's Live Activity for a mandate: its push token replaces any earlier one (iOS may rotate it).
 * A new token gets the current state at once — or, for a mandate that already ended, its one `end`.
 * Registering the same token again changes nothing.
 */
export function registerLiveActivity(
	s: SessionContext,
	mandateId: string,
	activity: { token: string; bundleId: string; environment: "production" | "sandbox" },
	now: number,
): LiveActivityResult {
	const mandate = s.mandates.get(mandateId);
	if (!mandate) return { ok: false, reason: "unknown_mandate" };
	const target: PushTarget = {
		kind: "apns",
		token: activity.token,
		bundleId: activity.bundleId,
		environment: activity.environment,
		pushType: "liveactivity",
	};
	const json = JSON.stringify(target);
	const existing = s.sql
		.exec<Row>("SELECT * FROM ml_live WHERE mandate_id = ? AND target_key = 'activity'", mandateId)
		.toArray()[0] as LiveRow | undefined;
	if (existing?.target === json) return { ok: true, outcome: "unchanged" };
	const ended = isFinished(mandate.state);
	s.sql.exec(
		`INSERT OR REPLACE INTO ml_live (mandate_id, target_key, target, ending, due_at, expires_at)
		 VALUES (?, 'activity', ?, ?, ?, ?)`,
		mandateId,
		json,
		ended ? 1 : 0,
		now,
		now + LIVE_TTL_MS,
	);
	if (!ended) liveMandates(s).add(mandateId);
	audit(s, "live_activity_registered", auditSubject(s, mandateId), { replaced: existing !== undefined }, now);
	return { ok: true, outcome: existing === undefined ? "created" : "replaced" };
}

/**
 * A visible change of a mandate (a stage, the bar, the answer): its live targets get the new state,
 * coalesced. Called on every change, so a mandate nobody follows off the app costs nothing here.
 * Dispatch (ObeGee took it: stage 9 going active) is when the owner's Android devices start following it.
 */
export function noteLiveChange(
	s: SessionContext,
	mandateId: string,
	now: number,
	changes: readonly StageChange[] = [],
): void {
	if (changes.some((change) => change.stage === 9 && change.status === "active")) {
		startAndroidProgress(s, mandateId, now);
	}
	if (!liveMandates(s).has(mandateId)) return;
	// A send in flight keeps its lease: when it settles, the newer version is scheduled.
	s.sql.exec(
		`UPDATE ml_live SET version = version + 1,
		   due_at = CASE WHEN in_flight = 1 THEN due_at
		            ELSE MIN(COALESCE(due_at, ?1), MAX(?2, COALESCE(last_sent_at, 0) + ?3)) END
		 WHERE mandate_id = ?4 AND done = 0 AND ending = 0`,
		Number.MAX_SAFE_INTEGER,
		now,
		LIVE_UPDATE_INTERVAL_MS,
		mandateId,
	);
}

/** The mandate reached its outcome: each live target gets its one end (a late success after a timeout gets none). */
export function endLive(s: SessionContext, mandateId: string, now: number): void {
	if (!liveMandates(s).delete(mandateId)) return;
	s.sql.exec(
		`UPDATE ml_live SET ending = 1, version = version + 1,
		   due_at = CASE WHEN in_flight = 1 THEN due_at ELSE MAX(?1, COALESCE(last_sent_at, 0) + ?2) END
		 WHERE mandate_id = ?3 AND done = 0 AND ending = 0`,
		now,
		LIVE_MIN_GAP_MS,
		mandateId,
	);
}

/** When the next live push is due, for the alarm. */
export function nextLiveAt(s: SessionContext): number | null {
	return s.sql.exec<{ at: number | null }>("SELECT MIN(due_at) AS at FROM ml_live WHERE done = 0").one().at;
}

/** The alarm's part: the live pushes that are due go out in the background (leased first). */
export function runLive(s: SessionContext, now: number): void {
	const due = s.sql
		.exec<Row>("SELECT * FROM ml_live WHERE done = 0 AND due_at <= ?", now)
		.toArray() as unknown as LiveRow[];
	const sends: { row: LiveRow; end: boolean; target: PushTarget; message: PushMessage; timestamp: number }[] =
		[];
	for (const row of due) {
		const mandate = s.mandates.get(row.mandate_id);
		if (!mandate || now >= row.expires_at) {
			s.sql.exec(
				"UPDATE ml_live SET done = 1, due_at = NULL WHERE mandate_id = ? AND target_key = ?",
				row.mandate_id,
				row.target_key,
			);
			liveMandates(s).delete(row.mandate_id);
			audit(s, "live_expired", auditSubject(s, row.mandate_id), { target: targetKind(row) }, now);
			continue;
		}
		const end = row.ending === 1;
		if (!end && row.version === row.sent_version) {
			s.sql.exec(
				"UPDATE ml_live SET due_at = NULL, in_flight = 0 WHERE mandate_id = ? AND target_key = ?",
				row.mandate_id,
				row.target_key,
			);
			continue;
		}
		s.sql.exec(
			`UPDATE ml_live SET in_flight = 1, attempts = attempts + 1, due_at = ?
			 WHERE mandate_id = ? AND target_key = ?`,
			now + SEND_LEASE_MS,
			row.mandate_id,
			row.target_key,
		);
		// Apple keeps the update with the newest timestamp: never go back, even if the clock does.
		const timestamp = Math.max(row.last_timestamp, Math.floor(now / 1000));
		const target = JSON.parse(row.target) as PushTarget;
		const state = liveState(s, mandate);
		sends.push({
			row: { ...row, attempts: row.attempts + 1 },
			end,
			target,
			message:
				target.kind === "apns"
					? activityMessage(mandate, state, end, timestamp)
					: androidMessage(s, mandate, state, end, timestamp),
			timestamp,
		});
	}
	if (sends.length === 0) return;
	const providers = pushProviders(s.env);
	s.waitUntil(
		Promise.all(
			sends.map(async ({ row, end, target, message, timestamp }) => {
				const result = await sendPush(providers, target, message).catch(
					(error: unknown): PushResult => ({ outcome: "retry", retryAfterMs: null, reason: String(error) }),
				);
				await settle(s, row, { end, timestamp, sentAt: now }, result, Math.max(Date.now(), now));
			}),
		).then(() => flush(s)),
	);
}

async function settle(
	s: SessionContext,
	row: LiveRow,
	/** The push as sent: the end or an update, its `timestamp`, and when it left (the spacing counts from then). */
	{ end, timestamp, sentAt }: { end: boolean; timestamp: number; sentAt: number },
	result: PushResult,
	now: number,
): Promise<void> {
	const key = [row.mandate_id, row.target_key] as const;
	const detail = { target: targetKind(row), event: end ? "end" : "update", attempt: row.attempts };
	const mandate = auditSubject(s, row.mandate_id);
	if (result.outcome === "retry" && now < row.expires_at) {
		const wait = Math.max(result.retryAfterMs ?? 0, backoffDelay(row.attempts, RETRY_BASE_MS, RETRY_CAP_MS));
		s.sql.exec(
			"UPDATE ml_live SET in_flight = 0, due_at = ? WHERE mandate_id = ? AND target_key = ?",
			now + wait,
			...key,
		);
		audit(
			s,
			"live_retry",
			mandate,
			{ ...detail, reason: result.reason.slice(0, 300), retry_in_ms: wait },
			now,
		);
		return;
	}
	if (result.outcome === "sent" && !end) {
		// Delivered: the next update waits out the interval; an end noted meanwhile waits out the gap.
		s.sql.exec(
			`UPDATE ml_live SET in_flight = 0, attempts = 0, sent_version = ?1, last_sent_at = ?2,
			   last_timestamp = ?3,
			   due_at = CASE WHEN ending = 1 THEN ?2 + ?4 WHEN version > ?1 THEN ?2 + ?5 ELSE NULL END
			 WHERE mandate_id = ?6 AND target_key = ?7`,
			row.version,
			sentAt,
			timestamp,
			LIVE_MIN_GAP_MS,
			LIVE_UPDATE_INTERVAL_MS,
			...key,
		);
		return;
	}
	// An end delivered, or a target that is gone, refused or out of time: nothing more goes to it.
	s.sql.exec(
		`UPDATE ml_live SET in_flight = 0, done = 1, due_at = NULL, sent_version = version, last_sent_at = ?
		 WHERE mandate_id = ? AND target_key = ?`,
		now,
		...key,
	);
	liveMandates(s).delete(row.mandate_id);
	const owner = sessionOwner(s);
	if (result.outcome === "unregistered" && row.target_key.startsWith("fcm:") && owner !== null) {
		// The same rule as a completion push: a device its provider calls unregistered is removed at once.
		await deleteDevice(s.env.DB, owner, row.target_key.slice("fcm:".length)).catch(() => false);
	}
	const kind =
		result.outcome === "sent"
			? "live_ended"
			: result.outcome === "unregistered"
				? "live_target_gone"
				: result.outcome === "rejected"
					? "live_rejected"
					: "live_expired";
	audit(
		s,
		kind,
		mandate,
		{ ...detail, ...("reason" in result && { reason: result.reason.slice(0, 300) }) },
		now,
	);
}

/** Where the mandate is now, as the lock screen shows it. */
export function liveState(s: SessionContext, mandate: MandateRecord): LiveContentState {
	const board = s.mandates.board(mandate.mandate_id);
	// The furthest stage that moved (the failed one, if any: nothing moves after a failure).
	const stage = (currentStage(board) || 1) as StageNumber;
	const status = board[stage];
	const answer = answerOf(s, mandate).text.trim();
	const finished = isFinished(mandate.state);
	const preview =
		answer.length <= ANSWER_PREVIEW_CHARS
			? answer
			: finished
				? `${answer.slice(0, ANSWER_PREVIEW_CHARS - 1)}…`
				: `…${answer.slice(-(ANSWER_PREVIEW_CHARS - 1))}`;
	return {
		stage,
		stage_name: stageName(stage),
		status,
		progress: mandate.progress,
		sub_status: status === "failed" ? (mandate.error ?? mandate.sub_status) : mandate.sub_status,
		answer_preview: preview === "" ? null : preview,
	};
}

function activityMessage(
	mandate: MandateRecord,
	state: LiveContentState,
	end: boolean,
	timestamp: number,
): PushMessage {
	return {
		// Priority 10 only for the end (Apple budgets priority-10 Live Activity updates).
		priority: end ? "high" : "normal",
		ttlSeconds: end ? 3600 : 0,
		collapseKey: `live:${mandate.mandate_id}`,
		liveActivity: {
			event: end ? "end" : "update",
			contentState: { ...state },
			timestamp,
			...(end
				? { dismissalDate: timestamp + LIVE_DISMISS_AFTER_S }
				: { staleDate: timestamp + LIVE_STALE_AFTER_S }),
		},
	};
}

/** The same state as an FCM data message (every value a string, as FCM demands). */
function androidMessage(
	s: SessionContext,
	mandate: MandateRecord,
	state: LiveContentState,
	end: boolean,
	timestamp: number,
): PushMessage {
	return {
		priority: end ? "high" : "normal",
		ttlSeconds: end ? 3600 : 60,
		collapseKey: `progress:${mandate.mandate_id}`,
		data: {
			type: "mandate_progress",
			event: end ? "end" : "update",
			session_id: s.sessionId() ?? "",
			mandate_id: mandate.mandate_id,
			intent: mandate.intent ?? "",
			stage: String(state.stage),
			stage_name: state.stage_name,
			status: state.status,
			progress: String(state.progress),
			sub_status: state.sub_status ?? "",
			answer_preview: state.answer_preview ?? "",
			timestamp: String(timestamp),
		},
	};
}

/** Dispatch: the owner's Android devices follow the mandate (one D1 read, off the caller's path). */
function startAndroidProgress(s: SessionContext, mandateId: string, now: number): void {
	const owner = sessionOwner(s);
	if (owner === null) return;
	s.waitUntil(
		listDevices(s.env.DB, owner)
			.then((devices) => {
				const mandate = s.mandates.get(mandateId);
				const android = devices.filter((device) => device.target.kind === "fcm");
				if (!mandate || isFinished(mandate.state) || android.length === 0) return;
				for (const device of android) {
					s.sql.exec(
						`INSERT INTO ml_live (mandate_id, target_key, target, due_at, expires_at)
						 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
						mandateId,
						`fcm:${device.device_id}`,
						JSON.stringify(device.target),
						now,
						now + LIVE_TTL_MS,
					);
				}
				liveMandates(s).add(mandateId);
				return flush(s);
			})
			.catch((error: unknown) =>
				audit(
					s,
					"live_fanout_failed",
					auditSubject(s, mandateId),
					{ error: String(error).slice(0, 300) },
					now,
				),
			),
	);
}

function targetKind(row: LiveRow): string {
	return row.target_key === "activity" ? "live_activity" : "fcm";
}
