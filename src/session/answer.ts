import type { SessionContext } from "./context.ts";
import type { MandateRecord } from "./mandate-store.ts";

/**
 * The agent's answer as it types out (issue 17). Every piece is a `response_chunk` event in the log
 * anyway — written before it is sent, so a phone can resume from it — and that event row also keeps
 * how much of the answer had arrived (`answer_chars`, `answer_truncated`). So the mandate's row is not
 * rewritten with the whole answer on every piece (that was a second billed row per frame): it holds
 * the answer up to `answer_seq`, and the pieces after it are read back from the log.
 *
 * The mandate row catches up (a checkpoint) every ANSWER_CHECKPOINT_CHUNKS pieces, when the answer is
 * cut at its cap, and before the log prunes a piece it has not caught up with. Retention deletes a
 * finished mandate with its events, and erasure deletes everything, so no piece is ever lost.
 */

export const ANSWER_CHECKPOINT_CHUNKS = 50;

export interface AnswerState {
	/** The answer as shown (gap marks and the truncation notice included). */
	text: string;
	/** How much of the agent's answer arrived (chunk offsets count in it). */
	chars: number;
	truncated: number;
	/** The seq of the last piece in `text`. */
	seq: number;
	/** Pieces in `text` that the mandate row does not hold yet, and the seq of the first of them. */
	unsaved: number;
	firstUnsaved: number;
}

interface UnsavedRow extends Record<string, SqlStorageValue> {
	mandate_id: string;
	seq: number;
	frame: string;
	answer_chars: number;
	answer_truncated: number;
}

/**
 * The answers with pieces the mandate rows do not hold yet, read from the log once per object: after
 * that the map is kept up to date, so a mandate missing from it is whole in its row.
 */
export function unsavedAnswers(s: SessionContext): Map<string, AnswerState> {
	if (s.answers !== null) return s.answers;
	const answers = new Map<string, AnswerState>();
	const rows = s.sql
		.exec<UnsavedRow>(
			`SELECT e.mandate_id, e.seq, e.frame, e.answer_chars, e.answer_truncated
			 FROM ml_events e JOIN ml_mandates m ON m.mandate_id = e.mandate_id
			 WHERE e.answer_chars IS NOT NULL AND e.seq > m.answer_seq ORDER BY e.seq`,
		)
		.toArray();
	for (const row of rows) {
		let answer = answers.get(row.mandate_id);
		if (!answer) {
			const mandate = s.mandates.get(row.mandate_id);
			if (!mandate) continue;
			answer = { ...stored(mandate), firstUnsaved: row.seq };
			answers.set(row.mandate_id, answer);
		}
		answer.text += (JSON.parse(row.frame) as { chunk: string }).chunk;
		answer.chars = row.answer_chars;
		answer.truncated = row.answer_truncated;
		answer.seq = row.seq;
		answer.unsaved += 1;
	}
	s.answers = answers;
	return answers;
}

function stored(mandate: MandateRecord): AnswerState {
	return {
		text: mandate.answer,
		chars: mandate.answer_chars,
		truncated: mandate.answer_truncated,
		seq: mandate.answer_seq,
		unsaved: 0,
		firstUnsaved: 0,
	};
}

/** The mandate's answer as it stands: its row, and the pieces after it in the log. */
export function answerOf(s: SessionContext, mandate: MandateRecord): AnswerState {
	return unsavedAnswers(s).get(mandate.mandate_id) ?? stored(mandate);
}

/** A piece was logged (`seq`): the answer grows, and the row catches up when it is due. */
export function keepPiece(
	s: SessionContext,
	mandate: MandateRecord,
	before: AnswerState,
	piece: { shown: string; chars: number; truncated: number; seq: number },
): void {
	const answers = unsavedAnswers(s);
	const answer: AnswerState = {
		text: before.text + piece.shown,
		chars: piece.chars,
		truncated: piece.truncated,
		seq: piece.seq,
		unsaved: before.unsaved + 1,
		firstUnsaved: before.unsaved === 0 ? piece.seq : before.firstUnsaved,
	};
	answers.set(mandate.mandate_id, answer);
	if (answer.unsaved >= ANSWER_CHECKPOINT_CHUNKS || answer.truncated) saveAnswer(s, mandate.mandate_id);
}

/** Writes the answer into the mandate's row (a checkpoint); the log's pieces are then history. */
export function saveAnswer(s: SessionContext, mandateId: string): void {
	const answers = unsavedAnswers(s);
	const answer = answers.get(mandateId);
	if (!answer) return;
	s.mandates.update(mandateId, {
		answer: answer.text,
		answer_chars: answer.chars,
		answer_truncated: answer.truncated,
		answer_seq: answer.seq,
	});
	answers.delete(mandateId);
}

/** The log is about to drop every event up to `seq`: answers still reading pieces from there catch up. */
export function saveAnswersThrough(s: SessionContext, seq: number): void {
	for (const [mandateId, answer] of unsavedAnswers(s)) {
		if (answer.firstUnsaved <= seq) saveAnswer(s, mandateId);
	}
}

/** The mandate is gone (retention): forget what was kept of its answer. */
export function forgetAnswer(s: SessionContext, mandateId: string): void {
	s.answers?.delete(mandateId);
}
