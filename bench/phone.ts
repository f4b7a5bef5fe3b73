import { performance } from "node:perf_hooks";

/**
 * A phone for the benchmark: a real WebSocket client that records each frame with its arrival
 * time, resumes with `?since=<last seq>` when it reconnects, and keeps the evidence needed to
 * count lost, duplicated and out-of-order events afterwards.
 */
export interface ReceivedFrame {
	at: number;
	frame: Record<string, unknown> & { seq?: number; type?: string; event?: string };
}

export class Phone {
	readonly frames: ReceivedFrame[] = [];
	/** Every logged event's seq as received, over all connections (snapshots excluded). */
	readonly seqs: number[] = [];
	outOfOrder = 0;
	reconnects = 0;
	#socket: WebSocket | null = null;
	#lastSeq: number | null = null;
	#waiters: Array<{ predicate: (frame: ReceivedFrame) => boolean; resolve: (frame: ReceivedFrame) => void }> =
		[];
	readonly #url: string;

	constructor(url: string) {
		this.#url = url;
	}

	connect(): Promise<void> {
		const url = this.#lastSeq === null ? this.#url : `${this.#url}&since=${this.#lastSeq}`;
		const socket = new WebSocket(url);
		this.#socket = socket;
		let previous = -1;
		socket.addEventListener("message", (event) => {
			const at = performance.now();
			const frame = JSON.parse(String(event.data)) as ReceivedFrame["frame"];
			if (typeof frame.seq === "number") {
				if (frame.seq <= previous) this.outOfOrder++;
				previous = frame.seq;
				if (frame.type !== "snapshot") this.seqs.push(frame.seq);
				this.#lastSeq = Math.max(this.#lastSeq ?? 0, frame.seq);
			}
			const received = { at, frame };
			this.frames.push(received);
			this.#waiters = this.#waiters.filter((waiter) => {
				if (!waiter.predicate(received)) return true;
				waiter.resolve(received);
				return false;
			});
		});
		return new Promise((resolve, reject) => {
			socket.addEventListener("open", () => resolve(), { once: true });
			socket.addEventListener("error", () => reject(new Error(`socket to ${this.#url} failed`)), {
				once: true,
			});
		});
	}

	/** Drops the connection and comes back, resuming from the last seq seen. */
	async reconnect(): Promise<void> {
		this.reconnects++;
		const socket = this.#socket;
		if (socket) {
			const closed = new Promise((resolve) => socket.addEventListener("close", resolve, { once: true }));
			socket.close(1000, "bench reconnect");
			await closed;
		}
		await this.connect();
	}

	waitFor(
		predicate: (frame: ReceivedFrame) => boolean,
		timeoutMs = 30_000,
		what = "a frame",
	): Promise<ReceivedFrame> {
		const found = this.frames.find(predicate);
		if (found) return Promise.resolve(found);
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				const last = this.frames.at(-1);
				reject(
					new Error(
						`timed out after ${timeoutMs} ms waiting for ${what} on ${this.#url.split("?")[0]}: ${this.frames.length} frames, the last ${JSON.stringify(last?.frame ?? null).slice(0, 300)}`,
					),
				);
			}, timeoutMs);
			this.#waiters.push({
				predicate,
				resolve: (frame) => {
					clearTimeout(timer);
					resolve(frame);
				},
			});
		});
	}

	close(): void {
		this.#socket?.close(1000, "bench done");
	}

	/** Against the session's final seq: events never received, and events received twice. */
	audit(finalSeq: number): { lost: number; duplicated: number } {
		const seen = new Map<number, number>();
		for (const seq of this.seqs) seen.set(seq, (seen.get(seq) ?? 0) + 1);
		let lost = 0;
		let duplicated = 0;
		const firstSnapshot = this.frames.find((f) => f.frame.type === "snapshot")?.frame.seq ?? 0;
		for (let seq = (firstSnapshot as number) + 1; seq <= finalSeq; seq++) if (!seen.has(seq)) lost++;
		for (const count of seen.values()) if (count > 1) duplicated += count - 1;
		return { lost, duplicated };
	}
}
