import { type ErasedRows, eraseSessionRows } from "../d1/erasure.ts";
import { currentStage } from "../pipeline/stage-machine.ts";
import type { StageNumber } from "../protocol/stages.ts";
import { watchAgent } from "./agent-stream.ts";
import type { SessionContext } from "./context.ts";
import { moveStages } from "./emission.ts";
import { isFinished } from "./mandate-store.ts";

/**
 * Erasure (issue 12, DESIGN.md "Operations"): everything of one session goes — its event log,
 * mandates, outbox, pushes and live targets in the object's storage, and its rows in D1 — and its
 * executions are remembered as erased, so a late webhook for one is answered and stored nowhere.
 *
 * A mandate still running is stopped first (its current stage fails "cancelled", which the phones
 * still watching see) and its agent stream unwatched, so no poll, webhook or agent event re-creates
 * anything. Idempotent: an object with nothing stored answers an empty receipt.
 */

export const CANCELLED_MESSAGE = "Cancelled: this request's data was erased.";

export interface SessionErasure {
	session_id: string;
	mandates: number;
	executions: number;
	events: number;
	/** Rows deleted from D1, per table. */
	d1: ErasedRows;
}

export async function eraseSession(
	s: SessionContext,
	sessionId: string,
	now: number,
): Promise<SessionErasure> {
	const empty: SessionErasure = { session_id: sessionId, mandates: 0, executions: 0, events: 0, d1: {} };
	if (s.sessionId() === null) return empty;
	const mandates = s.mandates.all();
	for (const mandate of mandates) {
		if (isFinished(mandate.state)) continue;
		const board = s.mandates.board(mandate.mandate_id);
		const stage = (currentStage(board) || 1) as StageNumber;
		const stopped = s.mandates.update(mandate.mandate_id, {
			state: "failed",
			error: CANCELLED_MESSAGE,
			next_poll_at: null,
			next_dispatch_at: null,
			updated_at: now,
		});
		moveStages(s, stopped, [{ stage, status: "failed" }], now, { [stage]: { message: CANCELLED_MESSAGE } });
		watchAgent(s, stopped, false);
	}
	for (const ws of s.ctx.getWebSockets()) {
		try {
			ws.close(1000, "session erased");
		} catch {
			// already closing
		}
	}
	const events = s.log.lastSeq();
	// A copy to D1 in flight finishes first; nothing pending is copied any more (it would be erased).
	await s.outbox.inProgress();
	s.outbox.clear();
	const executionIds = mandates.map((m) => m.execution_id).filter((id): id is string => id !== null);
	// D1 first: if it fails, the object still knows what to erase and the operator's retry finishes it.
	const d1 = await eraseSessionRows(
		s.env.DB,
		{ sessionId, mandateIds: mandates.map((m) => m.mandate_id), executionIds },
		now,
	);
	await s.ctx.storage.deleteAlarm();
	await s.ctx.storage.deleteAll();
	return { session_id: sessionId, mandates: mandates.length, executions: executionIds.length, events, d1 };
}
