/**
 * A versioned migration runner for a Durable Object's SQLite (STYLE.md: "guarded by a stored schema
 * version"). Each step runs once, in order, in the constructor, so an object woken by an alarm or a
 * hibernated socket is as ready as one woken by a request. A new version is one more string at the
 * end of the list; a step is never edited once it has shipped.
 */
export interface MigrationPlan {
	/** The one-row table holding the applied version (e.g. `ml_schema`). */
	versionTable: string;
	steps: readonly string[];
	/**
	 * The version an object built before this runner existed is at, read from wherever it kept it; 0
	 * when it has none. Asked only when the version table does not exist yet.
	 */
	legacyVersion?: (sql: SqlStorage) => number;
	/**
	 * The schema all the steps add up to, for an object with no tables yet: created in one go instead
	 * of step by step. It must equal the steps' result (each plan's schema test compares them).
	 */
	fresh?: string;
}

export function runMigrations(sql: SqlStorage, plan: MigrationPlan): number {
	const { versionTable, steps } = plan;
	const exists =
		sql
			.exec<{ n: number }>(
				"SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
				versionTable,
			)
			.one().n > 0;
	let version: number;
	if (exists) {
		version = sql.exec<{ version: number }>(`SELECT version FROM ${versionTable}`).toArray()[0]?.version ?? 0;
	} else {
		version = plan.legacyVersion?.(sql) ?? 0;
		if (version === 0 && plan.fresh !== undefined && !hasTables(sql)) {
			sql.exec(`${plan.fresh}; CREATE TABLE ${versionTable} (version INTEGER NOT NULL);`);
			sql.exec(`INSERT INTO ${versionTable} (version) VALUES (?)`, steps.length);
			return steps.length;
		}
		sql.exec(`CREATE TABLE ${versionTable} (version INTEGER NOT NULL)`);
		sql.exec(`INSERT INTO ${versionTable} (version) VALUES (?)`, version);
	}
	for (; version < steps.length; version++) {
		sql.exec(steps[version] as string);
		sql.exec(`UPDATE ${versionTable} SET version = ?`, version + 1);
	}
	return version;
}

/** Whether the object has any table of its own (the runtime's `_cf_` tables do not count). */
function hasTables(sql: SqlStorage): boolean {
	return (
		sql
			.exec<{ n: number }>(
				"SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
			)
			.one().n > 0
	);
}
