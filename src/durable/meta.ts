/**
 * A Durable Object's small key/value settings (its id, schedule marks, device keys) in one SQLite
 * table, shared by both objects so each does not carry its own copy.
 *
 * The values are kept in memory as they are read and written (issue 17): the object is the table's
 * only writer and runs one turn at a time, so the copy is the table. The schedule asks for a few keys
 * on every request (the sockets' expiry, the outbox's retry) and now reads each once per life of the
 * object, not once per call; deleting a key known to be absent costs no statement. A value is
 * written to memory only after SQLite took it. `fresh` reads past the copy, for the one key the
 * tests write from outside (`alarm_at`: src/durable/alarm.ts).
 */
export class MetaStore {
	readonly #sql: SqlStorage;
	readonly #table: string;
	/** Keys read or written so far: their value, or null when the table has none. */
	readonly #known = new Map<string, string | null>();

	/** `table` must have `(key TEXT PRIMARY KEY, value TEXT NOT NULL)`; its migrations create it. */
	constructor(sql: SqlStorage, table: string) {
		this.#sql = sql;
		this.#table = table;
	}

	get(key: string): string | null {
		const known = this.#known.get(key);
		if (known !== undefined) return known;
		return this.fresh(key);
	}

	/** Reads the table itself (a value written by someone else: a test naming the alarm's time). */
	fresh(key: string): string | null {
		const value =
			this.#sql.exec<{ value: string }>(`SELECT value FROM ${this.#table} WHERE key = ?`, key).toArray()[0]
				?.value ?? null;
		this.#known.set(key, value);
		return value;
	}

	getNumber(key: string): number | null {
		const value = this.get(key);
		return value === null ? null : Number(value);
	}

	set(key: string, value: string | number): void {
		const text = String(value);
		if (this.#known.get(key) === text) return;
		this.#sql.exec(
			`INSERT INTO ${this.#table} (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
			key,
			text,
		);
		this.#known.set(key, text);
	}

	delete(key: string): void {
		if (this.#known.get(key) === null) return;
		this.#sql.exec(`DELETE FROM ${this.#table} WHERE key = ?`, key);
		this.#known.set(key, null);
	}
}
