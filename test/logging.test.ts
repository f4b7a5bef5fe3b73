import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../src/index.ts";
import { log, withLogContext } from "../src/log.ts";
import { SERVICE } from "./helpers.ts";
import { TEST_SECRETS } from "./secrets.ts";

/**
 * Issue 12, item 7: every log line is one JSON object carrying the request id and the ids it knows,
 * never a token.
 */
function capture() {
	const lines: string[] = [];
	for (const level of ["log", "warn", "error"] as const) {
		vi.spyOn(console, level).mockImplementation((line: unknown) => {
			lines.push(String(line));
		});
	}
	return lines;
}

describe("log lines", () => {
	afterEach(() => vi.restoreAllMocks());

	it("carry the request id the caller gets as X-Request-Id (cf-ray when Cloudflare sets it)", async () => {
		const lines = capture();
		const call = (headers: Record<string, string>) =>
			worker.fetch(
				new Request("https://progress.test/api/sessions/s1/stages", { method: "POST", headers, body: "{}" }),
				{ ...env, SERVICE_TOKEN: undefined },
				createExecutionContext(),
			);
		const response = await call(SERVICE);
		const requestId = response.headers.get("X-Request-Id");
		expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
		const line = JSON.parse(lines.at(-1) as string) as Record<string, unknown>;
		expect(line).toMatchObject({
			level: "error",
			msg: "route refused: missing configuration",
			request_id: requestId,
		});
		const ray = await call({ ...SERVICE, "cf-ray": "8f1e2d3c4b5a6978-LHR" });
		expect(ray.headers.get("X-Request-Id")).toBe("8f1e2d3c4b5a6978-LHR");
		expect(JSON.parse(lines.at(-1) as string)).toMatchObject({ request_id: "8f1e2d3c4b5a6978-LHR" });
		// Never the credential the caller sent.
		expect(lines.join("\n")).not.toContain(TEST_SECRETS.SERVICE_TOKEN);
	});

	it("are JSON with the context's ids, and drop any field that could hold a credential", () => {
		const lines = capture();
		withLogContext({ request_id: "req-1", session_id: "sess_1" }, () =>
			log("warn", "something happened", {
				mandate_id: "mio_1",
				token: "eyJ.secret",
				authorization: "Bearer x",
				webhook_signature: "v1,abc",
				gateway_token: "gw",
			}),
		);
		expect(JSON.parse(lines[0] as string)).toEqual({
			level: "warn",
			msg: "something happened",
			request_id: "req-1",
			session_id: "sess_1",
			mandate_id: "mio_1",
		});
	});
});
