import { type AgentUpdate, coalesceChunks } from "./contract.ts";

/*
 * Hands each execution's updates to its session in order, coalescing (issues 3, 6 and 17): a status,
 * end or error goes at once, with the answer text queued before it. Answer text alone waits: the
 * first words of an answer go after CHUNK_WINDOW_MS, as fast as before; after that an execution's
 * text goes at most once every ANSWER_CADENCE_MS, as one joined chunk. While a call is in flight,
 * later updates queue and go as one batch when it returns, with consecutive chunks joined.
 *
 * Why a cadence (issue 17): every batch is one Session DO request and one stored frame (DESIGN.md:
 * logged before it is sent), so an answer's frames are most of a streamed mandate's cost. With the
 * gateway's pieces ~100 ms apart, a 50-ms window sent each piece on its own; four frames a second
 * still reads as typing, at about a third of the rows and requests. (OpenClaw's own chat channel
 * throttles its deltas at ~150 ms.)
 *
 * A failed call is retried with backoff over time (issue 14, finding 11), not in the same
 * millisecond: RETRY_DELAYS_MS add up to about half a minute. Only then is the batch given up, and
 * the chunks after it keep their own offsets, so the session sees the hole instead of joining over
 * it. The short timers are fine here: a Gateway DO with an open outbound socket never hibernates,
 * and `retryNow()` (called from the alarm) cuts a wait short.
 */

/** How long the first words of an answer may wait for the next ones (issue 6: at most 50 ms added). */
export const CHUNK_WINDOW_MS = 50;
/** After its first words, an answer's text goes at most this often (issue 17: four frames a second). */
export const ANSWER_CADENCE_MS = 250;
/** The waits before each retry of a failed call; after the last one the batch is given up. */
export const RETRY_DELAYS_MS = [250, 500, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000] as const;
/** Updates one execution may have waiting; beyond it queued statuses are folded, then the oldest dropped. */
export const MAX_QUEUED = 500;

export type Deliver = (sessionId: string, executionId: string, updates: AgentUpdate[]) => Promise<void>;
export type DeliveryFailure = (executionId: string, error: unknown, dropped: number) => void;

export interface DeliveryOptions {
	/** Waits `ms` or until `wake` resolves (injectable so tests drive retries and windows without waiting). */
	sleep?: (ms: number, wake: Promise<void>) => Promise<void>;
	retryDelaysMs?: readonly number[];
	maxQueued?: number;
	/** The clock the answer cadence is kept by (injectable for tests). */
	now?: () => number;
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
	/** Resolved when a status, end or error is queued: answer text waiting for its turn goes now. */
	urgent: PromiseWithResolvers<void>;
}

export class AgentUpdateDelivery {
	readonly #lanes = new Map<string, Lane>();
	readonly #deliver: Deliver;
	readonly #onFailure: DeliveryFailure;
	readonly #sleep: (ms: number, wake: Promise<void>) => Promise<void>;
	readonly #retryDelaysMs: readonly number[];
	readonly #maxQueued: number;
	readonly #now: () => number;
	/** When each execution's answer text last went, while it is recent enough to set the next wait. */
	readonly #textSentAt = new Map<string, number>();
	#wake = Promise.withResolvers<void>();
	readonly stats: DeliveryStats = { failedCalls: 0, dropped: 0 };

	constructor(deliver: Deliver, onFailure: DeliveryFailure, options: DeliveryOptions = {}) {
		this.#deliver = deliver;
		this.#onFailure = onFailure;
		this.#sleep = options.sleep ?? sleepOrWake;
		this.#retryDelaysMs = options.retryDelaysMs ?? RETRY_DELAYS_MS;
		this.#maxQueued = options.maxQueued ?? MAX_QUEUED;
		this.#now = options.now ?? Date.now;
	}

	/** Queues updates; resolves once they (and everything before them) were handed over or given up. */
	push(sessionId: string, executionId: string, updates: AgentUpdate[]): Promise<void> {
		if (updates.length === 0) return this.#lanes.get(executionId)?.busy ?? Promise.resolve();
		let lane = this.#lanes.get(executionId);
		if (!lane) {
			lane = { sessionId, queue: [], busy: null, urgent: Promise.withResolvers<void>() };
			this.#lanes.set(executionId, lane);
			this.#forgetOldText();
		}
		lane.queue.push(...updates);
		if (updates.some((update) => update.kind !== "chunk")) lane.urgent.resolve();
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
					const sentAt = this.#textSentAt.get(executionId);
					const turn = sentAt === undefined ? 0 : sentAt + ANSWER_CADENCE_MS - this.#now();
					await this.#sleep(Math.max(CHUNK_WINDOW_MS, turn), lane.urgent.promise);
				}
				lane.urgent = Promise.withResolvers<void>();
				const batch = coalesceChunks(lane.queue.splice(0));
				if (batch.some((update) => update.kind === "end" || update.kind === "error"))
					this.#textSentAt.delete(executionId);
				else if (batch.some((update) => update.kind === "chunk"))
					this.#textSentAt.set(executionId, this.#now());
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

	/** Answer text that went longer ago than the cadence sets no wait: its entry can go. */
	#forgetOldText(): void {
		const before = this.#now() - ANSWER_CADENCE_MS;
		for (const [executionId, sentAt] of this.#textSentAt)
			if (sentAt <= before) this.#textSentAt.delete(executionId);
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
