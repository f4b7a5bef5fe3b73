import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ANSWER_CHECKPOINT_CHUNKS } from "../src/session/answer.ts";
import { RETAINED_EVENTS } from "../src/session/event-log.ts";
import {
	execute,
	mandateBody,
	phonesClosedAfterEach,
	progressOf,
	runningMandate,
	sessionStub as sessionStubOf,
} from "./helpers.ts";

/**
 * Issue 17: an answer piece is one row (its event), not two — the mandate's row holds the answer up
 * to a checkpoint and the pieces after it are read back from the log (src/session/answer.ts). Nothing
 * of the answer may be lost to an eviction or to the log's pruning, and a piece delivered twice is
 * still appended once.
 */

const piece = (n: number) => `p${n} `;
const text = (from: number, to: number) =>
	Array.from({ length: to - from }, (_, i) => piece(from + i)).join("");

function storedAnswer(sessionId: string, mandateId: string) {
	return runInDurableObject(sessionStubOf(sessionId), (_i, state) =>
		state.storage.sql
			.exec<{ answer: string; answer_seq: number }>(
				"SELECT answer, answer_seq FROM ml_mandates WHERE mandate_id = ?",
				mandateId,
			)
			.one(),
	);
}

describe("the answer, kept in the log between checkpoints", () => {
	const phones = phonesClosedAfterEach();

	it("writes one row per piece, survives an eviction, appends a repeated piece once and catches up every so often", async () => {
		const { sessionId, body, executionId, stub } = await runningMandate(phones);
		let offset = 0;
		const send = async (from: number, to: number) => {
			for (let n = from; n < to; n++) {
				await stub.applyAgentUpdates(sessionId, executionId, [{ kind: "chunk", text: piece(n), offset }]);
				offset += piece(n).length;
			}
		};
		await send(0, 10);
		// Ten pieces: the row has not been rewritten with the answer; the log holds the pieces.
		expect((await storedAnswer(sessionId, body.mandate_id)).answer).toBe("");
		expect((await progressOf(sessionId)).mandates[0]?.answer).toBe(text(0, 10));

		await evictDurableObject(stub);
		expect((await progressOf(sessionId)).mandates[0]?.answer).toBe(text(0, 10));
		// The last piece again (a batch delivered twice), then a new one: appended once.
		const last = piece(9);
		await stub.applyAgentUpdates(sessionId, executionId, [
			{ kind: "chunk", text: last, offset: offset - last.length },
			{ kind: "chunk", text: piece(10), offset },
		]);
		offset += piece(10).length;
		expect((await progressOf(sessionId)).mandates[0]?.answer).toBe(text(0, 11));

		// Past ANSWER_CHECKPOINT_CHUNKS pieces since the last checkpoint, the row catches up.
		await send(11, ANSWER_CHECKPOINT_CHUNKS + 5);
		const stored = await storedAnswer(sessionId, body.mandate_id);
		expect(stored.answer).toBe(text(0, ANSWER_CHECKPOINT_CHUNKS));
		expect(stored.answer_seq).toBeGreaterThan(0);
		expect((await progressOf(sessionId)).mandates[0]?.answer).toBe(text(0, ANSWER_CHECKPOINT_CHUNKS + 5));
		await evictDurableObject(stub);
		expect((await progressOf(sessionId)).mandates[0]?.answer).toBe(text(0, ANSWER_CHECKPOINT_CHUNKS + 5));
	});

	it("saves an answer's pieces before the log prunes them, however much else the session logged since", async () => {
		const first = await runningMandate(phones);
		const { sessionId, stub } = first;
		await stub.applyAgentUpdates(sessionId, first.executionId, [{ kind: "chunk", text: "kept ", offset: 0 }]);
		await stub.applyAgentUpdates(sessionId, first.executionId, [{ kind: "chunk", text: "whole", offset: 5 }]);
		// Another mandate of the session logs more than the log keeps.
		const other = mandateBody(sessionId);
		const { json } = await execute(other);
		let offset = 0;
		for (let n = 0; n < RETAINED_EVENTS + 250; n++) {
			await stub.applyAgentUpdates(sessionId, json.execution_id, [{ kind: "chunk", text: "x", offset }]);
			offset += 1;
		}
		const pieces = await runInDurableObject(stub, (_i, state) =>
			state.storage.sql
				.exec<{ n: number }>(
					"SELECT COUNT(*) AS n FROM ml_events WHERE mandate_id = ?",
					first.body.mandate_id,
				)
				.one(),
		);
		// The first mandate's pieces are gone from the log, and its answer is whole in its row.
		expect(pieces.n).toBe(0);
		expect((await storedAnswer(sessionId, first.body.mandate_id)).answer).toBe("kept whole");
		await evictDurableObject(stub);
		const answers = Object.fromEntries(
			(await progressOf(sessionId)).mandates.map((mandate) => [mandate.mandate_id, mandate.answer]),
		);
		expect(answers[first.body.mandate_id]).toBe("kept whole");
		expect(answers[other.mandate_id]).toBe("x".repeat(RETAINED_EVENTS + 250));
	});
});
