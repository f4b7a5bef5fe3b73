import type { MetaStore } from "../durable/meta.ts";
import type { LoggedFrame } from "../protocol/frames.ts";

/** A logged frame before it has a seq: the log assigns it. */
export type UnsequencedFrame = LoggedFrame extends infer F
	? F extends LoggedFrame
		? Omit<F, "seq">
		: never
	: never;

/**
 * The session's seq-numbered event log (DESIGN.md, "Rules that keep it correct"): every frame is
 * written here before it is sent, so a phone that resumes with `?since=N` gets exactly what it
 * missed. The log keeps the newest RETAINED_EVENTS frames (and loses a finished mandate's frames to
 * retention); a `since` the log no longer covers in full gets a snapshot.
 */
export const RETAINED_EVENTS = 2_000;
const PRUNE_EVERY = 200;

export class EventLog {
	readonly #sql: SqlStorage;
	readonly #meta: MetaStore;
	/**
	 * The newest seq, kept in memory. Pruning keeps the newest RETAINED_EVENTS, so MAX(seq) recovers it
	 * after a restart without a write per event; retention may delete the newest events (a finished
	 * mandate's), so it also leaves the seq it reached in `seq_floor`, and a seq is never used twice.
	 */
	#last: number;
	/** Called before the log drops every event up to a seq (answer pieces not yet kept elsewhere). */
	beforePrune: (seq: number) => void = () => {};

	constructor(sql: SqlStorage, meta: MetaStore) {
		this.#sql = sql;
		this.#meta = meta;
		const newest = sql.exec<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM ml_events").one().seq ?? 0;
		this.#last = Math.max(newest, meta.getNumber("seq_floor") ?? 0);
	}

	lastSeq(): number {
		return this.#last;
	}

	/**
	 * Appends a frame and returns it serialised once, ready to send to every phone. An answer piece
	 * also keeps how much of the answer had arrived with it (src/session/answer.ts).
	 */
	append(
		frame: UnsequencedFrame,
		answer?: { chars: number; truncated: number },
	): { seq: number; text: string } {
		const seq = this.lastSeq() + 1;
		const text = JSON.stringify(withSeq(frame, seq));
		const mandateId = "data" in frame ? frame.data.mandate_id : frame.mandate_id;
		if (answer) {
			this.#sql.exec(
				"INSERT INTO ml_events (seq, mandate_id, frame, answer_chars, answer_truncated) VALUES (?, ?, ?, ?, ?)",
				seq,
				mandateId,
				text,
				answer.chars,
				answer.truncated,
			);
		} else {
			this.#sql.exec("INSERT INTO ml_events (seq, mandate_id, frame) VALUES (?, ?, ?)", seq, mandateId, text);
		}
		this.#last = seq;
		if (seq % PRUNE_EVERY === 0 && seq > RETAINED_EVENTS) {
			this.beforePrune(seq - RETAINED_EVENTS);
			this.#sql.exec("DELETE FROM ml_events WHERE seq <= ?", seq - RETAINED_EVENTS);
		}
		return { seq, text };
	}

	/**
	 * Takes a seq that no event carries: retention deleted mandates (and their events), which no frame
	 * can say. A phone that saw everything up to the seq before it no longer has the log's whole story,
	 * so its resume finds a hole and gets a snapshot, and the snapshot sent now carries this seq.
	 */
	skip(): number {
		this.#last += 1;
		this.#meta.set("seq_floor", this.#last);
		return this.#last;
	}

	/**
	 * The frames after `since`, or null when the log no longer reaches back that far (or `since`
	 * is from the future), in which case the phone needs a snapshot instead.
	 */
	after(since: number): string[] | null {
		const last = this.lastSeq();
		if (since > last) return null;
		if (since === last) return [];
		const frames = this.#sql
			.exec<{ frame: string }>("SELECT frame FROM ml_events WHERE seq > ? ORDER BY seq", since)
			.toArray()
			.map((row) => row.frame);
		// Every seq after `since` must still be there: pruning removes the oldest, and retention removes a
		// finished mandate's events from anywhere in the log (issue 12). A hole means a snapshot.
		return frames.length === last - since ? frames : null;
	}
}

/** Puts `seq` right after the discriminator so frames read naturally on the wire. */
function withSeq(frame: UnsequencedFrame, seq: number): LoggedFrame {
	if ("event" in frame) {
		const { event, ...rest } = frame;
		return { event, seq, ...rest } as LoggedFrame;
	}
	const { type, ...rest } = frame;
	return { type, seq, ...rest } as LoggedFrame;
}
