import { type AgentUpdate, coalesceChunks } from "./contract.ts";

/*
 * Hands each execution's updates to its session in order, coalescing (issues 3, 6 and 17): a new
 * status line, the end or an error goes at once, with the answer text queued before it. Answer text
 * waits: the first words of an answer go after CHUNK_WINDOW_MS, as fast as before; after that an
 * execution's text goes at most once every ANSWER_CADENCE_MS, as one joined chunk, with the last of
 * the status updates that only moved the progress bar meanwhile ("Generating response..." at 41 %,
 * 42 %, …: the mapping raises it with the answer's length). While a call is in flight, later updates
 * queue and go as one batch when it returns.
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
	/**
	 * Called once per drain an execution's lane starts, with its promise (the Gateway DO hands it to
	 * `waitUntil`: once per drain, not once per pushed update, issue 17).
	 */
	keepAlive?: (drain: Promise<void>) => void;
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
	/** Resolved when an update that must go at once is queued: text waiting for its turn goes with it. */
	urgent: PromiseWithResolvers<void>;
	/** Queued updates that must go at once: a new status line, the end, an error. */
	urgentQueued: number;
	/** The last status line queued: a status repeating it only moves the progress, and rides with the text. */
	status: string | null;
	/** The last status line handed over (what the batch after it folds against). */
	statusSent: string | null;
	/** When the answer's text last went (ms), or null: the next text waits for its turn after it. */
	textSentAt: number | null;
}

export class AgentUpdateDelivery {
	readonly #lanes = new Map<string, Lane>();
	readonly #deliver: Deliver;
	readonly #onFailure: DeliveryFailure;
	readonly #sleep: (ms: number, wake: Promise<void>) => Promise<void>;
	readonly #retryDelaysMs: readonly number[];
	readonly #maxQueued: number;
	readonly #now: () => number;
	readonly #keepAlive: (drain: Promise<void>) => void;
	#wake = Promise.withResolvers<void>();
	readonly stats: DeliveryStats = { failedCalls: 0, dropped: 0 };

	constructor(deliver: Deliver, onFailure: DeliveryFailure, options: DeliveryOptions = {}) {
		this.#deliver = deliver;
		this.#onFailure = onFailure;
		this.#sleep = options.sleep ?? sleepOrWake;
		this.#retryDelaysMs = options.retryDelaysMs ?? RETRY_DELAYS_MS;
		this.#maxQueued = options.maxQueued ?? MAX_QUEUED;
		this.#now = options.now ?? Date.now;
		this.#keepAlive = options.keepAlive ?? (() => {});
	}

	/** Queues updates; resolves once they (and everything before them) were handed over or given up. */
	push(sessionId: string, executionId: string, updates: AgentUpdate[]): Promise<void> {
		if (updates.length === 0) return this.#lanes.get(executionId)?.busy ?? Promise.resolve();
		let lane = this.#lanes.get(executionId);
		if (!lane) {
			this.#forgetIdleLanes();
			lane = {
				sessionId,
				queue: [],
				busy: null,
				urgent: Promise.withResolvers<void>(),
				urgentQueued: 0,
				status: null,
				statusSent: null,
				textSentAt: null,
			};
			this.#lanes.set(executionId, lane);
		}
		for (const update of updates) {
			if (update.kind === "chunk") continue;
			if (update.kind === "status") {
				// "Generating response..." at 41 %, then 42 %: the text carries the news, not the bar.
				if (update.status === lane.status) continue;
				lane.status = update.status;
			}
			lane.urgentQueued += 1;
		}
		lane.queue.push(...updates);
		if (lane.urgentQueued > 0) lane.urgent.resolve();
		if (lane.queue.length > this.#maxQueued) this.#shrink(executionId, lane);
		if (!lane.busy) {
			lane.busy = this.#drain(executionId, lane);
			this.#keepAlive(lane.busy);
		}
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
				if (lane.urgentQueued === 0) {
					const sentAt = lane.textSentAt;
					const turn = sentAt === null ? 0 : sentAt + ANSWER_CADENCE_MS - this.#now();
					await this.#sleep(Math.max(CHUNK_WINDOW_MS, turn), lane.urgent.promise);
				}
				lane.urgent = Promise.withResolvers<void>();
				lane.urgentQueued = 0;
				const batch = foldText(lane.queue.splice(0), lane.statusSent);
				lane.statusSent = lane.status;
				if (batch.some((update) => update.kind === "end" || update.kind === "error")) lane.textSentAt = null;
				else if (batch.some((update) => update.kind === "chunk")) lane.textSentAt = this.#now();
				await this.#send(lane.sessionId, executionId, batch);
			}
		} finally {
			lane.busy = null;
			// A typing answer keeps its lane (its turn, its status line) until it has been quiet a while.
			if (lane.queue.length === 0 && lane.textSentAt === null) this.#lanes.delete(executionId);
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

	/** Idle lanes whose text went longer ago than the cadence set no wait any more: they can go. */
	#forgetIdleLanes(): void {
		const before = this.#now() - ANSWER_CADENCE_MS;
		for (const [executionId, lane] of this.#lanes)
			if (!lane.busy && lane.queue.length === 0 && (lane.textSentAt ?? 0) <= before)
				this.#lanes.delete(executionId);
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

/**
 * A batch as it goes: consecutive chunks joined, and within each stretch of text only the last of the
 * status updates that merely move the progress (they repeat the status line before them, or
 * `statusBefore`, the one already handed over), after the text. Every other update keeps its place.
 */
export function foldText(updates: readonly AgentUpdate[], statusBefore: string | null = null): AgentUpdate[] {
	const out: AgentUpdate[] = [];
	let text: AgentUpdate[] = [];
	let progress: AgentUpdate | null = null;
	let status = statusBefore;
	const flush = () => {
		out.push(...coalesceChunks(text));
		if (progress) out.push(progress);
		text = [];
		progress = null;
	};
	for (const update of updates) {
		if (update.kind === "chunk") text.push(update);
		else if (update.kind === "status" && update.status === status) progress = update;
		else {
			flush();
			out.push(update);
			if (update.kind === "status") status = update.status;
		}
	}
	flush();
	return out;
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
