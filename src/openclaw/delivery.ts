import { type AgentUpdate, coalesceChunks } from "./contract.ts";

/*
 * Hands each execution's updates to its session in order, coalescing (issues 3 and 6): a status,
 * end or error goes at once; answer chunks wait up to CHUNK_WINDOW_MS for the next ones, so a
 * 100-chunks/s answer costs a handful of frames a second instead of a hundred. While a call is in
 * flight, later updates queue and go as one batch when it returns, with consecutive chunks joined.
 * The short timer is fine here: a Gateway DO with an open outbound socket never hibernates.
 */

/** How long answer chunks may wait to travel together (issue 6: at most 50 ms added). */
export const CHUNK_WINDOW_MS = 50;

export type Deliver = (sessionId: string, executionId: string, updates: AgentUpdate[]) => Promise<void>;
export type DeliveryFailure = (executionId: string, error: unknown, dropped: number) => void;

/** A failed call is retried this many times before its batch is given up (and logged). */
const MAX_ATTEMPTS = 3;

interface Lane {
	sessionId: string;
	queue: AgentUpdate[];
	busy: Promise<void> | null;
}

export class AgentUpdateDelivery {
	readonly #lanes = new Map<string, Lane>();
	readonly #deliver: Deliver;
	readonly #onFailure: DeliveryFailure;

	constructor(deliver: Deliver, onFailure: DeliveryFailure) {
		this.#deliver = deliver;
		this.#onFailure = onFailure;
	}

	/** Queues updates; resolves once they (and everything before them) were handed over or given up. */
	push(sessionId: string, executionId: string, updates: AgentUpdate[]): Promise<void> {
		if (updates.length === 0) return this.#lanes.get(executionId)?.busy ?? Promise.resolve();
		let lane = this.#lanes.get(executionId);
		if (!lane) {
			lane = { sessionId, queue: [], busy: null };
			this.#lanes.set(executionId, lane);
		}
		lane.queue.push(...updates);
		if (!lane.busy) lane.busy = this.#drain(executionId, lane);
		return lane.busy;
	}

	/** Resolves when every queued update was handed over. */
	async idle(): Promise<void> {
		await Promise.all([...this.#lanes.values()].map((lane) => lane.busy));
	}

	async #drain(executionId: string, lane: Lane): Promise<void> {
		try {
			while (lane.queue.length > 0) {
				if (lane.queue.every((update) => update.kind === "chunk")) {
					await new Promise((resolve) => setTimeout(resolve, CHUNK_WINDOW_MS));
				}
				const batch = coalesceChunks(lane.queue.splice(0));
				await this.#send(lane.sessionId, executionId, batch);
			}
		} finally {
			lane.busy = null;
			if (lane.queue.length === 0) this.#lanes.delete(executionId);
		}
	}

	async #send(sessionId: string, executionId: string, batch: AgentUpdate[]): Promise<void> {
		for (let attempt = 1; ; attempt++) {
			try {
				await this.#deliver(sessionId, executionId, batch);
				return;
			} catch (error) {
				if (attempt >= MAX_ATTEMPTS) {
					this.#onFailure(executionId, error, batch.length);
					return;
				}
			}
		}
	}
}
