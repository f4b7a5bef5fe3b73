import { describe, expect, it } from "vitest";
import { matchSecrets } from "../src/auth/secrets.ts";

/**
 * The static tokens (SERVICE_TOKEN, ADMIN_TOKEN) as the Worker compares them: each setting may hold
 * several values during a rotation, any is accepted, and a token of any length or content is only
 * ever equal to a value it equals exactly. The configured values' digests are kept per isolate, so
 * the same comparison is asked twice here: a cached digest must answer as the first one did.
 */
describe("matching a bearer token against the static secrets", () => {
	const SERVICE = "svc_current svc_previous";
	const ADMIN = "adm_only";

	it("says which setting a token matches, by any of its values, twice over", async () => {
		for (let round = 0; round < 2; round++) {
			expect(await matchSecrets("svc_current", [SERVICE, ADMIN])).toEqual([true, false]);
			expect(await matchSecrets("svc_previous", [SERVICE, ADMIN])).toEqual([true, false]);
			expect(await matchSecrets("adm_only", [SERVICE, ADMIN])).toEqual([false, true]);
		}
	});

	it("matches nothing that is not exactly a value: prefixes, longer, empty, whitespace-joined", async () => {
		for (const token of [
			"svc_curren",
			"svc_current2",
			"",
			"svc_current svc_previous",
			"SVC_CURRENT",
			"adm_only ",
		]) {
			expect(await matchSecrets(token, [SERVICE, ADMIN]), token).toEqual([false, false]);
		}
	});

	it("treats an unset or empty setting as having no values", async () => {
		expect(await matchSecrets("x", [undefined, null, "", "  "])).toEqual([false, false, false, false]);
	});

	it("answers from the new values after a rotation changes the setting", async () => {
		expect(await matchSecrets("svc_next", [SERVICE])).toEqual([false]);
		expect(await matchSecrets("svc_next", ["svc_next svc_current"])).toEqual([true]);
		expect(await matchSecrets("svc_previous", ["svc_next svc_current"])).toEqual([false]);
	});
});
