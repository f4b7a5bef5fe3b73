import type { D1Migration } from "cloudflare:test";

declare global {
	namespace Cloudflare {
		interface Env {
			SIM_URL: string;
			TEST_MIGRATIONS: D1Migration[];
		}
	}
}
