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
		sql.exec(`CREATE TABLE ${versionTable} (version INTEGER NOT NULL)`);
		sql.exec(`INSERT INTO ${versionTable} (version) VALUES (?)`, version);
	}
	for (; version < steps.length; version++) {
		sql.exec(steps[version] as string);
		sql.exec(`UPDATE ${versionTable} SET version = ?`, version + 1);
	}
	return version;
}
