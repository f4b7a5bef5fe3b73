/** Percentiles of a latency sample, in milliseconds rounded to 0.01. */
export interface Distribution {
	n: number;
	p50: number;
	p95: number;
	p99: number;
	max: number;
}

export function distribution(samples: number[]): Distribution {
	const sorted = [...samples].sort((a, b) => a - b);
	const at = (q: number) =>
		sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
	const round = (value: number) => Math.round(value * 100) / 100;
	return {
		n: sorted.length,
		p50: round(at(0.5)),
		p95: round(at(0.95)),
		p99: round(at(0.99)),
		max: round(at(1)),
	};
}

/** Runs `work` over `items` with at most `limit` in flight (so 400 sockets do not open at once). */
export async function pool<T, R>(
	items: readonly T[],
	limit: number,
	work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
	const results: R[] = new Array(items.length);
	let next = 0;
	const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
		while (next < items.length) {
			const index = next++;
			results[index] = await work(items[index] as T, index);
		}
	});
	await Promise.all(lanes);
	return results;
}
