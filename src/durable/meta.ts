/**
 * A Durable Object's small key/value settings (its id, schedule marks, device keys) in one SQLite
 * table, shared by both objects so each does not carry its own copy.
 */
export class MetaStore {
	readonly #sql: SqlStorage;
	readonly #table: string;

	/** `table` must have `(key TEXT PRIMARY KEY, value TEXT NOT NULL)`; its migrations create it. */
	constructor(sql: SqlStorage, table: string) {
		this.#sql = sql;
		this.#table = table;
	}

	get(key: string): string | null {
		return (
			this.#sql.exec<{ value: string }>(`SELECT value FROM ${this.#table} WHERE key = ?`, key).toArray()[0]
				?.value ?? null
		);
	}

	getNumber(key: string): number | null {
		const value = this.get(key);
		return value === null ? null : Number(value);
	}

	set(key: string, value: string | number): void {
		this.#sql.exec(
			`INSERT INTO ${this.#table} (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
			key,
			String(value),
		);
	}

	delete(key: string): void {
		this.#sql.exec(`DELETE FROM ${this.#table} WHERE key = ?`, key);
	}
}
