/**
 * Work counters of one Session DO: SQLite rows written, events logged, frames sent and D1 writes.
 * They cost a few additions; they are logged (one JSON line per flush and per alarm) only when
 * METRICS_LOG is "true", which the benchmark turns on to report what each execution costs.
 */
export interface MetricsSnapshot {
	rows_written: number;
	events: number;
	frames_sent: number;
	d1_statements: number;
	d1_rows_written: number;
}

export class SessionMetrics {
	#counts: MetricsSnapshot = empty();

	/** The same SqlStorage, counting the rows every statement writes. */
	counting(sql: SqlStorage): SqlStorage {
		const counts = () => this.#counts;
		return new Proxy(sql, {
			get(target, property) {
				if (property === "exec") {
					return (query: string, ...bindings: unknown[]) => {
						const cursor = target.exec(query, ...bindings);
						counts().rows_written += cursor.rowsWritten;
						return cursor;
					};
				}
				const value = Reflect.get(target, property, target);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
	}

	event(sockets: number): void {
		this.#counts.events += 1;
		this.#counts.frames_sent += sockets;
	}

	d1Batch(statements: number, rowsWritten: number): void {
		this.#counts.d1_statements += statements;
		this.#counts.d1_rows_written += rowsWritten;
	}

	/** Returns the counts since the last call and starts again from zero. */
	take(): MetricsSnapshot {
		const taken = this.#counts;
		this.#counts = empty();
		return taken;
	}
}

function empty(): MetricsSnapshot {
	return { rows_written: 0, events: 0, frames_sent: 0, d1_statements: 0, d1_rows_written: 0 };
}
