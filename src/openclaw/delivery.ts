import { type AgentUpdate, coalesceChunks } from "./contract.ts";

/*
 * Hands each execution's updates to its session in order, coalescing (issues 3 and 6): a status,
 * end or error goes at once; answer chunks wait up to CHUNK_WINDOW_MS for the next ones, so a
 * 100-chunks/s answer costs a handful of frames a second instead of a hundred. While a call is in
 * flight, later updates queue and go as one batch when it returns, with consecutive chunks joined.
 *
 * A failed call is retried with backoff over time (issue 14, finding 11), not in the same
 * millisecond: RETRY_DELAYS_MS add up to about half a minute. Only then is the batch given up, and
 * the chunks after it keep their own offsets, so the session sees the hole instead of joining over
 * it. The short timers are fine here: a Gateway DO with an open outbound socket never hibernates,
 * and `retryNow()` (called from the alarm) cuts a wait short.
 */

/** How long answer chunks may wait to travel together (issue 6: at most 50 ms added). */
export const CHUNK_WINDOW_MS = 50;
/** The waits before each retry of a failed call; after the last one the batch is given up. */
export const RETRY_DELAYS_MS = [250, 500, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000] as const;
/** Updates one execution may have waiting; beyond it queued statuses are folded, then the oldest dropped. */
export const MAX_QUEUED = 500;

export type Deliver = (sessionId: string, executionId: string, updates: AgentUpdate[]) => Promise<void>;
export type DeliveryFailure = (executionId: string, error: unknown, dropped: number) => void;

export interface DeliveryOptions {
	/** Waits `ms` or until `wake` resolves (injectable so tests drive retries without waiting). */
	sleep?: (ms: number, wake: Promise<void>) => Promise<void>;
	retryDelaysMs?: readonly number[];
	maxQueued?: number;
}

export interface DeliveryStats {
	/** Calls that failed (each is retried until its batch is given up). */
	failedCalls: number;
	/** Updates given up after every retry failed, or dropped from an overfull queue. */
	dropped: number;
}

interface Lane {
	sessionId: string;
	queue: AgentUpdate[];
	busy: Promise<void> | null;
}

export class AgentUpdateDelivery {
	readonly #lanes = new Map<string, Lane>();
	readonly #deliver: Deliver;
	readonly #onFailure: DeliveryFailure;
	readonly #sleep: (ms: number, wake: Promise<void>) => Promise<void>;
	readonly #retryDelaysMs: readonly number[];
	readonly #maxQueued: number;
	#wake = Promise.withResolvers<void>();
	readonly stats: DeliveryStats = { failedCalls: 0, dropped: 0 };

	constructor(deliver: Deliver, onFailure: DeliveryFailure, options: DeliveryOptions = {}) {
		this.#deliver = deliver;
		this.#onFailure = onFailure;
		this.#sleep = options.sleep ?? sleepOrWake;
		this.#retryDelaysMs = options.retryDelaysMs ?? RETRY_DELAYS_MS;
		this.#maxQueued = options.maxQueued ?? MAX_QUEUED;
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
		if (lane.queue.length > this.#maxQueued) this.#shrink(executionId, lane);
		if (!lane.busy) lane.busy = this.#drain(executionId, lane);
		return lane.busy;
	}

	/** Resolves when every queued update was handed over. */
	async idle(): Promise<void> {
		await Promise.all([...this.#lanes.values()].map((lane) => lane.busy));
	}

	/** Updates waiting to be handed over, over every execution. */
	queued(): number {
		let count = 0;
		for (const lane of this.#lanes.values()) count += lane.queue.length;
		return count;
	}

	/** Retries that are waiting go now (the alarm calls this: time was driven, or it is simply due). */
	retryNow(): void {
		const wake = this.#wake;
		this.#wake = Promise.withResolvers<void>();
		wake.resolve();
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
		for (let retry = 0; ; retry++) {
			try {
				await this.#deliver(sessionId, executionId, batch);
				return;
			} catch (error) {
				this.stats.failedCalls += 1;
				const delay = this.#retryDelaysMs[retry];
				if (delay === undefined) {
					this.stats.dropped += batch.length;
					this.#onFailure(executionId, error, batch.length);
					return;
				}
				await this.#sleep(delay, this.#wake.promise);
			}
		}
	}

	/** An overfull queue (the session has been failing): fold statuses, then drop the oldest. */
	#shrink(executionId: string, lane: Lane): void {
		const folded = coalesceChunks(lane.queue).filter(
			(update, index, all) => !(update.kind === "status" && all[index + 1]?.kind === "status"),
		);
		const excess = folded.length - this.#maxQueued;
		lane.queue = excess > 0 ? folded.slice(excess) : folded;
		if (excess > 0) {
			this.stats.dropped += excess;
			this.#onFailure(executionId, new Error("delivery queue full"), excess);
		}
	}
}

function sleepOrWake(ms: number, wake: Promise<void>): Promise<void> {
	let timer: ReturnType<typeof setTimeout> | null = null;
	const timeout = new Promise<void>((resolve) => {
		timer = setTimeout(resolve, ms);
	});
	return Promise.race([timeout, wake]).finally(() => {
		if (timer !== null) clearTimeout(timer);
	});
}
