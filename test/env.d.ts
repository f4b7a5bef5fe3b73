import type { D1Migration } from "cloudflare:test";

declare global {
	namespace Cloudflare {
		interface Env {
			SIM_URL: string;
			TEST_MIGRATIONS: D1Migration[];
			/** Empty until test/d1-migrations.test.ts migrates it (vitest.config.ts). */
			MIGRATION_DB: D1Database;
		}
	}
}
